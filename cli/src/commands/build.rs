//! `docker build` (also `docker image build`, `docker builder build`,
//! `docker buildx build`).
//!
//! Flags are decoded first (`build::options`), then the sources prepared,
//! the sandbox's images offered as named contexts (`build::named`), the
//! session opened with what it serves (`build::session`), and the solve run
//! with its progress shown (`build::solve`, `build::progress`). By default
//! BuildKit writes the image into the session's export store, which
//! accepts only the blobs the sandbox lacks, and the store then imports it
//! into the sandbox's images through the gateway (`build::store`), starting
//! as soon as BuildKit's exporter is done rather than when Solve returns
//! (`build::early`).
//!
//! Exit codes, as docker's: 1 when the build fails (a failing step, a
//! refusal by the gateway, a bad flag: buildx prints all of them as
//! `ERROR: …`), 125 when the gateway cannot be reached at all, or it or
//! BuildKit behind it goes away during the build (`CliError::unavailable`).

use std::collections::BTreeMap;
use std::io::Write;

use containerd_client::services::v1::content_client::ContentClient;

use crate::build::context::{self, ExportSink, LocalDirs, TransferStats};
use crate::build::dockerfile;
use crate::build::early;
use crate::build::flags::BuildArgs;
use crate::build::import;
use crate::build::named;
use crate::build::options::{BuildOptions, Dest, Env, Invalid, Output, RealEnv};
use crate::build::progress::Display;
use crate::build::session::{self, methods, Identity, Services, Session};
use crate::build::sources;
use crate::build::store::layout::Loaded;
use crate::build::store::{self as build_store, ExportStore, NamedStore, SessionContent};
use crate::build::{daemon, failure, solve};
use crate::client::Gateway;
use crate::env;
use crate::error::{CliError, Result};

/// What plain progress prints first, as buildx names its builder.
const HEADER: &str = "#0 building with \"berth\" instance using remote driver";

pub async fn build(a: BuildArgs) -> Result<i32> {
    match run(a).await {
        Ok(code) => Ok(code),
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("ERROR: {}", e.message);
            }
            Ok(e.code)
        }
    }
}

impl From<Invalid> for CliError {
    fn from(i: Invalid) -> Self {
        CliError::general(i.to_string())
    }
}

