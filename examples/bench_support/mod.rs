//! What the `bench` example uses: finding our release binary and the Python oracle,
//! running one daemon per measurement in its own temp dir, a hand-written XML-RPC client
//! (both daemons are asked the same way, over `/RPC2`), and readers for the `/proc`
//! counters the benchmarks compare (CPU ticks, RSS, context switches).
//!
//! The benchmarks print numbers and ratios; they never assert on time (docs/performance.md).

#![allow(dead_code)]
// A benchmark reads the clock to measure; the clock rule is for the product's code.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::fcntl::{Flock, FlockArg};

/// The header every benchmark config starts with; `{dir}` is the daemon's temp dir. Python
/// needs the `[rpcinterface:supervisor]` section, ours accepts it.
pub const HEADER: &str = "[supervisord]\nlogfile={dir}/main.log\npidfile={dir}/sd.pid\n\
childlogdir={dir}\n\n[unix_http_server]\nfile={dir}/sock\n\n[rpcinterface:supervisor]\n\
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n";

/// `target/`: the example runs as `target/<profile>/examples/<name>`, so three levels up;
/// `CARGO_TARGET_DIR` wins when set.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// One daemon implementation under test.
#[derive(Clone, Debug)]
pub struct Impl {
    /// "python" or "ours", for the tables.
    pub label: &'static str,
    pub supervisord: PathBuf,
}

/// The target of the shipped build (README, "Release build").
pub const SHIPPED_TARGET: &str = "x86_64-unknown-linux-musl";

/// Our daemon as shipped: the static musl release build, built first so the numbers are
/// for the current source. Where that target or its C compiler is missing, the dynamically
/// linked release build, after a loud note (its start-up is slower, which shows in
/// `status`). `BENCH_OURS` names another binary instead.
pub fn ours() -> Result<Impl> {
    if let Some(bin) = std::env::var_os("BENCH_OURS") {
        // Absolute: the daemon is started with its temp dir as the working directory.
        let bin = fs::canonicalize(&bin).with_context(|| format!("BENCH_OURS={bin:?}"))?;
        return Ok(Impl { label: "ours", supervisord: bin });
    }
    if let Some(bin) = build(Some(SHIPPED_TARGET))? {
        return Ok(Impl { label: "ours", supervisord: bin });
    }
    eprintln!(
        "NOTE: cannot build the shipped static build (--target {SHIPPED_TARGET}; README, \
         \"Release build\"): measuring the dynamically linked release build instead"
    );
    match build(None)? {
        Some(bin) => Ok(Impl { label: "ours", supervisord: bin }),
        None => bail!("cargo build --release failed"),
    }
}

