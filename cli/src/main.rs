//! berth: the docker-compatible CLI of a sandbox.
//!
//! Invoked as `docker` (a symlink or argv[0]) it is the docker CLI an agent
//! expects; every daemon call goes to berth-gateway.

mod build;
mod cli;
mod client;
mod commands;
mod containers;
mod env;
mod error;
mod format;
mod image;
mod refs;
mod registry;
mod spec;
mod stdio;

use clap::Parser;

use crate::cli::{BuilderCommand, Cli, Command, ContainerCommand, ImageCommand};
use crate::client::Gateway;
use crate::error::{exit, CliError, Result};

fn main() {
    // A closed stdout (`docker ps | head -1`) ends the program quietly, as
    // docker does, instead of panicking in println!.
    reset_sigpipe();

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => usage_exit_code(),
            };
            if e.kind() == ErrorKind::UnknownArgument {
                // docker's wording: `unknown flag: --x` then where to look.
                use clap::error::{ContextKind, ContextValue};
                if let Some(ContextValue::String(flag)) = e.get(ContextKind::InvalidArg) {
                    let flag = flag.split('=').next().unwrap_or(flag);
                    eprintln!("unknown flag: {flag}");
                    eprintln!("See '{} --help'.", command_path());
                    std::process::exit(code);
                }
            }
            let _ = e.print();
            std::process::exit(code);
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("starting the async runtime");
    let code = match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", error_line(&e));
            e.code
        }
    };
    // Pending stdin reads must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(10));
    std::process::exit(code);
}

/// docker prints daemon errors as `docker: Error response from daemon: …` for
/// run/create and `Error response from daemon: …` otherwise; berth keeps the
/// shorter form, prefixed like docker's own CLI errors.
fn error_line(e: &CliError) -> String {
    let prog = program_name();
    if e.message.starts_with(&format!("{prog}:")) || e.message.starts_with("Error") {
        e.message.clone()
    } else {
        format!("{prog}: {}", e.message)
    }
}

/// docker exits 125 for usage errors of run/create/exec and 1 for the others;
/// clap does not tell which subcommand failed, so look at argv.
fn usage_exit_code() -> i32 {
    let first_cmd = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    match first_cmd.as_str() {
        "run" | "create" | "exec" | "container" => exit::DAEMON,
        _ => exit::USAGE,
    }
}

/// `docker run`, `docker image ls`: the program and its (sub)command words, for hints.
fn command_path() -> String {
    let mut words = vec![program_name()];
    for a in std::env::args().skip(1) {
        if a.starts_with('-') {
            break;
        }
        words.push(a.clone());
        if !matches!(a.as_str(), "container" | "image") {
            break;
        }
    }
    words.join(" ")
}

fn program_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "docker".to_string())
}

fn reset_sigpipe() {
    // SIG_DFL for SIGPIPE: writes to a closed pipe end the process with no message.
    #[allow(unsafe_code)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn not_supported(what: &str) -> CliError {
    CliError::new(exit::DAEMON, format!("{what} is not supported by berth"))
}

async fn dispatch(cli: Cli) -> Result<i32> {
    if cli.version {
        println!("{}", commands::version::short_version());
        return Ok(0);
    }
    if cli.host.is_some() {
        return Err(not_supported("--host"));
    }
    if cli.context.is_some() {
        return Err(not_supported("--context"));
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return Ok(0);
    };
    match command {
        Command::Build(a)
        | Command::Image {
            command: ImageCommand::Build(a),
        }
        | Command::Builder {
            command: BuilderCommand::Build(a),
        }
        | Command::Buildx {
            command: BuilderCommand::Build(a),
        } => return commands::build::build(a).await,
        Command::Login(a) => return commands::login::login(a).await,
        Command::Logout(a) => return commands::login::logout(a).await,
        Command::Compose(_) => return Err(not_supported("docker compose (in this version)")),
        _ => {}
    }
    let gw = Gateway::connect().await?;
    use commands::*;
    match command {
        Command::Run(a)
        | Command::Container {
            command: ContainerCommand::Run(a),
        } => run::run(&gw, a).await,
        Command::Create(a)
        | Command::Container {
            command: ContainerCommand::Create(a),
        } => run::create(&gw, a).await,
        Command::Start(a)
        | Command::Container {
            command: ContainerCommand::Start(a),
        } => run::start(&gw, a).await,
        Command::Exec(a)
        | Command::Container {
            command: ContainerCommand::Exec(a),
        } => exec::exec(&gw, a).await,
        Command::Ps(a)
        | Command::Container {
            command: ContainerCommand::Ls(a),
        } => ps::ps(&gw, a).await,
        Command::Logs(a)
        | Command::Container {
            command: ContainerCommand::Logs(a),
        } => logs::logs(&gw, a).await,
        Command::Stop(a)
        | Command::Container {
            command: ContainerCommand::Stop(a),
        } => lifecycle::stop(&gw, a).await,
        Command::Kill(a)
        | Command::Container {
            command: ContainerCommand::Kill(a),
        } => lifecycle::kill(&gw, a).await,
        Command::Rm(a)
        | Command::Container {
            command: ContainerCommand::Rm(a),
        } => lifecycle::rm(&gw, a).await,
        Command::Wait(a)
        | Command::Container {
            command: ContainerCommand::Wait(a),
        } => lifecycle::wait(&gw, a).await,
        Command::Inspect(a) => inspect::inspect(&gw, a, None).await,
        Command::Container {
            command: ContainerCommand::Inspect(a),
        } => inspect::inspect(&gw, a, Some(inspect::Kind::Container)).await,
        Command::Image {
            command: ImageCommand::Inspect(a),
        } => inspect::inspect(&gw, a, Some(inspect::Kind::Image)).await,
        Command::Images(a)
        | Command::Image {
            command: ImageCommand::Ls(a),
        } => images::images(&gw, a).await,
        Command::Load(a)
        | Command::Image {
            command: ImageCommand::Load(a),
        } => load::load(&gw, a).await,
        Command::Tag(a)
        | Command::Image {
            command: ImageCommand::Tag(a),
        } => tag::tag(&gw, a).await,
        Command::Rmi(a)
        | Command::Image {
            command: ImageCommand::Rm(a),
        } => rmi::rmi(&gw, a).await,
        Command::Save(a)
        | Command::Image {
            command: ImageCommand::Save(a),
        } => save::save(&gw, a).await,
        Command::Image {
            command: ImageCommand::Prune(a),
        } => prune::prune(&gw, a).await,
        Command::Pull(a) => pull::pull(&gw, a).await,
        Command::Push(a) => push::push(&gw, a).await,
        Command::Version(a) => version::version(&gw, a).await,
        Command::Info(a) => info::info(&gw, a).await,
        Command::Build(_)
        | Command::Builder { .. }
        | Command::Buildx { .. }
        | Command::Image {
            command: ImageCommand::Build(_),
        }
        | Command::Login(_)
        | Command::Logout(_)
        | Command::Compose(_) => {
            unreachable!()
        }
    }
}
