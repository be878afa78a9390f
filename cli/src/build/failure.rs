//! A failed solve as buildx reports it: the Dockerfile lines the error
//! points at (from the error's `Source` details), then
//! `ERROR: failed to solve: <reason>`.

use berth_proto::buildkit::pb;
use berth_proto::RpcStatus;
use prost::Message;

/// BuildKit's `errdefs.Source`: where in a source file an error is.
#[derive(Clone, PartialEq, Message)]
struct Source {
    #[prost(message, optional, tag = "1")]
    info: Option<pb::SourceInfo>,
    #[prost(message, repeated, tag = "2")]
    ranges: Vec<pb::Range>,
}

/// The lines buildx prints for a solve error: source excerpts, then the
/// `ERROR:` line.
pub fn report(status: &tonic::Status) -> String {
    let mut out = String::new();
    for s in sources(status.details()) {
        out.push_str(&excerpt(&s));
    }
    let msg = status.message().trim();
    let msg = if msg.is_empty() {
        format!("{:?}", status.code()).to_lowercase()
    } else {
        msg.to_string()
    };
    out.push_str(&format!("ERROR: failed to solve: {msg}\n"));
    out
}

fn sources(details: &[u8]) -> Vec<Source> {
    let Ok(st) = RpcStatus::decode(details) else {
        return Vec::new();
    };
    st.details
        .iter()
        .filter_map(|a| {
            if a.type_url.ends_with("errdefs.Source") {
                Source::decode(a.value.as_slice()).ok()
            } else if a.type_url.ends_with("errdefs.Source+json") {
                source_from_json(&a.value)
            } else {
                None
            }
        })
        .collect()
}

/// The same detail as Docker Engine's embedded BuildKit sends it: Go's JSON
/// of the structure (`…/errdefs.Source+json`), the file's bytes in base64,
/// zero-valued fields left out.
fn source_from_json(bytes: &[u8]) -> Option<Source> {
    use base64::Engine as _;
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let info = &v["info"];
    let data = match info["data"].as_str() {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).ok()?,
        None => Vec::new(),
    };
    let position = |p: &serde_json::Value| pb::Position {
        line: p["line"].as_i64().unwrap_or(0) as i32,
        character: p["character"].as_i64().unwrap_or(0) as i32,
    };
    let ranges = v["ranges"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| pb::Range {
                    start: Some(position(&r["start"])),
                    end: Some(position(&r["end"])),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Source {
        info: Some(pb::SourceInfo {
            filename: info["filename"].as_str().unwrap_or_default().to_string(),
            data,
            definition: None,
            language: info["language"].as_str().unwrap_or_default().to_string(),
        }),
        ranges,
    })
}

/// The file name and line, then the lines around the error between rulers,
/// the error's lines marked `>>>` (buildx's `errdefs.Source.Print`).
fn excerpt(s: &Source) -> String {
    let Some(info) = &s.info else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&info.data);
    let lines: Vec<&str> = text.split('\n').collect();
    let starts = s
        .ranges
        .iter()
        .filter_map(|r| r.start.as_ref().map(|p| p.line));
    let ends = s
        .ranges
        .iter()
        .filter_map(|r| r.end.as_ref().map(|p| p.line));
    let (Some(first), Some(last)) = (starts.min(), ends.max()) else {
        return String::new();
    };
    let n = lines.len() as i32;
    if first < 1 || first > n {
        return String::new();
    }
    let (mut start, mut end) = (first, last.min(n));
    let pad = if start == end { 4 } else { 2 };
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != n {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let marked = |l: i32| {
        s.ranges.iter().any(|r| {
            r.start.as_ref().is_some_and(|a| a.line <= l)
                && r.end.as_ref().is_some_and(|b| l <= b.line)
        })
    };
    let rule = "-".repeat(20);
    let mut out = format!("{}:{first}\n{rule}\n", info.filename);
    for i in start..=end {
        let pfx = if marked(i) { ">>>" } else { "   " };
        out.push_str(&format!(" {i:>3} | {pfx} {}\n", lines[(i - 1) as usize]));
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with_source(data: &str, line: i32) -> tonic::Status {
        let pos = |l| pb::Position {
            line: l,
            character: 0,
        };
        let src = Source {
            info: Some(pb::SourceInfo {
                filename: "Dockerfile".into(),
                data: data.as_bytes().to_vec(),
                ..Default::default()
            }),
            ranges: vec![pb::Range {
                start: Some(pos(line)),
                end: Some(pos(line)),
            }],
        };
        let st = RpcStatus {
            code: 2,
            message: "x".into(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/errdefs.Source".into(),
                value: src.encode_to_vec(),
            }],
        };
        tonic::Status::with_details(
            tonic::Code::Unknown,
            "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3",
            st.encode_to_vec().into(),
        )
    }

    #[test]
    fn reads_the_json_detail_of_docker_engines_buildkit() {
        // As Engine 26 sends it (`github.com/moby/buildkit/errdefs.Source+json`).
        let json = br#"{"info":{"filename":"Dockerfile","data":"RlJPTSBidXN5Ym94ClJVTiBleGl0IDcK","language":"Dockerfile"},"ranges":[{"start":{"line":2},"end":{"line":2}}]}"#;
        let st = RpcStatus {
            code: 2,
            message: "x".into(),
            details: vec![prost_types::Any {
                type_url: "github.com/moby/buildkit/errdefs.Source+json".into(),
                value: json.to_vec(),
            }],
        };
        let status = tonic::Status::with_details(
            tonic::Code::Unknown,
            "exit code: 7",
            st.encode_to_vec().into(),
        );
        assert_eq!(
            report(&status),
            "Dockerfile:2\n\
             --------------------\n   \
             1 |     FROM busybox\n   \
             2 | >>> RUN exit 7\n   \
             3 |     \n\
             --------------------\n\
             ERROR: failed to solve: exit code: 7\n"
        );
    }

    #[test]
    fn prints_the_dockerfile_lines_as_buildx() {
        let df = "FROM busybox\nCOPY a /a\nRUN echo hello; echo world >&2\nRUN exit 3\n";
        assert_eq!(
            report(&status_with_source(df, 4)),
            "Dockerfile:4\n\
             --------------------\n   \
             2 |     COPY a /a\n   \
             3 |     RUN echo hello; echo world >&2\n   \
             4 | >>> RUN exit 3\n   \
             5 |     \n\
             --------------------\n\
             ERROR: failed to solve: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3\n"
        );
        assert_eq!(
            report(&status_with_source(df, 3))
                .lines()
                .take(7)
                .collect::<Vec<_>>(),
            [
                "Dockerfile:3",
                "--------------------",
                "   1 |     FROM busybox",
                "   2 |     COPY a /a",
                "   3 | >>> RUN echo hello; echo world >&2",
                "   4 |     RUN exit 3",
                "   5 |     ",
            ]
        );
    }

    #[test]
    fn plain_errors_have_only_the_error_line() {
        let s =
            tonic::Status::permission_denied("the security.insecure entitlement is not allowed");
        assert_eq!(
            report(&s),
            "ERROR: failed to solve: the security.insecure entitlement is not allowed\n"
        );
    }
}
