//! Command-line definitions, docker's shape.
//!
//! Only parsing lives here. Flags docker has and berth does not support are
//! still declared, so that using one gets "not supported by berth" rather
//! than a parse error; `Unsupported` collects them.

use clap::{Args, Parser, Subcommand};

pub use crate::build::flags::BuildArgs;

#[derive(Debug, Parser)]
#[command(
    name = "docker",
    bin_name = "docker",
    disable_version_flag = true,
    disable_help_subcommand = true,
    about = "A docker-compatible CLI for sandboxes (berth)"
)]
pub struct Cli {
    /// Print version information and quit
    #[arg(short = 'v', long = "version", global = false)]
    pub version: bool,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Set the logging level (accepted for compatibility)
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Daemon socket to connect to (not supported: berth only talks to its gateway)
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Option<String>,
    /// Name of the context to use (not supported)
    #[arg(short = 'c', long = "context", value_name = "CONTEXT")]
    pub context: Option<String>,
    /// Location of client config files (accepted for compatibility)
    #[arg(long = "config", value_name = "DIR")]
    pub config: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// List containers
    #[command(alias = "container-ls")]
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// List images
    Images(ImagesArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(crate::commands::tag::TagArgs),
    /// Remove one or more images
    Rmi(crate::commands::rmi::RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(crate::commands::save::SaveArgs),
    /// Show the Docker version information
    Version(FormatArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Manage containers
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
    /// Manage images
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Manage builds
    Builder {
        #[command(subcommand)]
        command: BuilderCommand,
    },
    /// Docker Buildx
    Buildx {
        #[command(subcommand)]
        command: BuilderCommand,
    },
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Docker Compose (not yet supported by berth)
    #[command(disable_help_flag = true)]
    Compose(PassThrough),
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    Run(RunArgs),
    Create(RunArgs),
    Start(StartArgs),
    Exec(ExecArgs),
    #[command(alias = "ps", alias = "list")]
    Ls(PsArgs),
    Logs(LogsArgs),
    Stop(StopArgs),
    Kill(KillArgs),
    #[command(alias = "remove")]
    Rm(RmArgs),
    Wait(WaitArgs),
    Inspect(InspectArgs),
}

// Parsed once per process; boxing the large build flags would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    #[command(alias = "list", alias = "images")]
    Ls(ImagesArgs),
    Load(LoadArgs),
    Inspect(InspectArgs),
    Build(BuildArgs),
    Tag(crate::commands::tag::TagArgs),
    #[command(alias = "remove", alias = "rmi")]
    Rm(crate::commands::rmi::RmiArgs),
    Save(crate::commands::save::SaveArgs),
    Prune(crate::commands::prune::PruneArgs),
}

/// `docker builder …` and `docker buildx …`: only `build` (`b`).
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Start a build
    #[command(alias = "b")]
    Build(BuildArgs),
}

/// Arguments of a command berth does not implement yet; kept whole for the message.
#[derive(Debug, Args)]
pub struct PassThrough {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Bind mount a volume (SRC:DST[:ro|rw]); SRC must be inside the sandbox workspace
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Give extended privileges to this container (refused by the gateway)
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use
    #[arg(long)]
    pub uts: Option<String>,
    /// Connect a container to a network (only the sandbox's network)
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Add a host device to the container (refused by the gateway)
    #[arg(long)]
    pub device: Vec<String>,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long)]
    pub pull: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub unsupported: UnsupportedRunFlags,
    /// The image to run
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Command and arguments
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// docker run flags berth declares but does not support.
#[derive(Debug, Args, Default)]
pub struct UnsupportedRunFlags {
    #[arg(short = 'p', long = "publish", hide = true)]
    pub publish: Vec<String>,
    #[arg(short = 'P', long = "publish-all", hide = true)]
    pub publish_all: bool,
    #[arg(long, hide = true)]
    pub restart: Option<String>,
    #[arg(long, hide = true)]
    pub gpus: Option<String>,
    #[arg(long = "add-host", hide = true)]
    pub add_host: Vec<String>,
    #[arg(long, hide = true)]
    pub dns: Vec<String>,
    #[arg(long, hide = true)]
    pub mount: Vec<String>,
    #[arg(long, hide = true)]
    pub tmpfs: Vec<String>,
    #[arg(long, hide = true)]
    pub ulimit: Vec<String>,
    #[arg(long, hide = true)]
    pub sysctl: Vec<String>,
    #[arg(long, hide = true)]
    pub userns: Option<String>,
    #[arg(long, hide = true)]
    pub cgroupns: Option<String>,
    #[arg(long = "group-add", hide = true)]
    pub group_add: Vec<String>,
    #[arg(long = "log-driver", hide = true)]
    pub log_driver: Option<String>,
    #[arg(long = "log-opt", hide = true)]
    pub log_opt: Vec<String>,
    #[arg(long = "volumes-from", hide = true)]
    pub volumes_from: Vec<String>,
    #[arg(long, hide = true)]
    pub link: Vec<String>,
    #[arg(long, hide = true)]
    pub expose: Vec<String>,
    #[arg(long = "shm-size", hide = true)]
    pub shm_size: Option<String>,
    #[arg(long = "cgroup-parent", hide = true)]
    pub cgroup_parent: Option<String>,
    #[arg(long, hide = true)]
    pub cidfile: Option<String>,
    #[arg(short = 'a', long, hide = true)]
    pub attach: Vec<String>,
    #[arg(long = "detach-keys", hide = true)]
    pub detach_keys: Option<String>,
    #[arg(long = "label-file", hide = true)]
    pub label_file: Vec<String>,
    #[arg(long = "health-cmd", hide = true)]
    pub health_cmd: Option<String>,
}

