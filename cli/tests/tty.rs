//! `docker run -it` and `docker exec -it` under a real pseudo-terminal, as an
//! agent's terminal drives them: typed input, window size and resizes,
//! Ctrl-C, the exit status and the local terminal mode afterwards.
//!
//! The harness opens a pty pair (nix::pty::openpty), makes the slave the
//! controlling terminal of a new session (`setsid --ctty`, util-linux) in
//! which `fixtures/stack/sandbox docker …` runs, and plays the terminal on
//! the master: it types, reads, and resizes with TIOCSWINSZ on the master,
//! after which the kernel sends SIGWINCH to the session's foreground group.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{tcgetattr, Termios};

const STEP: Duration = Duration::from_secs(30);

/// Output read from the master so far, and whether the slave side closed.
#[derive(Default)]
struct Screen {
    bytes: Vec<u8>,
    closed: bool,
}

struct Terminal {
    master: File,
    screen: Arc<(Mutex<Screen>, Condvar)>,
    /// How far `expect` has consumed the output.
    cursor: usize,
    child: Child,
    /// The slave's mode before the program ran.
    initial: Termios,
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Terminal {
    /// Runs `fixtures/stack/sandbox ARGS…` on a new `rows`×`cols` terminal.
    fn spawn(args: &[&str], rows: u16, cols: u16) -> Terminal {
        let pty = openpty(&winsize(rows, cols), None).expect("openpty");
        let initial = tcgetattr(&pty.slave).expect("tcgetattr on the slave");
        let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup of the slave"));
        let mut cmd = Command::new("setsid");
        cmd.arg("--ctty")
            .arg(repo_root().join("fixtures/stack/sandbox"))
            .args(args)
            .env("TERM", "xterm")
            .stdin(slave(&pty.slave))
            .stdout(slave(&pty.slave))
            .stderr(slave(&pty.slave));
        let child = cmd
            .spawn()
            .expect("spawning setsid --ctty fixtures/stack/sandbox");
        // Only the child holds the slave now, so the master reads EIO once it is gone.
        drop(pty.slave);

        let master = File::from(pty.master);
        let screen = Arc::new((Mutex::new(Screen::default()), Condvar::new()));
        let mut reader = master.try_clone().expect("dup of the master");
        let shared = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = reader.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*shared;
                let mut s = lock.lock().expect("screen lock");
                if n == 0 {
                    s.closed = true;
                    cv.notify_all();
                    return;
                }
                s.bytes.extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        Terminal {
            master,
            screen,
            cursor: 0,
            child,
            initial,
        }
    }

    /// Types `text` as a terminal would (Enter is `\r`).
    fn send(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .expect("writing to the pty master");
    }

    /// Waits until `needle` appears after what earlier calls consumed.
    #[track_caller]
    fn expect(&mut self, needle: &str) {
        if !self.try_expect(needle, STEP) {
            panic!(
                "{needle:?} did not appear within {STEP:?}; terminal so far:\n{}",
                self.transcript()
            );
        }
    }

    fn try_expect(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.screen;
        let mut s = lock.lock().expect("screen lock");
        loop {
            let hay = &s.bytes[self.cursor.min(s.bytes.len())..];
            if let Some(at) = hay
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
            {
                self.cursor += at + needle.len();
                return true;
            }
            let now = Instant::now();
            if s.closed || now >= deadline {
                return false;
            }
            s = cv.wait_timeout(s, deadline - now).expect("screen lock").0;
        }
    }

    /// Resizes the terminal as a terminal emulator does: TIOCSWINSZ on the
    /// master; the kernel then signals SIGWINCH to the foreground group.
    fn resize(&self, rows: u16, cols: u16) {
        let ws = winsize(rows, cols);
        #[allow(unsafe_code)]
        // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer,
        // which points at a live, initialised value; the fd is our master.
        let rc = unsafe {
            libc::ioctl(
                self.master.as_raw_fd(),
                libc::TIOCSWINSZ,
                &ws as *const Winsize,
            )
        };
        assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// Waits for the program to exit.
    #[track_caller]
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the child") {
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the program did not exit within {STEP:?}; terminal:\n{}",
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts the slave's mode is what it was before the program ran (the
    /// CLI put it in raw mode and must restore it). On Linux the termios
    /// ioctls on a pty master act on its slave.
    #[track_caller]
    fn assert_mode_restored(&self) {
        let now = tcgetattr(&self.master).expect("tcgetattr through the master");
        let before = &self.initial;
        assert_eq!(
            now.local_flags, before.local_flags,
            "local modes (ICANON, ECHO, ISIG…) not restored"
        );
        assert_eq!(
            now.input_flags, before.input_flags,
            "input modes (ICRNL, IXON…) not restored"
        );
        assert_eq!(
            now.output_flags, before.output_flags,
            "output modes (OPOST, ONLCR) not restored"
        );
        assert_eq!(
            now.control_flags, before.control_flags,
            "control modes not restored"
        );
    }

    fn transcript(&self) -> String {
        let s = self.screen.0.lock().expect("screen lock");
        String::from_utf8_lossy(&s.bytes).into_owned()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // Our own child, ended by its pid if a failed test left it running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asks the shell for `stty size` until it reports `want` (a resize reaches
/// the container asynchronously).
fn expect_size(term: &mut Terminal, want: &str) {
    let deadline = Instant::now() + STEP;
    while Instant::now() < deadline {
        term.send("stty size\r");
        if term.try_expect(&format!("{want}\r\n"), Duration::from_secs(2)) {
            return;
        }
    }
    panic!(
        "stty size never reported {want:?}; terminal:\n{}",
        term.transcript()
    );
}

#[test]
fn run_it_gives_an_interactive_shell_that_follows_the_terminal() {
    stack();
    let name = unique("tty");
    let mut cleanup = Cleanup::new();
    cleanup.container(&name);
    let mut term = Terminal::spawn(
        &[
            "docker", "run", "-it", "--rm", "--name", &name, "busybox", "sh",
        ],
        24,
        80,
    );
    term.expect("# ");

    // The typed line is echoed as typed; only the shell's answer holds 42.
    term.send("echo $((6*7))\r");
    term.expect("42\r\n");

    expect_size(&mut term, "24 80");
    term.resize(40, 120);
    expect_size(&mut term, "40 120");

    term.send("exit 4\r");
    let status = term.wait();
    assert_eq!(
        status.code(),
        Some(4),
        "exit status of `docker run -it`; terminal:\n{}",
        term.transcript()
    );
    term.assert_mode_restored();
}

#[test]
fn ctrl_c_in_run_it_reaches_the_container_not_the_cli() {
    stack();
    let name = unique("tty-int");
    let mut cleanup = Cleanup::new();
    cleanup.container(&name);
    let mut term = Terminal::spawn(
        &[
            "docker", "run", "-it", "--rm", "--name", &name, "busybox", "sh",
        ],
        24,
        80,
    );
    term.expect("# ");
    term.send("sleep 100\r");
    // Let sleep start before interrupting it.
    std::thread::sleep(Duration::from_millis(500));
    term.send("\x03");
    term.send("echo status=$?\r");
    term.expect("status=130\r\n");
    term.send("exit\r");
    assert_eq!(
        term.wait().code(),
        Some(0),
        "terminal:\n{}",
        term.transcript()
    );
    term.assert_mode_restored();
}

#[test]
fn exec_it_gives_a_shell_in_a_running_container() {
    stack();
    let name = unique("tty-exec");
    let mut cleanup = Cleanup::new();
    cleanup.container(&name);
    docker(&["run", "-d", "--name", &name, "busybox", "sleep", "300"]).ok();

    let mut term = Terminal::spawn(&["docker", "exec", "-it", &name, "sh"], 30, 100);
    term.expect("# ");
    term.send("echo $((6*7))\r");
    term.expect("42\r\n");
    expect_size(&mut term, "30 100");
    term.resize(35, 90);
    expect_size(&mut term, "35 90");
    term.send("exit 3\r");
    assert_eq!(
        term.wait().code(),
        Some(3),
        "terminal:\n{}",
        term.transcript()
    );
    term.assert_mode_restored();
}
