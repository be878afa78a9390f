//! One solve: `Control.Solve` with the Dockerfile frontend and `Control.Status`
//! on the same ref, run together; the status updates drive the display.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_proto::buildkit::control::control_client::ControlClient;
use berth_proto::buildkit::control::{Exporter, SolveRequest, StatusRequest};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use super::progress::{Display, SolveStatus};

/// The frontend every build uses (BuildKit's built-in Dockerfile frontend).
pub const FRONTEND: &str = "dockerfile.v0";
/// How often the display is asked to redraw (it decides what is due).
const TICK: Duration = Duration::from_millis(50);
/// How long status updates are still awaited once the solve returned.
const DRAIN: Duration = Duration::from_secs(5);

/// What to ask BuildKit for.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub build_ref: String,
    pub session: String,
    pub frontend_attrs: BTreeMap<String, String>,
    pub exporter: String,
    pub exporter_attrs: BTreeMap<String, String>,
}

impl Job {
    /// The request, with the exporter in both the pre-0.13 fields and
    /// `Exporters`: older daemons read only the former, newer ones prefer
    /// the latter, and the two must agree.
    pub fn request(&self) -> SolveRequest {
        let attrs = self.exporter_attrs.clone();
        SolveRequest {
            r#ref: self.build_ref.clone(),
            session: self.session.clone(),
            frontend: FRONTEND.to_string(),
            frontend_attrs: self.frontend_attrs.clone(),
            exporter_deprecated: self.exporter.clone(),
            exporter_attrs_deprecated: attrs.clone(),
            exporters: vec![Exporter {
                r#type: self.exporter.clone(),
                attrs,
            }],
            ..Default::default()
        }
    }
}

/// Runs the solve, showing its progress; returns the exporter's response.
pub async fn run(
    control: &ControlClient<Channel>,
    job: &Job,
    display: &mut Display,
) -> Result<BTreeMap<String, String>, tonic::Status> {
    run_watched(control, job, display, |_| {}).await
}

/// As [`run`], also handing each update that arrives before Solve returns
/// to `watch`, ahead of the display (the early import starts from there:
/// `build::early`).
pub async fn run_watched(
    control: &ControlClient<Channel>,
    job: &Job,
    display: &mut Display,
    mut watch: impl FnMut(&SolveStatus),
) -> Result<BTreeMap<String, String>, tonic::Status> {
    let (tx, mut updates) = mpsc::channel::<SolveStatus>(64);
    let mut status_client = control.clone();
    let status_ref = job.build_ref.clone();
    let status = tokio::spawn(async move {
        let req = StatusRequest { r#ref: status_ref };
        let Ok(resp) = status_client.status(req).await else {
            return;
        };
        let mut stream = resp.into_inner();
        while let Ok(Some(msg)) = stream.message().await {
            if tx.send(SolveStatus::from(msg)).await.is_err() {
                return;
            }
        }
    });
    let mut solve_client = control.clone();
    let request = job.request();
    let mut solve = tokio::spawn(async move { solve_client.solve(request).await });

    let mut ticker = tokio::time::interval(TICK);
    let result = loop {
        tokio::select! {
            r = &mut solve => {
                break match r {
                    Ok(Ok(resp)) => Ok(resp.into_inner().exporter_response),
                    Ok(Err(status)) => Err(status),
                    Err(e) => Err(tonic::Status::internal(format!("solve task: {e}"))),
                };
            }
            Some(s) = updates.recv() => {
                watch(&s);
                display.update(&s);
            }
            _ = ticker.tick() => display.tick(),
        }
    };
    // BuildKit ends the status stream after the job's last update.
    let deadline = tokio::time::sleep(DRAIN);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            s = updates.recv() => match s {
                Some(s) => display.update(&s),
                None => break,
            },
            _ = &mut deadline => break,
        }
    }
    status.abort();
    display.tick();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exporter_goes_into_both_fields() {
        let job = Job {
            build_ref: "r".into(),
            session: "s".into(),
            frontend_attrs: [("filename".to_string(), "Dockerfile".to_string())].into(),
            exporter: "oci".into(),
            exporter_attrs: [("name".to_string(), "docker.io/library/a:latest".to_string())].into(),
        };
        let r = job.request();
        assert_eq!(r.frontend, "dockerfile.v0");
        assert_eq!((r.r#ref.as_str(), r.session.as_str()), ("r", "s"));
        assert_eq!(r.exporter_deprecated, "oci");
        assert_eq!(r.exporters.len(), 1);
        assert_eq!(r.exporters[0].r#type, "oci");
        assert_eq!(r.exporters[0].attrs, r.exporter_attrs_deprecated);
        assert_eq!(
            r.exporter_attrs_deprecated["name"],
            "docker.io/library/a:latest"
        );
        assert_eq!(r.frontend_attrs["filename"], "Dockerfile");
        assert!(r.entitlements.is_empty());
    }
}
