//! The `supervisord` personality: flags, config loading, `--check`, and (in the next
//! issue) the daemon's wiring.
//!
//! A bad command line or config exits 2 before anything is created: no socket, no
//! pidfile, no child.

use std::ffi::OsString;
use std::io::Write;

use crate::config::{self, Command, Config, LoadContext, cli};

mod run;

/// Runs the daemon personality and returns its exit code.
pub fn main(args: Vec<OsString>) -> u8 {
    let argv0 = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "supervisord".into());
    if args.get(1).is_some_and(|a| a == "--install-links") {
        return match crate::ctl::parse_clap::<InstallLinks>(args) {
            Ok(a) => install_links(&a.install_links, &argv0),
            Err(code) => code,
        };
    }
    let ctx = LoadContext::from_process();
    let home = ctx.env.iter().rev().find(|(k, _)| k == "HOME").map(|(_, v)| v.clone());
    let run = match cli::parse(&args, &ctx.cwd, home.as_deref()) {
        Ok(Command::Help) => return print_out(&cli::help_text(&argv0)),
        Ok(Command::Version) => return print_out(&format!("{}\n", cli::VERSION)),
        Ok(Command::Run(run)) => run,
        Err(cli::UsageError(msg)) => return usage(&msg, &argv0),
    };
    let path = match run.configuration {
        Some(p) => p,
        None => {
            if nix::unistd::getuid().is_root() {
                eprint(
                    "Warning: Supervisord is running as root and it is searching for its configuration file in default locations (including its current working directory); you probably want to specify a \"-c\" argument specifying an absolute path to a configuration file for improved security.\n",
                );
            }
            match cli::find_config(&argv0, &ctx.cwd) {
                Ok(p) => p,
                Err(cli::UsageError(msg)) => return usage(&msg, &argv0),
            }
        }
    };
    if !ctx.cwd.join(&path).exists() {
        return usage(&format!("could not find config file {}", path.display()), &argv0);
    }
    let cfg = match config::load(&path, &run.overrides, &ctx) {
        Ok(cfg) => cfg,
        Err(errors) => {
            let text: String = errors.iter().map(|e| format!("Error: {e}\n")).collect();
            eprint(&text);
            return 2;
        }
    };
    if run.check {
        let mut warnings: String = cfg.warnings.iter().map(|w| format!("Warning: {w}\n")).collect();
        let programs = cfg.processes().count();
        if let Some(w) =
            crate::sys::limits::descriptor_shortfall(cfg.descriptors_needed(), programs)
        {
            warnings.push_str(&format!("Warning: {w}\n"));
        }
        eprint(&warnings);
        return print_out(&process_table(&cfg));
    }
    run::run(cfg, run::Launch { path, overrides: run.overrides, ctx, argv0 })
}

/// The `--check` table: one row per process in start order (group priority, group
/// name, then process priority and name), with aligned columns; the lifecycle options a
/// process sets follow its row, one indented `option = value` line each.
pub fn process_table(cfg: &Config) -> String {
    let header = ["GROUP", "NAME", "PRIORITY", "COMMAND"];
    let rows: Vec<[String; 4]> = cfg
        .processes()
        .map(|(g, p)| {
            [g.name.clone(), p.name.clone(), p.priority.to_string(), p.command.replace('\n', " ")]
        })
        .collect();
    // The lifecycle options a process sets, as indented lines under its row.
    // `stopastree = false` is listed too: a stop then leaves descendants running.
    let extra: Vec<Vec<String>> = cfg
        .processes()
        .map(|(_, p)| {
            let mut lines = p.lifecycle().describe();
            if !p.stopastree {
                lines.push("stopastree = false".to_string());
            }
            lines
        })
        .collect();
    let width = |col: usize| {
        let cells = rows.iter().filter_map(|r| r.get(col)).map(|c| c.chars().count());
        cells.chain(header.get(col).map(|h| h.len())).max().unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    let line = |cells: [&str; 4]| {
        let [g, n, p, c] = cells;
        let [wg, wn, wp] = widths;
        format!("{g:<wg$}  {n:<wn$}  {p:<wp$}  {c}\n")
    };
    let mut out = line(header);
    for ([g, n, p, c], extra) in rows.iter().zip(&extra) {
        out.push_str(&line([g, n, p, c]));
        for e in extra {
            out.push_str(&format!("    {e}\n"));
        }
    }
    out
}

/// `supervisord --install-links DIR`, ours alone (the daemon's Python flags are getopt's).
#[derive(Debug, clap::Parser)]
#[command(name = "supervisord", about = "Install the supervisorctl and wekastop links")]
struct InstallLinks {
    /// Make supervisorctl and wekastop links to this binary in DIR
    #[arg(long, value_name = "DIR")]
    install_links: std::path::PathBuf,
}

/// `supervisorctl` and `wekastop` symlinks in `dir` that point at this binary (by its
/// absolute path), replacing older links of those names.
fn install_links(dir: &std::path::Path, argv0: &str) -> u8 {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return usage(&format!("cannot find this binary's path: {e}"), argv0),
    };
    let mut report = String::new();
    for name in ["supervisorctl", "wekastop"] {
        let link = dir.join(name);
        if link.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            let _ = std::fs::remove_file(&link);
        }
        match std::os::unix::fs::symlink(&exe, &link) {
            Ok(()) => report.push_str(&format!("{} -> {}\n", link.display(), exe.display())),
            Err(e) => {
                eprint(&format!("Error: cannot create {}: {e}\n", link.display()));
                return 2;
            }
        }
    }
    print_out(&report)
}

