//! The FIFOs between the gateway and containerd's runc shim.
//!
//! What the shim does with them (containerd `pkg/process/io.go` copyPipes,
//! `init.go`/`exec.go` openStdin), and why the gateway opens them as it does:
//!
//! * stdout/stderr: the shim opens the write end (a blocking open, so it waits
//!   for a reader) and also a read end it never reads from, only to keep its
//!   writes from failing when our reader goes away. It closes both once the
//!   process's output ended. A non-blocking reader with no writer sees EOF, so
//!   before the shim connects the gateway holds a *placeholder* O_RDWR
//!   descriptor on each output FIFO; it is dropped once the call that makes
//!   the shim open its ends (Tasks.Create for the init process, Tasks.Start
//!   for an exec) returned, and from then on EOF means the output ended.
//!   Opening O_RDWR never blocks on Linux, so nothing waits on a thread.
//! * A non-blocking reader that opened while no writer was there gets no
//!   hang-up (so no EOF through epoll) until some writer has opened after it
//!   (`fifo_open` records the writer counter, `pipe_poll` compares). So the
//!   placeholder is opened right after the reader, always: a reader taking
//!   over the FIFOs of a process that is already gone (recovery after a
//!   restart) opens and drops one, or it would wait for EOF forever.
//! * stdin: the shim opens a read end and a write end of its own (the latter
//!   is what Tasks.CloseIO closes). It opens both with containerd's fifo
//!   package, which opens in a goroutine, so the read end may appear only
//!   after Tasks.Start returned. A FIFO's bytes live only while some end is
//!   open, and a reader that opens after every writer left waits for a writer
//!   forever. So the gateway opens its write end only once a reader is there
//!   (a non-blocking write-open fails with ENXIO until then) and never holds
//!   an end without one: no byte is written, and no end is closed, before
//!   the shim's reader exists.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::sys::stat::Mode;
use tokio::net::unix::pipe;

/// Creates a FIFO only its owner (root) can open.
pub fn make(path: &Path) -> io::Result<()> {
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(io::Error::from)
}

pub fn is_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false)
}

/// Keeps a FIFO's reader from seeing EOF until the shim connected. Open it
/// after the reader (see above).
pub fn placeholder(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
}

/// The gateway's read end of an output FIFO. Never blocks.
pub fn reader(path: &Path) -> io::Result<pipe::Receiver> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)?;
    pipe::Receiver::from_file(file)
}

/// The gateway's write end of a stdin FIFO, if a reader (the shim's) has
/// opened it; `None` while none has. Never blocks.
pub fn stdin_writer(path: &Path) -> io::Result<Option<pipe::Sender>> {
    let opened = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path);
    match opened {
        Ok(file) => pipe::Sender::from_file(file).map(Some),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-fifo-test-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn fifos_are_owner_only() {
        let dir = tempdir();
        let p = dir.join("stdout");
        make(&p).unwrap();
        assert!(is_fifo(&p));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The shim's behaviour: blocking write-open, a spare read end, write,
    /// close. The gateway must see all bytes and then EOF, and must not see
    /// EOF while the shim has not connected yet.
    #[tokio::test]
    async fn placeholder_holds_eof_until_the_writer_came_and_went() {
        let dir = tempdir();
        let p = dir.join("stdout");
        make(&p).unwrap();
        let mut rx = reader(&p).unwrap();
        let hold = placeholder(&p).unwrap();

        // No writer yet: a read must wait, not return EOF.
        let mut buf = [0u8; 16];
        let early =
            tokio::time::timeout(std::time::Duration::from_millis(100), rx.read(&mut buf)).await;
        assert!(early.is_err(), "reader saw {early:?} before any writer");

        let path = p.clone();
        let shim = std::thread::spawn(move || {
            let mut w = OpenOptions::new().write(true).open(&path).unwrap();
            let _spare = File::open(&path).unwrap();
            w.write_all(b"hello ").unwrap();
            w.write_all(b"world").unwrap();
        });
        shim.join().unwrap();
        // The shim connected and left again; now the placeholder goes.
        drop(hold);

        let mut got = Vec::new();
        rx.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello world");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A process that never started, or is gone before a restarted gateway
    /// took over its FIFOs.
    #[tokio::test]
    async fn eof_when_the_shim_never_came() {
        let dir = tempdir();
        let p = dir.join("stdout");
        make(&p).unwrap();
        let mut rx = reader(&p).unwrap();
        drop(placeholder(&p).unwrap());
        let mut got = Vec::new();
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), rx.read_to_end(&mut got)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Taking over a FIFO whose writer is already open (recovery).
    #[tokio::test]
    async fn eof_when_a_writer_that_predates_the_reader_leaves() {
        let dir = tempdir();
        let p = dir.join("stdout");
        make(&p).unwrap();
        let mut shim = OpenOptions::new().read(true).write(true).open(&p).unwrap();
        let mut rx = reader(&p).unwrap();
        drop(placeholder(&p).unwrap());
        shim.write_all(b"still here").unwrap();
        drop(shim);
        let mut got = Vec::new();
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), rx.read_to_end(&mut got)).await;
        assert!(matches!(read, Ok(Ok(10))), "{read:?}");
        assert_eq!(got, b"still here");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn stdin_writer_opens_only_once_a_reader_is_there() {
        let dir = tempdir();
        let p = dir.join("stdin");
        make(&p).unwrap();
        assert!(stdin_writer(&p).unwrap().is_none(), "no reader yet");

        // The shim's reader blocks in open until a writer comes; it already
        // counts as a reader while it waits.
        let path = p.clone();
        let shim = std::thread::spawn(move || {
            let mut s = String::new();
            io::Read::read_to_string(&mut File::open(&path).unwrap(), &mut s).unwrap();
            s
        });
        let mut tx = loop {
            if let Some(tx) = stdin_writer(&p).unwrap() {
                break tx;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        tx.write_all(b"typed\n").await.unwrap();
        drop(tx);
        assert_eq!(shim.join().unwrap(), "typed\n");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
