//! `docker images` / `docker image ls`.
//!
//! One entry per image ID (config digest), newest first, with a row per
//! repository and tag as docker lays them out; the columns, sizes, ages,
//! filters and `--format` fields are docker's.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::cli::ImagesArgs;
use crate::client::Gateway;
use crate::error::{CliError, Result};
use crate::format::output;
use crate::format::{time, units, ListFormat};
use crate::image::{self, parse_name, ImageError, Resolved};

const DEFAULT_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const DIGEST_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const QUIET_FORMAT: &str = "{{.ID}}";
/// The Go type docker's rows are, for its template error messages.
const ROW_TYPE: &str = "*formatter.imageContext";
const NONE: &str = "<none>";

/// Column titles of a `table` format, by field.
fn headers() -> Value {
    json!({
        "Containers": "CONTAINERS",
        "CreatedAt": "CREATED AT",
        "CreatedSince": "CREATED",
        "Digest": "DIGEST",
        "ID": "IMAGE ID",
        "Repository": "REPOSITORY",
        "SharedSize": "SHARED SIZE",
        "Size": "SIZE",
        "Tag": "TAG",
        "UniqueSize": "UNIQUE SIZE",
        "VirtualSize": "SIZE",
    })
}

/// `-f` filters, decoded.
#[derive(Debug, Default, PartialEq)]
struct Filters {
    dangling: Option<bool>,
    references: Vec<String>,
    labels: Vec<(String, Option<String>)>,
    before: Vec<String>,
    since: Vec<String>,
}

fn parse_filters(raw: &[String], repository: Option<&str>) -> Result<Filters> {
    let mut f = Filters::default();
    for item in raw {
        let Some((key, value)) = item.split_once('=') else {
            return Err(CliError::daemon(format!(
                "invalid argument {item:?} for \"-f, --filter\" flag: bad format of filter (expected name=value)"
            )));
        };
        match key.to_lowercase().as_str() {
            "dangling" => {
                f.dangling = Some(match value.to_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(CliError::general(format!(
                            "Error response from daemon: invalid filter '{key}={value}'"
                        )))
                    }
                })
            }
            "reference" => f.references.push(value.to_string()),
            "label" => f.labels.push(match value.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (value.to_string(), None),
            }),
            "before" => f.before.push(value.to_string()),
            "since" => f.since.push(value.to_string()),
            "until" => {
                return Err(CliError::general(
                    "the images filter 'until' is not supported by berth",
                ))
            }
            _ => {
                return Err(CliError::general(format!(
                    "Error response from daemon: invalid filter '{key}'"
                )))
            }
        }
    }
    if let Some(r) = repository {
        f.references.push(r.to_string());
    }
    Ok(f)
}

/// One image ID with every name that points at it.
struct Summary {
    id: String,
    created: i64,
    size: i64,
    labels: BTreeMap<String, String>,
    /// (stored name, digest it points to)
    names: Vec<(String, String)>,
}

impl Summary {
    fn is_dangling(&self) -> bool {
        self.names.iter().all(|(n, _)| parse_name(n).is_none())
    }
}

fn created_of(r: &Resolved) -> i64 {
    r.raw_config
        .get("created")
        .and_then(Value::as_str)
        .and_then(time::parse_rfc3339)
        .map_or(0, |t| t.timestamp())
}

pub async fn images(gw: &Gateway, a: ImagesArgs) -> Result<i32> {
    output::finish(run(gw, a).await)
}

async fn run(gw: &Gateway, a: ImagesArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter, a.repository.as_deref())?;
    let format = list_format(&a);
    let list = ListFormat::parse(&format)
        .map_err(|e| CliError::general(format!("template parsing error: {e}")))?
        .with_row_type(ROW_TYPE);

    let mut summaries: Vec<Summary> = Vec::new();
    for (record, r) in image::list(gw).await? {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                eprintln!("warning: skipping image {}: {e}", record.name);
                continue;
            }
        };
        let target = r.target_digest().to_string();
        match summaries.iter_mut().find(|s| s.id == r.config_digest) {
            Some(s) => s.names.push((record.name.clone(), target)),
            None => {
                let labels = r
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.labels().clone())
                    .unwrap_or_default();
                summaries.push(Summary {
                    id: r.config_digest.clone(),
                    created: created_of(&r),
                    size: image::size(gw, &r).await,
                    labels: labels.into_iter().collect(),
                    names: vec![(record.name.clone(), target)],
                });
            }
        }
    }

    let before = bound(gw, &filters.before).await?;
    let since = bound(gw, &filters.since).await?;
    summaries.retain_mut(|s| keep(s, &filters, before, since));
    summaries.sort_by(|x, y| y.created.cmp(&x.created).then_with(|| x.id.cmp(&y.id)));

    let with_digest = a.digests || format.contains("{{.Digest}}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let mut rows = Vec::new();
    for s in &summaries {
        for (repo, tag, digest) in layout(s, with_digest, a.digests) {
            rows.push(row(s, &repo, &tag, &digest, !a.no_trunc, now));
        }
    }
    let text = list
        .render(&rows, &headers())
        .map_err(|e| CliError::general(format!("template parsing error: {e}")))?;
    output::print(&text)?;
    Ok(0)
}

