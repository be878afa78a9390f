//! A bind source swapped for a symlink between the gateway's check and
//! runc's mount (threat model row 10). The agent owns the workspace, so it
//! can exchange a checked directory with a symlink to /etc at any moment;
//! mount(2) follows a symlink in the source. Every run must either mount
//! the workspace directory or be refused naming the symlink: no container
//! may ever see the host's /etc.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use nix::fcntl::{renameat2, RenameFlags};

use crate::common::*;

/// How many containers race the swapper.
const RUNS: usize = 30;

/// What each container prints: `HOST-ETC` if /m is the host's /etc, then
/// the workspace marker.
const PROBE: &str =
    "if [ -e /m/os-release ] || [ -e /m/passwd ]; then echo HOST-ETC; fi; cat /m/marker";

fn exchange(a: &str, b: &str) -> nix::Result<()> {
    renameat2(None, a, None, b, RenameFlags::RENAME_EXCHANGE)
}

#[test]
fn bind_source_swapped_to_symlink() {
    stack();
    let _serial = serial();
    let mut cleanup = Cleanup::new();
    let dir = agent_dir(&mut cleanup, "toctou");
    sandbox(&["sh", "-c", &format!("echo workspace > {dir}/marker")]).ok();
    let link = format!("{dir}.link");
    std::os::unix::fs::symlink("/etc", &link).expect("symlink to /etc");
    cleanup.path(&link);

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (stop, swaps, dir, link) = (stop.clone(), swaps.clone(), dir.clone(), link.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                exchange(&dir, &link).expect("RENAME_EXCHANGE");
                swaps.fetch_add(1, Ordering::Relaxed);
            }
            // Leave the directory in place, the link beside it.
            if std::fs::symlink_metadata(&dir)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
            {
                exchange(&dir, &link).expect("RENAME_EXCHANGE");
            }
        })
    };

    let mount = format!("{dir}:/m");
    let mut outcomes = Vec::new();
    for _ in 0..RUNS {
        outcomes.push(docker(&[
            "run", "--rm", "-v", &mount, "busybox", "sh", "-c", PROBE,
        ]));
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("swapper");
    assert!(
        swaps.load(Ordering::Relaxed) > RUNS,
        "the swapper did not run"
    );

    let (mut mounted, mut refused) = (0, 0);
    for out in &outcomes {
        assert!(
            !out.stdout.contains("HOST-ETC"),
            "a container saw the host's /etc through a swapped bind source:\n{out}"
        );
        if out.code == 0 && out.stdout.contains("workspace") {
            mounted += 1;
        } else {
            // Refused at Containers.Create, or at Tasks.Create's recheck,
            // naming the symlink; or runc found no directory to mount.
            assert_eq!(out.code, 125, "neither mounted nor refused:\n{out}");
            let err = out.stderr.to_lowercase();
            assert!(
                err.contains("symlink")
                    || err.contains("volume root")
                    || err.contains("does not exist")
                    || err.contains("no such file"),
                "a refusal that does not name the swap:\n{out}"
            );
            refused += 1;
        }
    }
    eprintln!("{RUNS} runs: {mounted} mounted the workspace, {refused} refused");
    // The control: with the swapping over, the same bind mounts the
    // workspace (else the refusals above prove nothing).
    let control = docker(&["run", "--rm", "-v", &mount, "busybox", "sh", "-c", PROBE]);
    control.ok().stdout_has("workspace");
    assert!(!control.stdout.contains("HOST-ETC"), "{control}");
}
