//! `docker build` flags, docker's (buildx's) shape.
//!
//! Only parsing lives here; [`super::options`] turns these into a checked
//! build. Flags docker has and berth does not support are declared, so that
//! using one gets "not supported by berth" rather than a parse error.

use clap::Args;

#[derive(Debug, Args, Default)]
#[command(disable_help_flag = true)]
pub struct BuildArgs {
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Name and optionally a tag (format: "name:tag")
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"); "-" reads it from stdin
    #[arg(short = 'f', long = "file", value_name = "PATHFILE")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Do not cache specified stages
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
    /// Always attempt to pull all referenced images
    #[arg(long)]
    pub pull: bool,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")
    #[arg(long)]
    pub secret: Vec<String>,
    /// SSH agent socket or keys to expose to the build (format: "default|<id>[=<socket>|<key>[,<key>]]")
    #[arg(long)]
    pub ssh: Vec<String>,
    /// Set metadata for an image
    #[arg(long)]
    pub label: Vec<String>,
    /// Set target platform for build (only the native platform)
    #[arg(long)]
    pub platform: Vec<String>,
    /// Set type of progress output ("auto", "plain", "tty", "quiet", "rawjson")
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image ID to a file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<String>,
    /// Output destination (format: "type=local,dest=path")
    #[arg(short = 'o', long)]
    pub output: Vec<String>,
    /// Set the networking mode for the "RUN" instructions during build (only "default")
    #[arg(long)]
    pub network: Option<String>,
    /// Additional build contexts (e.g., name=path)
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_context: Vec<String>,
    /// Shorthand for "--output=type=docker" (berth always loads the image)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub load: Option<String>,
    /// Shorthand for "--attest=type=provenance" (only "false" is accepted)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub provenance: Option<String>,
    /// Shorthand for "--attest=type=sbom" (only "false" is accepted)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sbom: Option<String>,
    /// Remove intermediate containers after a successful build (always the case)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, hide = true)]
    pub rm: Option<String>,
    /// Always remove intermediate containers (always the case)
    #[arg(long = "force-rm", hide = true)]
    pub force_rm: bool,
    #[command(flatten)]
    pub unsupported: UnsupportedBuildFlags,
    /// The build context: a directory, or "-" to read a Dockerfile from stdin
    #[arg(value_name = "PATH | URL | -")]
    pub context: Vec<String>,
}

/// docker build flags berth declares but does not support.
#[derive(Debug, Args, Default)]
pub struct UnsupportedBuildFlags {
    #[arg(long = "add-host", hide = true)]
    pub add_host: Vec<String>,
    #[arg(long, hide = true)]
    pub allow: Vec<String>,
    #[arg(long, hide = true)]
    pub annotation: Vec<String>,
    #[arg(long, hide = true)]
    pub attest: Vec<String>,
    #[arg(long, hide = true)]
    pub builder: Option<String>,
    #[arg(long = "cache-from", hide = true)]
    pub cache_from: Vec<String>,
    #[arg(long = "cache-to", hide = true)]
    pub cache_to: Vec<String>,
    #[arg(long = "cgroup-parent", hide = true)]
    pub cgroup_parent: Option<String>,
    #[arg(long = "metadata-file", hide = true)]
    pub metadata_file: Option<String>,
    #[arg(long, hide = true)]
    pub push: bool,
    #[arg(long = "shm-size", hide = true)]
    pub shm_size: Option<String>,
    #[arg(long, hide = true)]
    pub ulimit: Vec<String>,
    #[arg(long, hide = true)]
    pub squash: bool,
    #[arg(long, hide = true)]
    pub compress: bool,
    #[arg(long, hide = true)]
    pub isolation: Option<String>,
    #[arg(short = 'm', long, hide = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap", hide = true)]
    pub memory_swap: Option<String>,
    #[arg(short = 'c', long = "cpu-shares", hide = true)]
    pub cpu_shares: Option<String>,
    #[arg(long = "cpuset-cpus", hide = true)]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems", hide = true)]
    pub cpuset_mems: Option<String>,
    #[arg(long = "cpu-period", hide = true)]
    pub cpu_period: Option<String>,
    #[arg(long = "cpu-quota", hide = true)]
    pub cpu_quota: Option<String>,
    #[arg(long = "security-opt", hide = true)]
    pub security_opt: Vec<String>,
}