/// docker's choice of format: `-q` and `--digests` only change the default
/// table; a custom table gets the digest column appended with `--digests`.
fn list_format(a: &ImagesArgs) -> String {
    match a.format.as_deref() {
        None | Some("") | Some("table") if a.quiet => QUIET_FORMAT.to_string(),
        None | Some("") | Some("table") if a.digests => DIGEST_TABLE.to_string(),
        None | Some("") | Some("table") => DEFAULT_TABLE.to_string(),
        Some(f) if a.digests && f.starts_with("table") && !f.contains("{{.Digest}}") => {
            format!("{f}\t{{{{.Digest}}}}")
        }
        Some(f) => f.to_string(),
    }
}

/// The creation time of the newest image named by `before`/`since` filters.
async fn bound(gw: &Gateway, refs: &[String]) -> Result<Option<i64>> {
    let mut out = None;
    for r in refs {
        let found = image::lookup(gw, r).await.map_err(|e| match e {
            e @ ImageError::NotFound(_) => {
                CliError::general(format!("Error response from daemon: {e}"))
            }
            other => CliError::from(other),
        })?;
        let t = created_of(&found);
        out = Some(out.map_or(t, |o: i64| o.max(t)));
    }
    Ok(out)
}

/// Applies the filters; a reference filter also narrows the names shown.
fn keep(s: &mut Summary, f: &Filters, before: Option<i64>, since: Option<i64>) -> bool {
    if f.dangling.is_some_and(|d| d != s.is_dangling()) {
        return false;
    }
    if !f.labels.iter().all(|(k, v)| match v {
        Some(v) => s.labels.get(k) == Some(v),
        None => s.labels.contains_key(k),
    }) {
        return false;
    }
    if before.is_some_and(|b| s.created >= b) || since.is_some_and(|t| s.created <= t) {
        return false;
    }
    if !f.references.is_empty() {
        s.names.retain(|(n, _)| {
            parse_name(n).is_some_and(|r| {
                let full = r.familiar_string();
                let name = r.familiar_name();
                f.references
                    .iter()
                    .any(|p| go_path_match(p, &full) || go_path_match(p, &name))
            })
        });
        if s.names.is_empty() {
            return false;
        }
    }
    true
}

/// The (repository, tag, digest) rows of one image, as docker's formatter
/// lays them out: a row per tag (per digest too with `--digests`), then a
/// row per repository known only by digest; `<none>` when nameless.
fn layout(s: &Summary, need_digest: bool, show_digests: bool) -> Vec<(String, String, String)> {
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, target) in &s.names {
        let Some(r) = parse_name(name) else { continue };
        let repo = r.familiar_name();
        if let Some(t) = &r.tag {
            tags.entry(repo.clone()).or_default().push(t.clone());
        }
        let d = r.digest.clone().unwrap_or_else(|| target.clone());
        let list = digests.entry(repo).or_default();
        if !list.contains(&d) {
            list.push(d);
        }
    }
    if tags.is_empty() && digests.is_empty() {
        return vec![(NONE.into(), NONE.into(), NONE.into())];
    }
    let mut rows = Vec::new();
    for (repo, mut ts) in tags {
        ts.sort();
        ts.dedup();
        let ds = digests
            .remove(&repo)
            .filter(|_| need_digest)
            .unwrap_or_default();
        for t in ts {
            if ds.is_empty() {
                rows.push((repo.clone(), t, NONE.into()));
                continue;
            }
            for d in &ds {
                rows.push((repo.clone(), t.clone(), d.clone()));
            }
        }
    }
    for (repo, ds) in digests {
        if show_digests {
            for d in ds {
                rows.push((repo.clone(), NONE.into(), d));
            }
        } else {
            rows.push((repo, NONE.into(), String::new()));
        }
    }
    rows
}

