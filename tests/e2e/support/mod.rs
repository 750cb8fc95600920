//! The harness: run the real binary, show everything when an assertion fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_supervisord"))
}

/// A finished command with everything needed to explain a failure.
pub struct Run {
    pub cmd: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(cmd: String, out: Output) -> Run {
        Run {
            cmd,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A readable account of the run for assertion messages.
    pub fn explain(&self) -> String {
        format!(
            "command: {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts the exit code, showing the whole run when it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code\n{}", self.explain());
        self
    }
}

/// Runs the binary with `args` (argv[0] is the binary), in `cwd` when given.
pub fn run(args: &[&str], cwd: Option<&Path>) -> Run {
    run_as(&bin(), args, cwd)
}

/// Runs `program` (the binary or a link to it) with `args`.
pub fn run_as(program: &Path, args: &[&str], cwd: Option<&Path>) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let shown = format!("{} {}", program.display(), args.join(" "));
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    Run::from_output(shown, out)
}

/// A fresh temp dir under /tmp with a short name: unix socket paths must stay under
/// 108 bytes, which paths inside `target/` would exceed.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("sd").tempdir_in("/tmp").expect("create temp dir under /tmp")
}
pub mod daemon;
pub mod leftovers;
pub mod mask;
pub mod procfs;
pub mod pty;
pub mod pydaemon;
pub mod pyref;
pub mod rpc;
pub mod xrpc;