impl UnsupportedBuildFlags {
    /// The first unsupported flag that was used, as the user spelled it.
    pub fn first_used(&self) -> Option<&'static str> {
        let u = self;
        [
            (!u.add_host.is_empty(), "--add-host"),
            (!u.allow.is_empty(), "--allow"),
            (!u.annotation.is_empty(), "--annotation"),
            (!u.attest.is_empty(), "--attest"),
            (u.builder.is_some(), "--builder"),
            (!u.cache_from.is_empty(), "--cache-from"),
            (!u.cache_to.is_empty(), "--cache-to"),
            (u.cgroup_parent.is_some(), "--cgroup-parent"),
            (u.metadata_file.is_some(), "--metadata-file"),
            (u.push, "--push"),
            (u.shm_size.is_some(), "--shm-size"),
            (!u.ulimit.is_empty(), "--ulimit"),
            (u.squash, "--squash"),
            (u.compress, "--compress"),
            (u.isolation.is_some(), "--isolation"),
            (u.memory.is_some(), "--memory"),
            (u.memory_swap.is_some(), "--memory-swap"),
            (u.cpu_shares.is_some(), "--cpu-shares"),
            (u.cpuset_cpus.is_some(), "--cpuset-cpus"),
            (u.cpuset_mems.is_some(), "--cpuset-mems"),
            (u.cpu_period.is_some(), "--cpu-period"),
            (u.cpu_quota.is_some(), "--cpu-quota"),
            (!u.security_opt.is_empty(), "--security-opt"),
        ]
        .into_iter()
        .find_map(|(used, name)| used.then_some(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        b: BuildArgs,
    }

    fn parse(args: &[&str]) -> BuildArgs {
        let mut v = vec!["build"];
        v.extend_from_slice(args);
        T::try_parse_from(v).expect("parses").b
    }

    #[test]
    fn parses_docker_shaped_flags() {
        let b = parse(&[
            "-t",
            "a",
            "--tag=b:1",
            "-f",
            "-",
            "--build-arg",
            "X=1",
            "--no-cache",
            "-q",
            ".",
        ]);
        assert_eq!(b.tags, ["a", "b:1"]);
        assert_eq!(b.file.as_deref(), Some("-"));
        assert_eq!(b.build_args, ["X=1"]);
        assert!(b.no_cache && b.quiet);
        assert_eq!(b.context, ["."]);
    }

    #[test]
    fn stdin_context_is_a_positional() {
        assert_eq!(parse(&["-"]).context, ["-"]);
        assert_eq!(parse(&["-f", "-", "-"]).context, ["-"]);
    }

    #[test]
    fn unknown_flags_are_not_taken_for_the_context() {
        let err = T::try_parse_from(["build", "--bogus", "x"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn optional_value_flags() {
        let b = parse(&["--load", "--provenance=false", "."]);
        assert_eq!(b.load.as_deref(), Some("true"));
        assert_eq!(b.provenance.as_deref(), Some("false"));
        assert_eq!(b.context, ["."]);
    }

    #[test]
    fn unsupported_flags_are_named() {
        assert_eq!(
            parse(&["--cache-from", "x", "."]).unsupported.first_used(),
            Some("--cache-from")
        );
        assert_eq!(
            parse(&["--push", "."]).unsupported.first_used(),
            Some("--push")
        );
        assert_eq!(parse(&["."]).unsupported.first_used(), None);
    }
}