/// One row as docker's image formatter context marshals it (keys sorted).
fn row(s: &Summary, repo: &str, tag: &str, digest: &str, trunc: bool, now: i64) -> Value {
    let id = if trunc { short_id(&s.id) } else { s.id.clone() };
    let age = Duration::from_secs(now.saturating_sub(s.created).max(0) as u64);
    json!({
        "Containers": "N/A",
        "CreatedAt": time::go_time_string(s.created),
        "CreatedSince": format!("{} ago", units::human_duration(age)),
        "Digest": digest,
        "ID": id,
        "Repository": repo,
        "SharedSize": "N/A",
        "Size": units::human_size_precision(s.size as f64, 3),
        "Tag": tag,
        "UniqueSize": "N/A",
        "VirtualSize": units::human_size(s.size as f64),
    })
}

/// The first 12 hex digits of an ID, without the algorithm.
fn short_id(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Go's `path.Match`: `*` and `?` do not cross `/`, `[...]` classes with
/// ranges and `^` negation, `\` escapes. A malformed pattern matches nothing.
fn go_path_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, chars consumed incl. ']').
        let mut i = 0;
        let negate = p.first() == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        loop {
            let mut lo = *p.get(i)?;
            if lo == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            if lo == '\\' {
                i += 1;
                lo = *p.get(i)?;
            }
            i += 1;
            let mut hi = lo;
            if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|n| *n != ']') {
                hi = *p.get(i + 1)?;
                if hi == '\\' {
                    hi = *p.get(i + 2)?;
                    i += 1;
                }
                i += 2;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
        }
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|&k| k == 0 || n[k - 1] != '/')
                .any(|k| go(&p[1..], &n[k..])),
            Some('?') => n.first().is_some_and(|c| *c != '/') && go(&p[1..], &n[1..]),
            Some('[') => match n.first() {
                Some(&c) if c != '/' => match class(&p[1..], c) {
                    Some((true, used)) => go(&p[1 + used..], &n[1..]),
                    _ => false,
                },
                _ => false,
            },
            Some('\\') => p.get(1).is_some_and(|e| n.first() == Some(e)) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "sha256:8b741d2a5495be16d28d22f8c58b3003c32c41bab2af54b6dc93caf1b5ced676";

    fn summary(names: &[&str]) -> Summary {
        Summary {
            id: "sha256:fdc310b9719da606b2b8ae773ef8e3ffc5eba7e10019233f09f0694003ed090d".into(),
            created: 1_704_067_200,
            size: 2_129_920,
            labels: BTreeMap::from([("org.x".to_string(), "1".to_string())]),
            names: names
                .iter()
                .map(|n| (n.to_string(), T.to_string()))
                .collect(),
        }
    }

    fn table(summaries: &[Summary], digests: bool, now: i64) -> String {
        let a = ImagesArgs {
            all: false,
            quiet: false,
            no_trunc: false,
            digests,
            format: None,
            filter: vec![],
            repository: None,
        };
        let f = list_format(&a);
        let mut rows = Vec::new();
        for s in summaries {
            for (r, t, d) in layout(s, digests || f.contains("{{.Digest}}"), digests) {
                rows.push(row(s, &r, &t, &d, true, now));
            }
        }
        ListFormat::parse(&f)
            .unwrap()
            .with_row_type(ROW_TYPE)
            .render(&rows, &headers())
            .unwrap()
    }

    #[test]
    fn default_table_matches_docker() {
        let now = 1_704_067_200 + 2 * 86400;
        let s = vec![
            summary(&[
                "docker.io/library/busybox:latest",
                "localhost:5000/busybox:v1.2.3",
            ]),
            Summary {
                id: format!("sha256:{}", "0123456789ab".repeat(5) + "cdef"),
                created: 0,
                size: 999_600,
                labels: BTreeMap::new(),
                names: vec![("moby-dangling@sha256:x".into(), T.into())],
            },
        ];
        let want = "\
REPOSITORY               TAG       IMAGE ID       CREATED        SIZE
busybox                  latest    fdc310b9719d   2 days ago     2.13MB
localhost:5000/busybox   v1.2.3    fdc310b9719d   2 days ago     2.13MB
<none>                   <none>    0123456789ab   54 years ago   1e+03kB
";
        assert_eq!(table(&s, false, now), want);
    }

    #[test]
    fn digests_and_digest_only_names() {
        let s = summary(&[
            "docker.io/library/busybox:latest",
            &format!("docker.io/library/app@{T}"),
        ]);
        let plain: Vec<_> = layout(&s, false, false);
        assert_eq!(
            plain,
            vec![
                ("busybox".into(), "latest".into(), NONE.into()),
                ("app".into(), NONE.into(), String::new()),
            ]
        );
        let with: Vec<_> = layout(&s, true, true);
        assert_eq!(
            with,
            vec![
                ("busybox".into(), "latest".into(), T.into()),
                ("app".into(), NONE.into(), T.into())
            ]
        );
    }

    #[test]
    fn json_rows_are_docker_shaped() {
        let s = summary(&["docker.io/library/busybox:latest"]);
        let v = row(&s, "busybox", "latest", NONE, true, 1_704_067_200 + 3600);
        let f = ListFormat::parse("json").unwrap().with_row_type(ROW_TYPE);
        let out = f.render(&[v], &headers()).unwrap();
        assert!(
            out.starts_with(r#"{"Containers":"N/A","CreatedAt":"#),
            "{out}"
        );
        assert!(out.contains(r#""CreatedSince":"About an hour ago","Digest":"\u003cnone\u003e","ID":"fdc310b9719d","Repository":"busybox","SharedSize":"N/A","Size":"2.13MB","Tag":"latest","UniqueSize":"N/A","VirtualSize":"2.13MB"}"#), "{out}");
    }

    #[test]
    fn filters() {
        let f = parse_filters(
            &["dangling=false".into(), "label=org.x=1".into()],
            Some("busy*"),
        )
        .unwrap();
        assert_eq!(f.dangling, Some(false));
        assert_eq!(f.references, vec!["busy*".to_string()]);
        let mut s = summary(&[
            "docker.io/library/busybox:latest",
            "docker.io/library/other:1",
        ]);
        assert!(keep(&mut s, &f, None, None));
        assert_eq!(s.names.len(), 1);
        let mut dangling = summary(&["moby-dangling@sha256:x"]);
        assert!(!keep(&mut dangling, &f, None, None));
        assert!(keep(
            &mut summary(&["moby-dangling@sha256:x"]),
            &parse_filters(&["dangling=true".into()], None).unwrap(),
            None,
            None
        ));
        assert!(!keep(
            &mut summary(&["docker.io/library/busybox:latest"]),
            &Filters::default(),
            Some(1_704_067_200),
            None
        ));
        let err = parse_filters(&["dangling=maybe".into()], None).unwrap_err();
        assert_eq!(
            err.message,
            "Error response from daemon: invalid filter 'dangling=maybe'"
        );
        assert_eq!(
            parse_filters(&["nope=1".into()], None).unwrap_err().message,
            "Error response from daemon: invalid filter 'nope'"
        );
        assert_eq!(parse_filters(&["x".into()], None).unwrap_err().code, 125);
    }

    /// docker's `FamiliarMatch`: the pattern against `name:tag` and against
    /// the bare familiar name; never against the fully qualified name.
    #[test]
    fn reference_filter_matches_familiar_names() {
        let cases: &[(&str, &str, bool)] = &[
            ("busybox", "docker.io/library/busybox:latest", true),
            ("busybox", "docker.io/library/busybox:1.36", true),
            ("busybox:1*", "docker.io/library/busybox:1.36", true),
            ("busybox:1*", "docker.io/library/busybox:latest", false),
            ("*/app", "docker.io/user/app:v1", true),
            ("*", "docker.io/user/app:v1", false),
            ("localhost:5000/*", "localhost:5000/x:latest", true),
            (
                "docker.io/library/busybox",
                "docker.io/library/busybox:latest",
                false,
            ),
            ("busy?ox:late[s]t", "docker.io/library/busybox:latest", true),
        ];
        for (pattern, name, want) in cases {
            let f = parse_filters(&[format!("reference={pattern}")], None).unwrap();
            let mut s = summary(&[name]);
            assert_eq!(keep(&mut s, &f, None, None), *want, "{pattern} vs {name}");
        }
        // Several patterns: any may match, and only matching names stay.
        let f =
            parse_filters(&["reference=nope".into(), "reference=busybox".into()], None).unwrap();
        let mut s = summary(&[
            "docker.io/library/busybox:latest",
            "docker.io/library/app:1",
        ]);
        assert!(keep(&mut s, &f, None, None));
        assert_eq!(s.names.len(), 1);
    }

    #[test]
    fn path_match_like_go() {
        let cases = [
            ("busybox", "busybox", true),
            ("busy*", "busybox", true),
            ("busybox:*", "busybox:latest", true),
            ("*", "user/app", false),
            ("*/*", "user/app", true),
            ("user/ap?", "user/app", true),
            ("b[a-u]sybox", "busybox", true),
            ("b[^u]sybox", "busybox", false),
            ("busybox\\:latest", "busybox:latest", true),
            ("[", "x", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(go_path_match(p, n), want, "{p} vs {n}");
        }
    }
}
