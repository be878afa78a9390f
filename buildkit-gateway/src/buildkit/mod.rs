//! The BuildKit facade's decisions: what a sandbox may ask BuildKit to do.
//!
//! * [`solve`]: every `SolveRequest` is decoded into facts, decided by the
//!   Rego package `berth.control.solve` (`policies/buildkit/solve.rego`) and
//!   hardened before it is forwarded;
//! * [`session`]: which session metadata reaches the daemon;
//! * [`dial`]: the upstream connection (buildkitd, or Docker Engine's
//!   embedded BuildKit through `POST /grpc`);
//! * [`upgrade`]: the session opened as Docker's API opens it, `POST
//!   /session` upgraded to a raw HTTP/2 connection.
//!
//! The gRPC service itself is in `facade.rs`, part of the binary, beside the
//! containerd facade's services. `architecture/build-path.md` explains the
//! design and its trust decisions.

use berth_proto::buildkit::control::SolveRequest;

use crate::admission::{self, Admission, Denied, Verdict};
use crate::policy::input::Request;
use crate::policy::{PolicyEngine, PolicyInput};
use crate::sandbox::Sandbox;

pub mod dial;
pub mod session;
pub mod solve;
pub mod upgrade;

#[cfg(test)]
mod golden;

pub use solve::{BuildSandbox, SolveFacts};

/// The policy method (and rule name) deciding `Control.Solve`.
pub const SOLVE_METHOD: &str = "control.solve";

/// How refusals of a build name their object.
const BUILD: &str = "build";

/// The policy input for a solve.
pub fn solve_input(sb: &Sandbox, build: &BuildSandbox, req: &SolveRequest) -> PolicyInput {
    let facts = solve::facts(req, build);
    let object = facts.reference.clone();
    PolicyInput::new(
        SOLVE_METHOD,
        &object,
        admission::facts::sandbox(sb),
        Request::Solve(facts),
    )
}

/// Decides a solve and, when it is allowed, returns the request to forward.
pub fn solve(
    engine: &PolicyEngine,
    sb: &Sandbox,
    build: &BuildSandbox,
    req: SolveRequest,
) -> Admission<SolveRequest> {
    let input = solve_input(sb, build, &req);
    let decision = engine.decide(&input);
    if let Some(error) = &decision.error {
        // The user sees "policy evaluation failed"; the detail is for the
        // operator.
        eprintln!(
            "berth-gateway: policy error deciding {} {}: {error}",
            input.method, input.object
        );
    }
    if !decision.allow {
        return Err(refusal(BUILD, SOLVE_METHOD, decision.reasons));
    }
    let verdict = Verdict {
        rule: SOLVE_METHOD.to_string(),
        object: input.object,
        reasons: vec![],
    };
    Ok((solve::harden(req, build), verdict))
}

/// `refusing <object>: <reasons> (rule <rule>)`, worded as the containerd
/// facade's refusals are.
pub fn refusal(object: &str, rule: &str, reasons: Vec<String>) -> Denied {
    Denied {
        rule: rule.to_string(),
        message: format!("refusing {object}: {} (rule {rule})", reasons.join("; ")),
        reasons,
    }
}
