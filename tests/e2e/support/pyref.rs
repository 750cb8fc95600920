//! Python supervisor 4.3.0, the compatibility oracle, in a virtualenv the tests create
//! themselves under the target directory. Without python3 or a package index the oracle
//! tests skip loudly, except under `CI=true`, where a missing oracle is a failure.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use nix::fcntl::{Flock, FlockArg};

/// Paths of the reference installation.
pub struct PyRef {
    pub supervisord: PathBuf,
    pub supervisorctl: PathBuf,
    pub python: PathBuf,
}

fn venv_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pyref")
}

/// Returns the oracle, installing it on first use. `None` (after a loud message) when it
/// cannot be had and CI is not set.
pub fn pyref() -> Option<PyRef> {
    let dir = venv_dir();
    let bin = dir.join("bin");
    let py = PyRef {
        supervisord: bin.join("supervisord"),
        supervisorctl: bin.join("supervisorctl"),
        python: bin.join("python3"),
    };
    let marker = dir.join(".installed-4.3.0");
    if marker.exists() {
        return Some(py);
    }
    if let Err(e) = install(&dir, &marker) {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("Python supervisor 4.3.0 is required under CI=true: {e}");
        }
        eprintln!(
            "\n!!! SKIPPING oracle comparison: cannot install Python supervisor 4.3.0: {e}\n"
        );
        return None;
    }
    Some(py)
}

fn install(dir: &PathBuf, marker: &PathBuf) -> Result<(), String> {
    let parent = dir.parent().ok_or("no parent for venv dir")?;
    fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    // Tests run in parallel threads and in parallel test binaries: one installer at a time.
    let lock_path = parent.join("pyref.lock");
    let lock_file = fs::File::create(&lock_path).map_err(|e| format!("lock file: {e}"))?;
    let _lock =
        Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, e)| format!("flock: {e}"))?;
    if marker.exists() {
        return Ok(());
    }
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)))
        }
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(dir))?;
    run(Command::new(dir.join("bin/pip")).args(["install", "-q", "supervisor==4.3.0"]))?;
    fs::write(marker, "").map_err(|e| format!("marker: {e}"))?;
    Ok(())
}
