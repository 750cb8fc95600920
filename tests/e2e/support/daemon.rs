//! A running daemon under test: started in its own process group with its output captured
//! to files, stopped (and its children with it) when the guard drops, and shown in full when
//! a test fails.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{bin, tempdir};

/// How long any condition may take before a test gives up. Generous: a loaded 2-core CI
/// machine must not turn a slow pass into a failure; a hang still fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` every 10 ms until it returns `Some` or the deadline passes.
pub fn poll<T>(
    what: &str,
    deadline: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            return Err(format!("timed out after {deadline:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One daemon process and the temp directory its config lives in.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    child: Option<Child>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Daemon {
    /// Writes `conf` (with `{dir}` replaced by the temp dir) and starts `supervisord -n -c`.
    pub fn start(conf: &str) -> Daemon {
        Self::start_with(conf, &[])
    }

    /// Like [`Daemon::start`] with extra daemon flags.
    pub fn start_with(conf: &str, extra: &[&str]) -> Daemon {
        Self::start_program(&bin(), conf, extra)
    }

    /// Like [`Daemon::start_with`] with another daemon binary (the Python oracle).
    pub fn start_program(program: &Path, conf: &str, extra: &[&str]) -> Daemon {
        Self::start_env(program, conf, extra, &[])
    }

    /// Like [`Daemon::start_program`] with extra environment variables.
    pub fn start_env(program: &Path, conf: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Self::start_command(program, conf, extra, |cmd| {
            cmd.envs(env.iter().copied());
        })
    }

    /// Like [`Daemon::start`] with RLIMIT_NOFILE (soft and hard) set to `nofile` in the
    /// daemon, as a container with a low descriptor limit would.
    pub fn start_with_nofile(conf: &str, nofile: u64) -> Daemon {
        Self::start_command(&bin(), conf, &[], |cmd| {
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit { rlim_cur: nofile, rlim_max: nofile };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        })
    }

    fn start_command(
        program: &Path,
        conf: &str,
        extra: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> Daemon {
        let dir = tempdir();
        let text = conf.replace("{dir}", &dir.path().display().to_string());
        let conf_path = dir.path().join("supervisord.conf");
        fs::write(&conf_path, text).expect("write config");
        let stdout_path = dir.path().join("daemon.stdout");
        let stderr_path = dir.path().join("daemon.stderr");
        let mut cmd = Command::new(program);
        cmd.arg("-n").arg("-c").arg(&conf_path).args(extra);
        cmd.env(super::leftovers::DAEMON_VAR, dir.path());
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(append(&stdout_path))
            .stderr(append(&stderr_path))
            .process_group(0);
        tweak(&mut cmd);
        let child = cmd.spawn().expect("start daemon");
        Daemon { dir, conf: conf_path, child: Some(child), stdout_path, stderr_path }
    }

    /// The socket every test config puts at `{dir}/sock`.
    pub fn sock(&self) -> PathBuf {
        self.path("sock")
    }

    /// Waits until the daemon answers RPC.
    pub fn ready(&self) -> &Self {
        let sock = self.sock();
        let res = poll("the daemon to answer", DEADLINE, || {
            super::rpc::call(&sock, "supervisor.getState", serde_json::json!([])).ok()
        });
        if let Err(e) = res {
            panic!("{e}\n{}", self.explain());
        }
        self
    }

    /// `getProcessInfo(name)`.
    pub fn info(&self, name: &str) -> serde_json::Value {
        super::rpc::ok(&self.sock(), "supervisor.getProcessInfo", serde_json::json!([name]))
    }

    /// Waits until `name` is in `state` (e.g. "RUNNING").
    pub fn wait_state(&self, name: &str, state: &str) -> serde_json::Value {
        let res = poll(&format!("{name} to be {state}"), DEADLINE, || {
            let info = super::rpc::call(
                &self.sock(),
                "supervisor.getProcessInfo",
                serde_json::json!([name]),
            )
            .ok()?;
            (info["statename"] == state).then_some(info)
        });
        res.unwrap_or_else(|e| panic!("{e}\n{}", self.explain()))
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// The daemon's stdout so far (under `-n` the main log is echoed there).
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Everything the daemon said, for failure messages.
    pub fn explain(&self) -> String {
        format!(
            "config {}:\n{}\n--- daemon stdout\n{}--- daemon stderr\n{}---",
            self.conf.display(),
            read_lossy(&self.conf),
            self.stdout(),
            self.stderr()
        )
    }

    /// Waits until the daemon's output contains `needle`; panics with its output if not.
    pub fn wait_for_log(&self, needle: &str) {
        self.wait_for_log_count(needle, 1)
    }

    /// Waits until `needle` occurs at least `n` times in the daemon's output.
    pub fn wait_for_log_count(&self, needle: &str, n: usize) {
        let res =
            poll(needle, DEADLINE, || (self.stdout().matches(needle).count() >= n).then_some(()));
        if let Err(e) = res {
            panic!("{e} (x{n})\n{}", self.explain());
        }
    }

    /// Lines of the main log (stdout) with the timestamp and level cut off.
    pub fn log_messages(&self) -> Vec<String> {
        self.stdout().lines().map(|l| strip_stamp(l).to_string()).collect()
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid we started; no memory is touched.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits for the daemon to exit and returns its exit code (None if killed by a signal).
    pub fn wait_exit(&mut self) -> Option<i32> {
        let child = self.child.as_mut()?;
        let res = poll("daemon exit", DEADLINE, || child.try_wait().ok().flatten());
        match res {
            Ok(status) => {
                self.child = None;
                status.code()
            }
            Err(e) => panic!("{e}\n{}", self.explain()),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // SAFETY: signals to the daemon and to its process group, which we created.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let gone = poll("daemon exit on drop", Duration::from_secs(10), || {
                child.try_wait().ok().flatten()
            });
            // SAFETY: as above; SIGKILL to the group also takes children left behind.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            if gone.is_err() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        // Whatever the daemon left behind (children in groups or sessions of their own that
        // a killed daemon could not stop) goes too.
        let dir = self.dir.path().display().to_string();
        let left = super::leftovers::kill_marked(super::leftovers::DAEMON_VAR, &dir);
        if !left.is_empty() {
            eprintln!("killed processes the daemon in {dir} left behind: {left:?}");
        }
        if std::thread::panicking() {
            eprintln!("{}", self.explain());
        }
    }
}

/// The daemon's stdout/stderr files are opened in append mode, as a terminal or pipe
/// would behave: children logging to `/dev/stdout` open the same file again, and without
/// O_APPEND the daemon's own writes would overwrite theirs.
fn append(path: &Path) -> fs::File {
    fs::OpenOptions::new().create(true).append(true).open(path).expect("open output file")
}

/// `2026-11-22 22:48:50,876 INFO spawned: 'x'` → `INFO spawned: 'x'`.
pub fn strip_stamp(line: &str) -> &str {
    let b = line.as_bytes();
    if b.len() > 24 && b[4] == b'-' && b[10] == b' ' && b[19] == b',' { &line[24..] } else { line }
}

pub fn read_lossy(p: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = fs::File::open(p) {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}