/// `cargo build --release --features shipped [--target T]`; `None` when the build fails.
fn build(target: Option<&str>) -> Result<Option<PathBuf>> {
    let mut cmd = Command::new(env!("CARGO"));
    // The shipped build's features (README, "Release build").
    cmd.args(["build", "--release", "--quiet", "--features", "shipped", "--bin", "supervisord"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    if let Some(t) = target {
        // A missing target is expected on some machines: its errors are the note's cause.
        cmd.args(["--target", t]).stderr(Stdio::null());
    }
    let status = cmd.status().context("running cargo build --release")?;
    if !status.success() {
        return Ok(None);
    }
    let bin = match target {
        Some(t) => target_dir().join(t).join("release/supervisord"),
        None => target_dir().join("release/supervisord"),
    };
    if !bin.exists() {
        bail!("{} does not exist after the build", bin.display());
    }
    Ok(Some(bin))
}

/// Python supervisor 4.3.0 in the same venv the e2e tests use (`target/tmp/pyref`),
/// installed on first use. `BENCH_PYREF` names another venv. `None` after a loud message
/// when python3 or the package index is unavailable: the benchmark then has nothing to
/// compare against and exits 0.
pub fn python() -> Option<Impl> {
    let dir = match std::env::var_os("BENCH_PYREF") {
        Some(d) => fs::canonicalize(&d).unwrap_or_else(|_| PathBuf::from(d)),
        None => target_dir().join("tmp/pyref"),
    };
    let supervisord = dir.join("bin/supervisord");
    if std::env::var_os("BENCH_PYREF").is_none()
        && let Err(e) = install_pyref(&dir)
    {
        eprintln!(
            "\n!!! NO COMPARISON: cannot install Python supervisor 4.3.0 into {}: {e}\n\
             !!! (needs python3 with venv and pip access; or set BENCH_PYREF=<venv>)\n",
            dir.display()
        );
        return None;
    }
    if !supervisord.exists() {
        eprintln!("\n!!! NO COMPARISON: {} does not exist\n", supervisord.display());
        return None;
    }
    Some(Impl { label: "python", supervisord })
}

/// The e2e tests' installer (tests/e2e/support/pyref.rs), same lock and marker, so a
/// benchmark and a test run never install twice or at once.
fn install_pyref(dir: &Path) -> Result<()> {
    let marker = dir.join(".installed-4.3.0");
    if marker.exists() {
        return Ok(());
    }
    let parent = dir.parent().ok_or_else(|| anyhow!("no parent for {}", dir.display()))?;
    fs::create_dir_all(parent)?;
    let lock_file = fs::File::create(parent.join("pyref.lock"))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, e)| anyhow!(e))?;
    if marker.exists() {
        return Ok(());
    }
    eprintln!("installing Python supervisor 4.3.0 into {} ...", dir.display());
    let run = |cmd: &mut Command| -> Result<()> {
        let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
        if !out.status.success() {
            bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(dir))?;
    run(Command::new(dir.join("bin/pip")).args(["install", "-q", "supervisor==4.3.0"]))?;
    fs::write(&marker, "")?;
    Ok(())
}

/// A daemon started with `-n -c <dir>/supervisord.conf` in its own process group. Dropping
/// it ends the daemon and everything it started.
pub struct Daemon {
    pub label: &'static str,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// When the daemon process was started (the origin of start-up timings).
    pub started: Instant,
}

impl Daemon {
    /// Writes `conf` (`{dir}` replaced by a fresh temp dir under /tmp, short enough for a
    /// unix socket path) and starts the daemon on it.
    pub fn start(imp: &Impl, conf: &str) -> Result<Daemon> {
        let dir = tempfile::Builder::new().prefix("sdb").tempdir_in("/tmp")?;
        let text = conf.replace("{dir}", &dir.path().display().to_string());
        let conf_path = dir.path().join("supervisord.conf");
        fs::write(&conf_path, text)?;
        let mut cmd = Command::new(&imp.supervisord);
        cmd.arg("-n")
            .arg("-c")
            .arg(&conf_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path().join("daemon.stdout"))?)
            .stderr(fs::File::create(dir.path().join("daemon.stderr"))?)
            .process_group(0);
        let started = Instant::now();
        let child =
            cmd.spawn().with_context(|| format!("starting {}", imp.supervisord.display()))?;
        Ok(Daemon { label: imp.label, dir, child: Some(child), started })
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn sock(&self) -> PathBuf {
        self.path("sock")
    }

    /// The daemon's own log so far.
    pub fn main_log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.path("main.log")).unwrap_or_default()).into_owned()
    }

    /// Fails (with the daemon's stderr) if the daemon has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let err = fs::read_to_string(self.dir.path().join("daemon.stderr")).unwrap_or_default();
            bail!("{} daemon exited ({status}):\n{err}\n{}", self.label, self.main_log());
        }
        Ok(())
    }

    /// States of all processes via XML-RPC `getAllProcessInfo`.
    pub fn states(&self) -> Result<Vec<String>> {
        let body = xmlrpc(&self.sock(), "supervisor.getAllProcessInfo", "")?;
        Ok(member_strings(&body, "statename"))
    }

    /// Polls until `n` processes are RUNNING; returns the time from daemon start.
    pub fn wait_running(&mut self, n: usize, deadline: Duration) -> Result<Duration> {
        let begin = Instant::now();
        loop {
            self.check_alive()?;
            if let Ok(states) = self.states()
                && states.iter().filter(|s| *s == "RUNNING").count() >= n
            {
                return Ok(self.started.elapsed());
            }
            if begin.elapsed() > deadline {
                bail!("{}: not all {n} processes RUNNING after {deadline:?}", self.label);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends the daemon: SIGTERM, and while it shuts down, SIGKILL to the children it still
    /// has (Python stops one group per 1-second tick, which with 1,000 groups would take
    /// many minutes); SIGKILL for whatever is left after a grace period.
    fn finish(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id() as i32;
        kill(pid, libc::SIGTERM);
        let begin = Instant::now();
        while begin.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            for c in children_of(pid) {
                kill(c, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = children_of(pid);
        kill(pid, libc::SIGKILL);
        for c in left {
            kill(c, libc::SIGKILL);
        }
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Daemon {
    /// Ends the daemon and hands its directory to `trash` instead of removing it now.
    pub fn end_keeping_files(mut self, trash: &mut Trash) {
        self.finish();
        let to = self.dir.path().with_extension("trash");
        // The temp dir's own removal then finds nothing; if the rename fails it removes it.
        if fs::rename(self.dir.path(), &to).is_ok() {
            trash.0.push(to);
        }
    }
}

/// Directories of finished daemons, removed when this is dropped. Removing a run's
/// thousands of log files right before the next boot slows that boot's file creation by
/// 10-20x on ext4 without a journal (it skips the inodes freed in the last seconds), which
/// would measure the benchmark's own cleanup; both daemons are spared it alike.
#[derive(Default)]
pub struct Trash(Vec<PathBuf>);

impl Drop for Trash {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) touches no memory; the pids are ones we started or their children.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Pids whose parent is `ppid`, from /proc.
pub fn children_of(ppid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat_fields(*pid).and_then(|f| f.get(1)?.parse::<i32>().ok()) == Some(ppid))
        .collect()
}

/// The fields of /proc/<pid>/stat after the `(comm)`, which may itself hold spaces: index 0
/// is the state (field 3 of proc(5)).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// CPU time of `pid` (all its threads, ended ones too, not its children), in seconds: the
/// process's CPU clock, in nanoseconds (`utime + stime` in `/proc` counts 10 ms ticks,
/// too coarse for a few tens of milliseconds).
pub fn cpu_seconds(pid: i32) -> Result<f64> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid out-pointer for the call.
    let rc = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
    if rc != 0 {
        bail!("no CPU clock for {pid}: {}", std::io::Error::from_raw_os_error(rc));
    }
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer for the call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        bail!("CPU clock of {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

/// A `key:   N kB`-style number from /proc/<pid>/status.
pub fn status_value(pid: i32, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_value_in(&text, key)
}

fn status_value_in(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Context switches (voluntary, involuntary) summed over all threads of `pid`: a tokio
/// runtime's worker threads are where an idle daemon would wake up.
pub fn context_switches(pid: i32) -> (u64, u64) {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return (0, 0) };
    let mut sum = (0, 0);
    for t in tasks.flatten() {
        let text = fs::read_to_string(t.path().join("status")).unwrap_or_default();
        sum.0 += status_value_in(&text, "voluntary_ctxt_switches").unwrap_or(0);
        sum.1 += status_value_in(&text, "nonvoluntary_ctxt_switches").unwrap_or(0);
    }
    sum
}

/// Number of threads of `pid`.
pub fn threads(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

/// One XML-RPC call over the unix socket (`params` is the inner XML of `<params>`); returns
/// the response body. HTTP/1.0 with `Connection: close`, which both servers answer with a
/// plain body; chunked replies are decoded anyway.
pub fn xmlrpc(sock: &Path, method: &str, params: &str) -> Result<String> {
    let body = format!(
        "<?xml version=\"1.0\"?>\n<methodCall>\n<methodName>{method}</methodName>\n<params>{params}</params>\n</methodCall>\n"
    );
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "POST /RPC2 HTTP/1.0\r\nHost: localhost\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of HTTP headers"))?;
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    if !head.starts_with("http/1.") || head.split(' ').nth(1) != Some("200") {
        bail!("HTTP error: {}", head.lines().next().unwrap_or(""));
    }
    let raw = &resp[split + 4..];
    let body =
        if head.contains("transfer-encoding: chunked") { dechunk(raw)? } else { raw.to_vec() };
    let text = String::from_utf8_lossy(&body).into_owned();
    if text.contains("<fault>") {
        bail!("XML-RPC fault from {method}: {text}");
    }
    Ok(text)
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n").ok_or_else(|| anyhow!("bad chunk"))?;
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        let data = raw.get(eol + 2..eol + 2 + size).ok_or_else(|| anyhow!("short chunk"))?;
        out.extend_from_slice(data);
        raw = raw.get(eol + 4 + size..).ok_or_else(|| anyhow!("short chunk"))?;
    }
}

/// The string values of every struct member named `name` in an XML-RPC response, in order.
pub fn member_strings(xml: &str, name: &str) -> Vec<String> {
    let tag = format!("<name>{name}</name>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&tag) {
        rest = &rest[i + tag.len()..];
        let val = rest
            .find("<string>")
            .and_then(|s| {
                let after = &rest[s + "<string>".len()..];
                after.find("</string>").map(|e| after[..e].to_string())
            })
            .unwrap_or_default();
        out.push(val);
    }
    out
}

/// Median of a non-empty sample.
pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// `a / b` for the tables, guarding a zero denominator.
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.1}x", a / b)
    } else if a > 0.0 {
        "inf".into()
    } else {
        "n/a".into()
    }
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Machine facts printed above every table, since the ratios depend on them.
pub fn print_machine() {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("machine: {cpus} CPUs, load average {}", load.join(" "));
}