pub(crate) fn usage(msg: &str, argv0: &str) -> u8 {
    eprint(&cli::usage_text(msg, argv0));
    2
}

/// Writes to stdout; a closed stdout (`| head`) is not an error worth reporting.
fn print_out(text: &str) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(_) => 1,
    }
}

/// Writes to stderr; if stderr itself is gone there is nowhere left to report to.
pub(crate) fn eprint(text: &str) {
    let mut err = std::io::stderr().lock();
    if err.write_all(text.as_bytes()).is_err() {
        // Nothing useful can be done: the exit code still tells the caller.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use std::path::Path;

    #[test]
    fn table_is_aligned_and_in_start_order() {
        let dir = std::env::temp_dir().join(format!("sdtbl{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let conf = dir.join("t.conf");
        std::fs::write(
            &conf,
            "[supervisord]\n[program:zz]\ncommand=/bin/z\npriority=1\n[program:a]\ncommand=/bin/a\n  --flag\n",
        )
        .expect("write conf");
        let ctx = LoadContext { env: vec![], cwd: dir.clone(), host_node_name: "h".into() };
        let cfg = config::load(Path::new("t.conf"), &Overrides::default(), &ctx).expect("loads");
        let table = process_table(&cfg);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(
            table,
            "GROUP  NAME  PRIORITY  COMMAND\nzz     zz    1         /bin/z\na      a     999       /bin/a --flag\n"
        );
    }

    #[test]
    fn table_lists_lifecycle_options_under_their_row() {
        let dir = tempfile::Builder::new().prefix("sdtbl").tempdir_in("/tmp").expect("temp dir");
        std::fs::write(
            dir.path().join("t.conf"),
            "[supervisord]\n[program:cfg]\ncommand=/bin/gen\npriority=1\n\
             [program:web]\ncommand=/bin/web\ndepends_on=cfg:completed\nready_check=http://127.0.0.1:8080/ready\n\
             health_check=tcp:127.0.0.1:8080\nessential=true\nrestart_backoff_max=30\nrestart_limit=5/60\n",
        )
        .expect("write conf");
        let ctx = LoadContext { env: vec![], cwd: dir.path().into(), host_node_name: "h".into() };
        let cfg = config::load(Path::new("t.conf"), &Overrides::default(), &ctx).expect("loads");
        expect_test::expect![[r#"
            GROUP  NAME  PRIORITY  COMMAND
            cfg    cfg   1         /bin/gen
            web    web   999       /bin/web
                depends_on = cfg:completed
                ready_check = http://127.0.0.1:8080/ready (timeout 60s, interval 1s, attempt timeout 1s)
                health_check = tcp:127.0.0.1:8080 (interval 10s, timeout 1s, retries 3)
                essential = true
                restart_backoff = 1s doubling up to 30s
                restart_limit = 5/60s
        "#]]
        .assert_eq(&process_table(&cfg));
    }
}
