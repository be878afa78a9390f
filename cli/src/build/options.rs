//! `docker build` flags decoded into a checked build: what to send, which
//! frontend attributes to set, where the result goes, how to show progress.
//!
//! Decoding is pure (the environment comes in through [`Env`]), so every
//! refusal is testable without a gateway.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::flags::BuildArgs;
use crate::refs::Reference;

/// Why the flags do not make a build; the text is what the user sees
/// after `ERROR: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("{0}")]
    Usage(String),
    #[error("{0} is not supported by berth")]
    Unsupported(String),
}

fn usage(msg: impl Into<String>) -> Invalid {
    Invalid::Usage(msg.into())
}

fn unsupported(what: impl Into<String>) -> Invalid {
    Invalid::Unsupported(what.into())
}

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Tty,
    Plain,
    Quiet,
    RawJson,
}

/// Where the build context comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    Dir(PathBuf),
    /// `docker build -`: a Dockerfile on stdin and an empty context.
    Stdin,
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dockerfile {
    /// The file; its directory is served as the `dockerfile` local.
    Path(PathBuf),
    /// Read from stdin (`-f -` or `docker build -`).
    Stdin,
}

/// A file destination of an exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    File(PathBuf),
    Stdout,
}

/// Where the result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Into the sandbox's images, tagged (the default, as `docker build`).
    Load,
    /// The result's files into a directory.
    Local(PathBuf),
    /// The result's files as a tarball.
    Tar(Dest),
    /// An OCI layout tarball or a `docker save` tarball of the image.
    Image {
        kind: &'static str,
        dest: Dest,
        attrs: BTreeMap<String, String>,
    },
}

/// A checked build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: Context,
    pub dockerfile: Dockerfile,
    /// The Dockerfile's name inside its directory (frontend attr `filename`).
    pub dockerfile_name: String,
    /// Full names to tag the image with (`docker.io/library/app:latest`).
    pub tags: Vec<String>,
    /// `--build-arg`s as resolved (for the `FROM` scan as well).
    pub build_args: HashMap<String, String>,
    /// Frontend attributes, except named contexts.
    pub frontend_attrs: BTreeMap<String, String>,
    /// `--build-context name=docker-image://ref`: (name, ref).
    pub image_contexts: Vec<(String, String)>,
    pub secrets: Vec<String>,
    pub ssh: Vec<String>,
    pub progress: Progress,
    /// `-q` or `--progress=quiet`: print the image ID on stdout at the end.
    pub print_id: bool,
    pub iidfile: Option<PathBuf>,
    pub output: Output,
}

/// What decoding needs from the machine.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
    fn stderr_is_terminal(&self) -> bool;
    fn stdout_is_terminal(&self) -> bool;
    /// The native platform, `os/arch[/variant]`.
    fn platform(&self) -> String;
    fn is_dir(&self, path: &Path) -> bool;
    fn exists(&self, path: &Path) -> bool;
}

pub struct RealEnv;

impl Env for RealEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
    fn stderr_is_terminal(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    }
    fn stdout_is_terminal(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    }
    fn platform(&self) -> String {
        let p = crate::image::host_platform();
        match p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        }
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

impl BuildOptions {
    pub fn decode(a: &BuildArgs, env: &dyn Env) -> Result<Self, Invalid> {
        if let Some(flag) = a.unsupported.first_used() {
            return Err(unsupported(flag));
        }
        for (flag, value) in [("--provenance", &a.provenance), ("--sbom", &a.sbom)] {
            if let Some(v) = value {
                if !is_false(v) {
                    return Err(unsupported(format!("{flag}={v} (attestations)")));
                }
            }
        }
        let context = match a.context.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(usage(
                    "\"docker buildx build\" requires exactly 1 argument.\nSee 'docker buildx build --help'.",
                ))
            }
        };
        let progress = progress_mode(&a.progress, a.quiet, env)?;
        let print_id = a.quiet || progress == Progress::Quiet;

        let (context, dockerfile, dockerfile_name) = sources(&context, a.file.as_deref(), env)?;

        let mut tags = Vec::new();
        for t in &a.tags {
            let r = Reference::parse_normalized(t)
                .map_err(|e| usage(format!("invalid tag {t:?}: {e}")))?;
            if r.digest.is_some() {
                return Err(usage(format!(
                    "invalid tag {t:?}: a tag cannot carry a digest"
                )));
            }
            let full = r.with_default_tag().to_string();
            if !tags.contains(&full) {
                tags.push(full);
            }
        }

        let mut attrs = BTreeMap::new();
        attrs.insert("filename".to_string(), dockerfile_name.clone());
        if let Some(t) = &a.target {
            attrs.insert("target".into(), t.clone());
        }
        let build_args = key_values(&a.build_args, env, true);
        for (k, v) in &build_args {
            attrs.insert(format!("build-arg:{k}"), v.clone());
        }
        for (k, v) in key_values(&a.label, env, false) {
            attrs.insert(format!("label:{k}"), v);
        }
        // "" means every stage; a list names stages (BuildKit's reading).
        if a.no_cache {
            attrs.insert("no-cache".into(), String::new());
        } else if !a.no_cache_filter.is_empty() {
            attrs.insert("no-cache".into(), a.no_cache_filter.join(","));
        }
        if a.pull {
            attrs.insert("image-resolve-mode".into(), "pull".into());
        }
        if let Some(p) = platform(&a.platform, env)? {
            attrs.insert("platform".into(), p);
        }
        if let Some(n) = &a.network {
            if n != "default" {
                return Err(unsupported(format!(
                    "--network={n} (RUN steps always use the sandbox's network)"
                )));
            }
        }
        let image_contexts = build_contexts(&a.build_context)?;

        let output = output(&a.output, a.load.as_deref(), env)?;
        Ok(Self {
            context,
            dockerfile,
            dockerfile_name,
            tags,
            build_args: build_args.into_iter().collect(),
            frontend_attrs: attrs,
            image_contexts,
            secrets: a.secret.clone(),
            ssh: a.ssh.clone(),
            progress,
            print_id,
            iidfile: a.iidfile.as_ref().map(PathBuf::from),
            output,
        })
    }
}

