//! The image policy's name handling: docker's reference normalisation
//! (`load::names`), the split into registry, repository, tag and digest
//! (`admission::image::facts`), and the policy decision on it
//! (`berth.images.admit`). The input is `name` or `name\ndigest`.
//! A valid reference normalises to itself.
#![no_main]

use berth_gateway::admission::image::{self, Action};
use berth_gateway_fuzz::{engine, sandbox};
use libfuzzer_sys::fuzz_target;

const ACTIONS: [Action; 6] = [
    Action::Create,
    Action::Update,
    Action::Load,
    Action::Run,
    Action::Pull,
    Action::Push,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (name, digest) = match text.split_once('\n') {
        Some((name, digest)) => (name, Some(digest)),
        None => (text, None),
    };
    let action = ACTIONS[name.len() % ACTIONS.len()];
    let facts = image::facts(action, name, digest);
    if facts.valid && !facts.dangling {
        let again = image::facts(action, &facts.reference, None);
        assert!(again.valid, "normalised {name:?} to {:?}, which is not valid", facts.reference);
        assert_eq!(again.reference, facts.reference, "normalising is not idempotent");
        assert_eq!(again.registry, facts.registry);
        assert_eq!(again.repository, facts.repository);
        assert_eq!(again.tag, facts.tag);
        assert!(!facts.registry.is_empty(), "{name:?} has no registry");
    }
    let _ = image::admit(engine(), sandbox(), action, name, digest);
});
