//! A program on a pseudo-terminal, driven by keystrokes, and what a terminal would show.
//!
//! Two line editors draw the same screen with different escape sequences (GNU readline
//! backspaces and clears, ours repaints the line), so transcripts are compared as the
//! screen they produce: [`Screen`] interprets carriage returns, newlines, backspaces and
//! the cursor and erase sequences, and ignores the other sequences (modes, bracketed paste).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::daemon::DEADLINE;

/// A terminal screen of unlimited height.
#[derive(Debug, Default)]
pub struct Screen {
    lines: Vec<Vec<char>>,
    row: usize,
    col: usize,
}

impl Screen {
    /// The screen after `bytes` were written to it.
    pub fn of(bytes: &[u8]) -> Screen {
        let mut s = Screen { lines: vec![Vec::new()], ..Screen::default() };
        let text = String::from_utf8_lossy(bytes);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => s.col = 0,
                '\n' => {
                    s.row += 1;
                    if s.lines.len() <= s.row {
                        s.lines.push(Vec::new());
                    }
                }
                '\x08' => s.col = s.col.saturating_sub(1),
                '\x07' => {}
                '\x1b' => {
                    if chars.peek() != Some(&'[') {
                        chars.next();
                        continue;
                    }
                    chars.next();
                    let mut params = String::new();
                    let mut fin = ' ';
                    for p in chars.by_ref() {
                        if ('@'..='~').contains(&p) {
                            fin = p;
                            break;
                        }
                        params.push(p);
                    }
                    let n = params.parse::<usize>().unwrap_or(1).max(1);
                    match fin {
                        'C' => s.col += n,
                        'D' => s.col = s.col.saturating_sub(n),
                        'A' => s.row = s.row.saturating_sub(n),
                        'K' if params.is_empty() || params == "0" => s.lines[s.row].truncate(s.col),
                        _ => {}
                    }
                }
                c => {
                    let line = &mut s.lines[s.row];
                    while line.len() < s.col {
                        line.push(' ');
                    }
                    if s.col < line.len() {
                        line[s.col] = c;
                    } else {
                        line.push(c);
                    }
                    s.col += 1;
                }
            }
        }
        s
    }

    /// The lines shown, trailing blanks cut.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            let line: String = l.iter().collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The line the cursor is on.
    pub fn current(&self) -> String {
        self.lines.get(self.row).map(|l| l.iter().collect::<String>()).unwrap_or_default()
    }
}

/// A child on a pseudo-terminal of 80x24 columns.
pub struct Pty {
    master: std::fs::File,
    child: Child,
    pub output: Vec<u8>,
}

impl Pty {
    pub fn spawn(program: &Path, args: &[&str], cwd: &Path) -> Pty {
        let size = nix::pty::Winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(cwd)
            .env("TERM", "xterm")
            .env_remove("INPUTRC")
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; the child makes the pty (its
        // stdin) its controlling terminal so that Ctrl-C reaches it as SIGINT.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on pty");
        let master = std::fs::File::from(pty.master);
        Pty { master, child, output: Vec::new() }
    }

    /// Reads what arrives within `quiet` of the last byte, or until `done` holds for the
    /// screen so far (then what follows within a short quiet time); panics at the deadline.
    pub fn read_until(&mut self, what: &str, done: impl Fn(&Screen) -> bool) {
        let start = Instant::now();
        let mut satisfied_at: Option<Instant> = None;
        loop {
            let mut fds =
                [libc::pollfd { fd: self.master.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
            // SAFETY: one valid pollfd for the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 20) };
            if n > 0 {
                let mut buf = [0u8; 4096];
                match self.master.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(k) => self.output.extend_from_slice(&buf[..k]),
                }
                satisfied_at = None;
            }
            if satisfied_at.is_none() && done(&Screen::of(&self.output)) {
                satisfied_at = Some(Instant::now());
            }
            // Trailing sequences (mode switches) follow the visible text at once.
            if satisfied_at.is_some_and(|t| t.elapsed() > Duration::from_millis(100)) {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}; screen:\n{}",
                Screen::of(&self.output).text()
            );
        }
    }

    pub fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).expect("write to pty");
    }

    /// Waits for the child to exit (the pty is drained meanwhile) and returns its status.
    pub fn wait(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            self.read_until("output to settle", |_| true);
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(start.elapsed() < DEADLINE, "the program did not exit");
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