fn is_false(v: &str) -> bool {
    matches!(v, "false" | "0" | "False" | "FALSE" | "f" | "F")
}

fn progress_mode(mode: &str, quiet: bool, env: &dyn Env) -> Result<Progress, Invalid> {
    if quiet && !matches!(mode, "auto" | "quiet" | "rawjson") {
        return Err(usage(format!(
            "progress={mode} and quiet cannot be used together"
        )));
    }
    Ok(match mode {
        _ if quiet && mode != "rawjson" => Progress::Quiet,
        "auto" if env.stderr_is_terminal() => Progress::Tty,
        "auto" | "plain" => Progress::Plain,
        "tty" if env.stderr_is_terminal() => Progress::Tty,
        "tty" => {
            return Err(usage(
                "failed to get console: provided file is not a console",
            ))
        }
        "quiet" => Progress::Quiet,
        "rawjson" => Progress::RawJson,
        other => return Err(usage(format!("invalid progress mode {other}"))),
    })
}

/// The context and Dockerfile, as docker resolves `PATH` and `-f`.
fn sources(
    context: &str,
    file: Option<&str>,
    env: &dyn Env,
) -> Result<(Context, Dockerfile, String), Invalid> {
    if context.contains("://") || context.starts_with("git@") {
        return Err(unsupported(format!(
            "remote build context {context:?} (use a directory of the sandbox)"
        )));
    }
    if context == "-" {
        if file.is_some_and(|f| f != "-") {
            return Err(usage(
                "the Dockerfile comes from stdin with \"-\"; -f cannot name another one",
            ));
        }
        return Ok((Context::Stdin, Dockerfile::Stdin, "Dockerfile".into()));
    }
    let dir = PathBuf::from(context);
    if !env.exists(&dir) {
        return Err(usage(format!(
            "unable to prepare context: path {context:?} not found"
        )));
    }
    if !env.is_dir(&dir) {
        return Err(unsupported(format!(
            "a build context that is not a directory ({context})"
        )));
    }
    let (dockerfile, name) = match file {
        Some("-") => (Dockerfile::Stdin, "Dockerfile".to_string()),
        Some(f) => {
            let p = PathBuf::from(f);
            let name =
                file_name(&p).ok_or_else(|| usage(format!("invalid Dockerfile path {f:?}")))?;
            (Dockerfile::Path(p), name)
        }
        None => (
            Dockerfile::Path(dir.join("Dockerfile")),
            "Dockerfile".to_string(),
        ),
    };
    Ok((Context::Dir(dir), dockerfile, name))
}

fn file_name(p: &Path) -> Option<String> {
    p.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// `K=V` pairs; `K` alone takes the environment's value (skipped when
/// unset) for build args, and the empty value for labels.
fn key_values(list: &[String], env: &dyn Env, from_env: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in list {
        match item.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env => {
                if let Some(v) = env.var(item) {
                    out.insert(item.clone(), v);
                }
            }
            None => {
                out.insert(item.clone(), String::new());
            }
        }
    }
    out
}