async fn run(a: BuildArgs) -> Result<i32> {
    let env_ = RealEnv;
    let opts = BuildOptions::decode(&a, &env_)?;
    if let Some(f) = &opts.iidfile {
        // A stale ID must not survive a failed build.
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CliError::general(format!(
                    "removing iidfile {}: {e}",
                    f.display()
                )))
            }
        }
    }
    let src = sources::prepare(&opts.context, &opts.dockerfile, &opts.dockerfile_name)?;
    let control = daemon::connect().await?;
    let gw = Gateway::connect().await?;

    // The sandbox's images as FROM bases.
    let native = env_.platform();
    let (os, rest) = native.split_once('/').unwrap_or(("linux", "amd64"));
    let (arch, variant) = match rest.split_once('/') {
        Some((a, v)) => (a, Some(v)),
        None => (rest, None),
    };
    let bases = src
        .dockerfile_text
        .as_deref()
        .map(|t| {
            dockerfile::base_images(
                t,
                &opts.build_args,
                &dockerfile::platform_args(os, arch, variant),
            )
        })
        .unwrap_or_default();
    let store = session::random_id();
    let (offered, made) = named::offer(&gw, &store, &bases, &opts.image_contexts, &native)
        .await
        .map_err(CliError::from)?;
    let mut frontend_attrs = opts.frontend_attrs.clone();
    for o in &offered {
        frontend_attrs.insert(o.attr.0.clone(), o.attr.1.clone());
    }

    // What the session serves.
    let mut dirs = LocalDirs::new();
    dirs.add("context", src.context_dir.clone());
    dirs.add("dockerfile", src.dockerfile_dir.clone());
    let stats = TransferStats::new();
    let mut services =
        Services::new().add(context::file_sync(dirs, stats.clone()), methods::FILE_SYNC);
    let mut secret_list = Vec::new();
    for s in &opts.secrets {
        secret_list
            .push(context::parse_secret_flag(s).map_err(|e| CliError::general(e.to_string()))?);
    }
    services = services.add(
        context::secrets(secret_list).map_err(|e| CliError::general(e.to_string()))?,
        methods::SECRETS,
    );
    if !opts.ssh.is_empty() {
        let mut agents = Vec::new();
        for s in &opts.ssh {
            agents.push(context::parse_ssh_flag(s).map_err(|e| CliError::general(e.to_string()))?);
        }
        services = services.add(context::ssh(agents), methods::SSH);
    }
    // By default the image goes into the sandbox through the session's
    // export store: BuildKit writes only the blobs the sandbox lacks.
    let export = match opts.output {
        Output::Load => Some(ExportStore::new(&gw).map_err(store_error)?),
        _ => None,
    };
    if !offered.is_empty() || export.is_some() {
        let sources: Vec<String> = offered.iter().map(|o| o.source.clone()).collect();
        let named_stores = if sources.is_empty() {
            Vec::new()
        } else {
            vec![NamedStore::walk(&gw, &store, &sources)
                .await
                .map_err(store_error)?]
        };
        let inner = SessionContent::new(
            ContentClient::new(gw.channel.clone()),
            named_stores,
            export.clone(),
        );
        services = services.add(
            named::content_service(inner, &store, made),
            build_store::METHODS,
        );
    }
    let (exporter, mut exporter_attrs) = match &opts.output {
        Output::Load => {
            let mut attrs = BTreeMap::from([("tar".to_string(), "false".to_string())]);
            if !opts.tags.is_empty() {
                attrs.insert("name".to_string(), opts.tags.join(","));
            }
            ("oci".to_string(), attrs)
        }
        Output::Tar(dest) => {
            services = services.add(context::file_send(sink(dest)), methods::FILE_SEND);
            ("tar".to_string(), BTreeMap::new())
        }
        Output::Image { kind, dest, attrs } => {
            services = services.add(context::file_send(sink(dest)), methods::FILE_SEND);
            (kind.to_string(), attrs.clone())
        }
        Output::Local(dest) => {
            services = services.add(context::file_receive_dir(dest.clone()), methods::FILE_SEND);
            ("local".to_string(), BTreeMap::new())
        }
    };
    if matches!(opts.output, Output::Image { .. }) && !opts.tags.is_empty() {
        exporter_attrs
            .entry("name".to_string())
            .or_insert_with(|| opts.tags.join(","));
    }

    let name = src
        .context_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "berth".to_string());
    let who = Identity::new(&name, &src.context_dir.to_string_lossy());
    let session = Session::open(&daemon::socket_path()?, &who, services)
        .await
        .map_err(|e| match e {
            // the gateway or BuildKit is not there: a daemon error (125)
            session::SessionError::Refused(s) if s.code() == tonic::Code::Unavailable => {
                CliError::unavailable(&s).unwrap_or_else(|| CliError::daemon(s.message()))
            }
            session::SessionError::Refused(s) => CliError::general(format!(
                "failed to solve: {}",
                CliError::from_status(&s).message
            )),
            other => CliError::general(other.to_string()),
        })?;

    let job = solve::Job {
        build_ref: session::random_id(),
        session: who.id.clone(),
        frontend_attrs,
        exporter,
        exporter_attrs,
    };
    let mut display = Display::new(opts.progress, HEADER);
    let mut importing = export.map(|e| early::Import::new(e, gw.clone(), opts.tags.clone()));
    let result = match importing.as_mut() {
        Some(i) => solve::run_watched(&control, &job, &mut display, |s| i.observe(s)).await,
        None => solve::run(&control, &job, &mut display).await,
    };
    session.close();
    let response = match result {
        Ok(r) => r,
        Err(status) => {
            // An early import may be running: let it end. Whatever it
            // named stays named, as with docker's own exporter.
            if let Some(i) = importing {
                i.settle().await;
            }
            display.done();
            debug_transfer(&stats, None);
            // The gateway or BuildKit went away: a daemon error, not a failed build.
            if let Some(e) = CliError::unavailable(&status) {
                return Err(e);
            }
            eprint!("{}", failure::report(&status));
            return Ok(1);
        }
    };

    let id = match importing {
        Some(importing) => {
            let done = match build_store::root_descriptor(&response) {
                Ok(root) => importing.finish(&root).await,
                Err(e) => {
                    importing.settle().await;
                    Err(e)
                }
            };
            let early::Done { started, loaded } = match done {
                Ok(d) => d,
                Err(e) => {
                    display.done();
                    debug_transfer(&stats, None);
                    return Err(store_error(e));
                }
            };
            let imported = import::Imported {
                started: Some(started),
                images: loaded.images.clone(),
            };
            for s in import::progress(&job.build_ref, &imported, chrono::Utc::now()) {
                display.update(&s);
            }
            display.done();
            debug_transfer(&stats, Some(&loaded));
            import::image_id(&imported.images)
        }
        None => {
            display.done();
            debug_transfer(&stats, None);
            response.get("containerimage.config.digest").cloned()
        }
    };
    if let Some(id) = &id {
        if opts.print_id {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{id}");
        }
        if let Some(f) = &opts.iidfile {
            std::fs::write(f, id).map_err(|e| {
                CliError::general(format!("writing image ID file {}: {e}", f.display()))
            })?;
        }
    }
    Ok(0)
}

fn store_error(e: build_store::StoreError) -> CliError {
    CliError::general(e.to_string())
}

fn sink(dest: &Dest) -> ExportSink {
    match dest {
        Dest::File(p) => ExportSink::File(p.clone()),
        Dest::Stdout => ExportSink::Stdout,
    }
}

/// With `BERTH_DEBUG_TRANSFER=1`, what the context transfers sent and
/// what the image import carried, for tests of incremental sends.
fn debug_transfer(stats: &TransferStats, loaded: Option<&Loaded>) {
    if std::env::var(env::DEBUG_TRANSFER).is_ok_and(|v| v == "1") {
        // one line per transfer: BuildKit re-sends the Dockerfile and
        // .dockerignore whole every build, only the context is incremental
        for t in stats.transfers() {
            eprintln!(
                "berth: context sent: {} bytes in {} files",
                t.bytes, t.files
            );
        }
        if let Some(l) = loaded {
            eprintln!(
                "berth: image sent: {} bytes, {} new blobs",
                l.sent_bytes, l.new_blobs
            );
        }
    }
}
