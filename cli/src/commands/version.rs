//! `docker version` and `docker --version`.
//!
//! Version choice: berth follows docker CLI 26.1's command surface, so it
//! reports `26.1.5+berth.<berth version>` as the client and engine version:
//! a semver whose precedence equals 26.1.5 (build metadata after `+` does
//! not count), shaped like Debian's `26.1.5+dfsg1`, so scripts that check
//! `docker version --format '{{.Server.Version}}'` against a minimum keep
//! working, while the `+berth` suffix says what answers. The real daemon,
//! containerd behind berth-gateway, is listed as a server component with
//! the version the gateway reports. Values berth cannot know (Go version,
//! git commit, build time) are written as such, never invented.

use serde_json::{json, Value};

use crate::cli::FormatArgs;
use crate::client::Gateway;
use crate::error::{CliError, Result};
use crate::format::{self, output, tabwriter, Mode};
use crate::image;

/// The docker release whose CLI berth follows.
pub const DOCKER_COMPAT_VERSION: &str = "26.1.5";
/// The docker API version of that release.
pub const API_VERSION: &str = "1.45";
pub const MIN_API_VERSION: &str = "1.24";
/// Written where docker prints a Go toolchain version.
const NO_GO: &str = "none (berth is written in Rust)";
const UNKNOWN: &str = "unknown";

/// docker's default `version` template, with `getDetailsOrder` replaced by a
/// range over the details map (Go's range visits keys sorted, as that
/// function sorts them).
const DEFAULT_TEMPLATE: &str = r#"{{with .Client -}}
Client:{{if ne .Platform nil}}{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}{{end}}
 Version:	{{.Version}}
 API version:	{{.ApiVersion}}{{if ne .ApiVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:	{{.Version}}
  API version:	{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:	{{index .Details "GoVersion"}}
  Git commit:	{{index .Details "GitCommit"}}
  Built:	{{index .Details "BuildTime"}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:	{{index .Details "Experimental"}}
  {{- else }}
  Version:	{{$component.Version}}
  {{- range $key, $value := $component.Details}}
  {{$key}}:	{{$value}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}"#;

/// `26.1.5+berth.0.1.0`.
pub fn client_version() -> String {
    format!(
        "{DOCKER_COMPAT_VERSION}+berth.{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// `docker --version`: `Docker version 26.1.5+berth.0.1.0, build berth-0.1.0`
/// (docker prints its git commit after `build`; berth names itself).
pub fn short_version() -> String {
    format!(
        "Docker version {}, build berth-{}",
        client_version(),
        env!("CARGO_PKG_VERSION")
    )
}

/// Go's names for this machine's OS and architecture.
pub(crate) fn os_arch() -> (String, String) {
    let p = image::host_platform();
    (p.os, p.architecture)
}

/// The running kernel's release, as `uname -r`.
pub(crate) fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn client_json() -> Value {
    let (os, arch) = os_arch();
    json!({
        "Platform": {"Name": "berth"},
        "Version": client_version(),
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": UNKNOWN,
        "GoVersion": NO_GO,
        "Os": os,
        "Arch": arch,
        "BuildTime": UNKNOWN,
        "Context": "default",
    })
}

/// What the gateway reports of the daemon behind it.
pub(crate) async fn daemon_version(gw: &Gateway) -> Result<(String, String)> {
    use containerd_client::services::v1::version_client::VersionClient;
    let v = VersionClient::new(gw.channel.clone())
        .version(())
        .await?
        .into_inner();
    Ok((v.version, v.revision))
}

fn server_json(containerd: &str, revision: &str) -> Value {
    let (os, arch) = os_arch();
    let kernel = kernel_version();
    json!({
        "Platform": {"Name": "berth-gateway"},
        "Components": [
            {
                "Name": "Engine",
                "Version": client_version(),
                "Details": {
                    "ApiVersion": API_VERSION,
                    "Arch": arch,
                    "BuildTime": UNKNOWN,
                    "Experimental": "false",
                    "GitCommit": UNKNOWN,
                    "GoVersion": NO_GO,
                    "KernelVersion": kernel,
                    "MinAPIVersion": MIN_API_VERSION,
                    "Os": os,
                },
            },
            {"Name": "containerd", "Version": containerd, "Details": {"GitCommit": revision}},
        ],
        "Version": client_version(),
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": UNKNOWN,
        "GoVersion": NO_GO,
        "Os": os,
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": UNKNOWN,
    })
}

pub async fn version(
    gw: &crate::client::Gateway,
    a: crate::cli::FormatArgs,
) -> crate::error::Result<i32> {
    output::finish(run(gw, a).await)
}

async fn run(gw: &Gateway, a: FormatArgs) -> Result<i32> {
    let source = match a.format.as_deref() {
        None | Some("") => DEFAULT_TEMPLATE,
        Some("json") => "{{json .}}",
        Some(f) => f,
    };
    let template = format::parse_named("version", source)?;
    // As docker: the client part is printed even when the server fails.
    let (server, err) = match daemon_version(gw).await {
        Ok((v, r)) => (server_json(&v, &r), None),
        Err(e) => (
            Value::Null,
            Some(CliError::general(format!(
                "Error response from daemon: {}",
                e.message
            ))),
        ),
    };
    let data = json!({"Client": client_json(), "Server": server});
    let (text, exec_err) = match template.execute(&data, Mode::Strict) {
        Ok(t) => (t, None),
        Err(e) => (
            template.execute_partial(&data, Mode::Strict),
            Some(CliError::general(e.to_string())),
        ),
    };
    output::print(&tabwriter::align(&format!("{text}\n"), 20, 1))?;
    match err.or(exec_err) {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_semver_with_berth_metadata() {
        let v = client_version();
        assert!(v.starts_with("26.1.5+berth."), "{v}");
        assert_eq!(
            short_version(),
            format!(
                "Docker version {v}, build berth-{}",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn default_layout_matches_docker() {
        let t = format::parse_named("version", DEFAULT_TEMPLATE).unwrap();
        let data = json!({"Client": client_json(), "Server": server_json("1.7.24", "abc")});
        let text = tabwriter::align(
            &format!("{}\n", t.execute(&data, Mode::Strict).unwrap()),
            20,
            1,
        );
        let (os, arch) = os_arch();
        let v = client_version();
        let want_head = format!(
            "Client: berth\n Version:           {v}\n API version:       1.45\n Go version:        {NO_GO}\n Git commit:        unknown\n Built:             unknown\n OS/Arch:           {os}/{arch}\n Context:           default\n\nServer: berth-gateway\n Engine:\n  Version:          {v}\n  API version:      1.45 (minimum version 1.24)\n"
        );
        assert!(text.starts_with(&want_head), "{text}");
        assert!(
            text.ends_with(" containerd:\n  Version:          1.7.24\n  GitCommit:        abc\n"),
            "{text}"
        );
        let client_only = json!({"Client": client_json(), "Server": null});
        let text = t.execute(&client_only, Mode::Strict).unwrap();
        assert!(text.ends_with(" Context:\tdefault"), "{text}");
    }
}