/// `--platform`: only the native platform (the sandbox's BuildKit runs no
/// emulators). Returns the normalised value for the frontend.
fn platform(list: &[String], env: &dyn Env) -> Result<Option<String>, Invalid> {
    let native = env.platform();
    let wanted: Vec<&str> = list
        .iter()
        .flat_map(|p| p.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    match wanted.as_slice() {
        [] => Ok(None),
        [one] => {
            let normalised = normalise_platform(one);
            if normalised == native || same_without_variant(&normalised, &native) {
                Ok(Some(normalised))
            } else {
                Err(unsupported(format!(
                    "--platform={one} (only the native platform {native} can be built)"
                )))
            }
        }
        _ => Err(unsupported(format!(
            "--platform={} (multi-platform builds; only {native} can be built)",
            wanted.join(",")
        ))),
    }
}

fn normalise_platform(p: &str) -> String {
    let lower = p.to_ascii_lowercase();
    let mut parts: Vec<&str> = lower.split('/').collect();
    if parts.len() == 1 {
        parts.insert(0, "linux");
    }
    let arch = match parts.get(1).copied() {
        Some("x86_64" | "x86-64") => "amd64",
        Some("aarch64") => "arm64",
        Some(a) => a,
        None => "",
    };
    let mut out = format!("{}/{arch}", parts[0]);
    if let Some(v) = parts.get(2) {
        out.push('/');
        out.push_str(v);
    }
    out
}

/// arm64 is arm64/v8 and the other way round.
fn same_without_variant(a: &str, b: &str) -> bool {
    let strip = |s: &str| s.strip_suffix("/v8").unwrap_or(s).to_string();
    a.starts_with("linux/arm64") && strip(a) == strip(b)
}

/// `--build-context name=docker-image://ref` only: served from the
/// sandbox's images like a `FROM` base.
fn build_contexts(list: &[String]) -> Result<Vec<(String, String)>, Invalid> {
    let mut out = Vec::new();
    for item in list {
        let Some((name, value)) = item.split_once('=') else {
            return Err(usage(format!(
                "invalid context value: {item}, expected key=value"
            )));
        };
        match value.strip_prefix("docker-image://") {
            Some(r) if !r.is_empty() => out.push((name.to_string(), r.to_string())),
            _ => {
                return Err(unsupported(format!(
                "--build-context {item} (only docker-image:// references to the sandbox's images)"
            )))
            }
        }
    }
    Ok(out)
}

/// `-o`/`--output`, buildx's forms: CSV `type=…,dest=…`, a bare path for
/// `type=local`, `-` for a tarball on stdout.
fn output(list: &[String], load: Option<&str>, env: &dyn Env) -> Result<Output, Invalid> {
    let load = load.is_some_and(|v| !is_false(v));
    let spec = match list {
        [] => return Ok(Output::Load),
        [one] => one,
        _ => return Err(unsupported("more than one --output")),
    };
    let mut attrs: BTreeMap<String, String> = BTreeMap::new();
    if !spec.contains('=') {
        if spec == "-" {
            attrs.insert("type".into(), "tar".into());
        } else {
            attrs.insert("type".into(), "local".into());
        }
        attrs.insert("dest".into(), spec.clone());
    } else {
        for field in spec.split(',') {
            let Some((k, v)) = field.split_once('=') else {
                return Err(usage(format!("invalid value {field}")));
            };
            attrs.insert(k.trim().to_ascii_lowercase(), v.to_string());
        }
    }
    let kind = attrs.remove("type").unwrap_or_default();
    let dest = attrs.remove("dest");
    let file_dest = |kind: &str, dest: Option<String>| -> Result<Dest, Invalid> {
        match dest.as_deref() {
            None | Some("-") if env.stdout_is_terminal() => Err(usage(format!(
                "dest file is required for {kind} exporter. refusing to write to console"
            ))),
            None | Some("-") => Ok(Dest::Stdout),
            Some(p) => Ok(Dest::File(PathBuf::from(p))),
        }
    };
    let out = match kind.as_str() {
        "local" => match dest {
            Some(d) if !d.is_empty() && d != "-" => Output::Local(PathBuf::from(d)),
            _ => return Err(usage("dest is required for local exporter")),
        },
        "tar" => Output::Tar(file_dest("tar", dest)?),
        "docker" if dest.is_none() => Output::Load,
        "oci" => Output::Image {
            kind: "oci",
            dest: file_dest("oci", dest)?,
            attrs,
        },
        "docker" => Output::Image {
            kind: "docker",
            dest: file_dest("docker", dest)?,
            attrs,
        },
        "" => return Err(usage("type is required for output")),
        other => {
            return Err(unsupported(format!(
                "--output type={other} (berth exports local, tar, oci and docker)"
            )))
        }
    };
    if load && out != Output::Load {
        return Err(unsupported("--load together with --output"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
