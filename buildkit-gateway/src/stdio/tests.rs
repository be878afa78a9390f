//! The relay registry against real FIFOs, with threads playing the runc shim.

use super::*;
use std::fs::{File, OpenOptions};
use std::io::Write;

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-relay-test-{}", rand::random::<u64>()));
    std::fs::create_dir_all(dir.join("io")).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    dir
}

fn relays(dir: &Path) -> Relays {
    Relays::new(dir.join("io"), dir.join("logs"))
}

const OUT: Streams = Streams {
    stdin: false,
    stdout: true,
    stderr: true,
    terminal: false,
};

/// What the runc shim does with an output FIFO: open for writing, keep a
/// spare read end, write, close both when the process ends.
fn shim_writes(path: PathBuf, chunks: Vec<&'static [u8]>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut w = OpenOptions::new().write(true).open(&path).unwrap();
        let _spare = File::open(&path).unwrap();
        for c in chunks {
            w.write_all(c).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

async fn collect(mut rx: tokio::sync::mpsc::Receiver<Output>) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(o) = rx.recv().await {
        match o {
            Output::Stdout(b) => out.extend(b),
            Output::Stderr(b) => err.extend(b),
        }
    }
    (out, err)
}

#[test]
fn ids_follow_containerd_rules() {
    for ok in ["a", "web", "my-app_1.2", "0f3c"] {
        assert!(valid_id(ok), "{ok}");
    }
    for bad in [
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "-a",
        "a-",
        "a..b",
        "a b",
        &"a".repeat(77),
    ] {
        assert!(!valid_id(bad), "{bad}");
    }
}

#[tokio::test]
async fn relays_output_to_subscriber_and_log_then_ends() {
    let dir = tempdir();
    let r = relays(&dir);
    let pending = r.prepare("c1", "", OUT).unwrap();
    let paths = pending.paths().clone();
    pending.commit();
    let proc = r.get("c1", "").unwrap();
    let sub = proc.subscribe(true, true);

    // The shim connects during Tasks.Create, which then returns.
    let out = shim_writes(paths.stdout.clone().unwrap(), vec![b"hello ", b"world\n"]);
    let err = shim_writes(paths.stderr.clone().unwrap(), vec![b"oops\n"]);
    out.join().unwrap();
    err.join().unwrap();
    r.connect("c1", "");

    let (o, e) = tokio::time::timeout(Duration::from_secs(5), collect(sub))
        .await
        .unwrap();
    assert_eq!(o, b"hello world\n");
    assert_eq!(e, b"oops\n");
    assert!(proc.is_ended());

    let mut reader = log::LogReader::open(&r.log_path("c1").unwrap())
        .await
        .unwrap();
    let mut logged = Vec::new();
    while let Some(entry) = reader.next().await.unwrap() {
        logged.push((entry.stream, entry.data));
    }
    let stdout: Vec<u8> = logged
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .flat_map(|(_, d)| d.clone())
        .collect();
    assert_eq!(stdout, b"hello world\n");
    assert!(logged.contains(&(Stream::Stderr, b"oops\n".to_vec())));

    r.finish_container("c1").await;
    assert!(!dir.join("io/c1").exists(), "fifo dir left behind");
    assert!(r.get("c1", "").is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn output_nobody_reads_does_not_block_the_process() {
    let dir = tempdir();
    let r = relays(&dir);
    let pending = r.prepare("d", "", OUT).unwrap();
    let stdout = pending.paths().stdout.clone().unwrap();
    pending.commit();
    // Far more than a pipe holds (64 KiB): the writer only finishes if
    // the relay drains it with no one attached.
    let big: &'static [u8] = Box::leak(vec![b'x'; 1 << 20].into_boxed_slice());
    let shim = shim_writes(stdout, vec![big]);
    tokio::task::spawn_blocking(move || shim.join().unwrap())
        .await
        .unwrap();
    r.connect("d", "");
    let mut ended = r.get("d", "").unwrap().ended();
    tokio::time::timeout(Duration::from_secs(5), ended.wait_for(|e| *e))
        .await
        .unwrap()
        .unwrap();
    let len = std::fs::metadata(r.log_path("d").unwrap()).unwrap().len();
    assert!(len > 1 << 20, "log has {len} bytes");
    r.remove_container("d");
    assert!(!r.log_path("d").unwrap().exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn failed_create_leaves_no_fifo_and_frees_the_id() {
    let dir = tempdir();
    let r = relays(&dir);
    let pending = r
        .prepare("c2", "e1", Streams { stdin: true, ..OUT })
        .unwrap();
    assert!(dir.join("io/c2/e1/stdin").exists());
    assert!(matches!(
        r.prepare("c2", "e1", OUT),
        Err(RelayError::Busy(_))
    ));
    drop(pending);
    assert!(!dir.join("io/c2").exists());
    assert!(r.get("c2", "e1").is_err());
    // An exec's output is not logged.
    assert!(!r.log_path("c2").unwrap().exists());
    r.prepare("c2", "e1", OUT).unwrap().commit();
    r.remove_container("c2");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The client's bytes and its close may come before the shim's reader has
/// opened the FIFO (containerd opens it in a goroutine, possibly after
/// Tasks.Start returned): both wait for it, so the bytes arrive and the
/// reader still sees EOF.
#[tokio::test]
async fn stdin_written_and_closed_before_the_reader_opens_still_arrives() {
    let dir = tempdir();
    let r = relays(&dir);
    let pending = r
        .prepare("c3", "x", Streams { stdin: true, ..OUT })
        .unwrap();
    let stdin = pending.paths().stdin.clone().unwrap();
    pending.commit();
    let proc = r.get("c3", "x").unwrap();

    let client = {
        let proc = proc.clone();
        tokio::spawn(async move {
            proc.write_stdin(b"typed\n").await.unwrap();
            proc.close_stdin().await;
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!client.is_finished(), "closed before any reader was there");

    let shim = std::thread::spawn(move || {
        let mut s = String::new();
        io::Read::read_to_string(&mut File::open(&stdin).unwrap(), &mut s).unwrap();
        s
    });
    client.await.unwrap();
    r.connect("c3", "x");
    assert_eq!(
        tokio::task::spawn_blocking(move || shim.join().unwrap())
            .await
            .unwrap(),
        "typed\n"
    );
    assert!(proc.write_stdin(b"late").await.is_err());
    // No output writer ever came: the placeholders gone, the output ends.
    let mut ended = proc.ended();
    tokio::time::timeout(Duration::from_secs(5), ended.wait_for(|e| *e))
        .await
        .unwrap()
        .unwrap();
    r.remove_container("c3");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A process that never opened its stdin (it failed to start, or is gone):
/// a pending close returns once the relay ended instead of waiting forever.
#[tokio::test]
async fn closing_stdin_of_a_process_that_never_read_it_returns_when_it_ends() {
    let dir = tempdir();
    let r = relays(&dir);
    let pending = r
        .prepare("c4", "x", Streams { stdin: true, ..OUT })
        .unwrap();
    pending.commit();
    let proc = r.get("c4", "x").unwrap();
    let closing = {
        let proc = proc.clone();
        tokio::spawn(async move { proc.close_stdin().await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!closing.is_finished());
    r.connect("c4", "x");
    tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .expect("close returns once the output ended")
        .unwrap();
    r.remove_container("c4");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn unrequested_stream_is_drained_but_not_relayed() {
    let dir = tempdir();
    let r = relays(&dir);
    let pending = r
        .prepare(
            "c4",
            "",
            Streams {
                stdout: true,
                ..Default::default()
            },
        )
        .unwrap();
    let paths = pending.paths().clone();
    pending.commit();
    assert!(paths.stderr.is_some(), "the shim needs both output fifos");
    let sub = r.get("c4", "").unwrap().subscribe(true, true);
    shim_writes(paths.stdout.unwrap(), vec![b"out\n"])
        .join()
        .unwrap();
    shim_writes(paths.stderr.unwrap(), vec![b"err\n"])
        .join()
        .unwrap();
    r.connect("c4", "");
    let (o, e) = tokio::time::timeout(Duration::from_secs(5), collect(sub))
        .await
        .unwrap();
    assert_eq!(
        (o.as_slice(), e.as_slice()),
        (b"out\n".as_slice(), b"".as_slice())
    );
    r.remove_container("c4");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn recovers_fifos_of_a_previous_gateway() {
    let dir = tempdir();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // The first gateway creates a task's relay and goes away (its
    // runtime, with the relay tasks, is dropped).
    let paths = runtime().block_on(async {
        let r = relays(&dir);
        let p = r.prepare("c5", "", OUT).unwrap();
        let paths = p.paths().clone();
        p.commit();
        r.connect("c5", "");
        paths
    });
    // The shim still holds its write end; a new gateway starts.
    let mut w = OpenOptions::new()
        .read(true)
        .write(true)
        .open(paths.stdout.as_ref().unwrap())
        .unwrap();
    runtime().block_on(async {
        let r = relays(&dir);
        assert_eq!(r.recover().unwrap(), 1);
        let proc = r.get("c5", "").unwrap();
        w.write_all(b"after restart\n").unwrap();
        drop(w);
        let mut ended = proc.ended();
        tokio::time::timeout(Duration::from_secs(5), ended.wait_for(|e| *e))
            .await
            .unwrap()
            .unwrap();
        let mut reader = log::LogReader::open(&r.log_path("c5").unwrap())
            .await
            .unwrap();
        assert_eq!(
            reader.next().await.unwrap().unwrap().data,
            b"after restart\n"
        );
        r.remove_container("c5");
    });
    std::fs::remove_dir_all(dir).unwrap();
}
