//! Python supervisord 4.3.0 running a test config, side by side with ours: same config
//! text (with `{dir}` replaced by its own temp dir), stopped with its children on drop.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::daemon::{DEADLINE, poll};
use super::pyref::PyRef;
use super::tempdir;

pub struct PyDaemon {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    child: Child,
}

impl PyDaemon {
    /// Starts `supervisord -n -c` and waits until it answers on `{dir}/sock`.
    pub fn start(py: &PyRef, conf: &str) -> PyDaemon {
        let dir = tempdir();
        let conf_path = dir.path().join("supervisord.conf");
        std::fs::write(&conf_path, conf.replace("{dir}", &dir.path().display().to_string()))
            .expect("write python config");
        let child = Command::new(&py.supervisord)
            .args(["-n", "-c"])
            .arg(&conf_path)
            .current_dir(dir.path())
            .env(super::leftovers::DAEMON_VAR, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start python supervisord");
        let d = PyDaemon { dir, conf: conf_path, child };
        let sock = d.sock();
        poll("python supervisord to answer", DEADLINE, || {
            super::rpc::post(
                &sock,
                "/RPC2",
                "text/xml",
                b"<methodCall><methodName>supervisor.getState</methodName></methodCall>",
            )
            .ok()
            // 401: up, and wanting a password.
            .filter(|(status, _)| matches!(*status, 200 | 401))
        })
        .unwrap_or_else(|e| panic!("{e}"));
        d
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for PyDaemon {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signals to a child we started and to its process group.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let _ = poll("python daemon exit", DEADLINE, || self.child.try_wait().ok().flatten());
        // SAFETY: as above; takes any children left behind.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        let dir = self.dir.path().display().to_string();
        super::leftovers::kill_marked(super::leftovers::DAEMON_VAR, &dir);
    }
}