impl UnsupportedRunFlags {
    /// The first unsupported flag that was used, as the user spelled it.
    pub fn first_used(&self) -> Option<&'static str> {
        let u = self;
        [
            (!u.publish.is_empty(), "--publish"),
            (u.publish_all, "--publish-all"),
            (u.restart.is_some(), "--restart"),
            (u.gpus.is_some(), "--gpus"),
            (!u.add_host.is_empty(), "--add-host"),
            (!u.dns.is_empty(), "--dns"),
            (!u.mount.is_empty(), "--mount"),
            (!u.tmpfs.is_empty(), "--tmpfs"),
            (!u.ulimit.is_empty(), "--ulimit"),
            (!u.sysctl.is_empty(), "--sysctl"),
            (u.userns.is_some(), "--userns"),
            (u.cgroupns.is_some(), "--cgroupns"),
            (!u.group_add.is_empty(), "--group-add"),
            (u.log_driver.is_some(), "--log-driver"),
            (!u.log_opt.is_empty(), "--log-opt"),
            (!u.volumes_from.is_empty(), "--volumes-from"),
            (!u.link.is_empty(), "--link"),
            (!u.expose.is_empty(), "--expose"),
            (u.shm_size.is_some(), "--shm-size"),
            (u.cgroup_parent.is_some(), "--cgroup-parent"),
            (u.cidfile.is_some(), "--cidfile"),
            (!u.attach.is_empty(), "--attach"),
            (u.detach_keys.is_some(), "--detach-keys"),
            (!u.label_file.is_empty(), "--label-file"),
            (u.health_cmd.is_some(), "--health-cmd"),
        ]
        .into_iter()
        .find_map(|(used, name)| used.then_some(name))
    }
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Give extended privileges to the command (refused by the gateway)
    #[arg(long)]
    pub privileged: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last")]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since timestamp or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m)
    #[arg(long)]
    pub until: Option<String>,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link (not supported)
    #[arg(short = 'l', long)]
    pub link: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Return JSON for specified type ("container" or "image")
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Load only the given platform (not supported)
    #[arg(long)]
    pub platform: Option<String>,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository (not supported)
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable (only the native one)
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Skip image verification (accepted for compatibility)
    #[arg(long = "disable-content-trust", hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub disable_content_trust: Option<String>,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository (not supported)
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Push a platform-specific manifest (not supported)
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Skip image signing (accepted for compatibility)
    #[arg(long = "disable-content-trust", hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub disable_content_trust: Option<String>,
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}
