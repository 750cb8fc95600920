//! The web page in a real browser: headless Chromium, driven over its DevTools protocol,
//! loads `/` from a running daemon's inet server (with basic auth), clicks Stop and Start
//! and sees the states change. Skips loudly without Chromium, except under `CI=true`.
//! With `UPDATE_SCREENSHOT=1` it also writes `docs/web-page.png`.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::observe::{Target, free_port, get};
use crate::support::daemon::{DEADLINE, Daemon, poll};
use crate::support::rpc;

fn chromium() -> Option<&'static str> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(name);
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("Chromium is required under CI=true (apt-get install chromium)");
    }
    eprintln!("SKIPPED: no chromium installed (apt-get install chromium); web page not tested");
    None
}

/// A headless Chromium in its own process group, killed with all its helpers on drop,
/// however the test ends.
struct Chromium {
    child: Child,
    profile: tempfile::TempDir,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: kill(2) on our own child's process group has no memory effects.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        // The crash handler runs in a session of its own; it names our profile directory.
        let mark = self.profile.path().display().to_string();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&mark) {
                // SAFETY: as above, for a process of our own browser.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

struct Browser {
    _chromium: Chromium,
    ws: tungstenite::WebSocket<TcpStream>,
    next: u64,
}

impl Browser {
    fn launch(program: &str) -> Browser {
        let profile = crate::support::tempdir();
        let child = Command::new(program)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--window-size=1100,700",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--crash-dumps-dir={}/crash", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start chromium");
        let mut chromium = Chromium { child, profile };
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…" on stderr.
        let stderr = chromium.child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx.recv_timeout(DEADLINE).expect("chromium's DevTools address");
        let port: u16 = url
            .trim_start_matches("ws://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("devtools port");
        // The page target of about:blank.
        let ws_url = poll("a page target", DEADLINE, || {
            let (status, _, body) = get(Target::Tcp(port), "/json/list", None);
            if status != 200 {
                return None;
            }
            let list: Value = serde_json::from_str(&body).ok()?;
            list.as_array()?
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
        })
        .expect("page target");
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect devtools");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let (ws, _) = tungstenite::client(ws_url.as_str(), stream).expect("websocket handshake");
        Browser { _chromium: chromium, ws, next: 1 }
    }

    /// One DevTools command; its `result` (events in between are skipped).
    fn cmd(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(tungstenite::Message::text(msg)).expect("send");
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < DEADLINE, "no answer to {method}");
            let m = self.ws.read().expect("read devtools");
            let Ok(text) = m.to_text() else { continue };
            let v: Value = serde_json::from_str(text).expect("devtools JSON");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `js` in the page (promises awaited); its value.
    fn eval(&mut self, js: &str) -> Value {
        let r = self.cmd(
            "Runtime.evaluate",
            json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    fn wait_for(&mut self, what: &str, js: &str, want: &str) {
        let start = Instant::now();
        loop {
            let got = self.eval(js);
            if got == want {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "waited for {what}: got {got}, want {want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn state_of(name: &str) -> String {
    format!(
        "(() => {{ const s = document.querySelector('tr[data-name=\"{name}\"] .state'); \
         return s ? s.textContent : null; }})()"
    )
}

fn click(name: &str, action: &str) -> String {
    format!(
        "(() => {{ const b = document.querySelector('tr[data-name=\"{name}\"] button[data-action=\"{action}\"]'); \
         if (!b) return 'no button'; b.click(); return 'clicked'; }})()"
    )
}

#[test]
fn the_web_page_shows_processes_and_stops_and_starts_them_in_a_browser() {
    let Some(program) = chromium() else { return };
    let port = free_port();
    let d = Daemon::start(&format!(
        "[supervisord]\nlogfile={{dir}}/d.log\npidfile={{dir}}/d.pid\nchildlogdir={{dir}}\n\
         identifier=demo\n\
         [unix_http_server]\nfile={{dir}}/sock\n\
         [inet_http_server]\nport=127.0.0.1:{port}\nusername=admin\npassword=secret\n\
         [program:web]\ncommand=sh -c 'echo web listening on :8080; exec sleep 1000'\n\
         [program:worker]\ncommand=sleep 1000\nprocess_name=%(program_name)s_%(process_num)d\n\
         numprocs=2\n\
         [program:migrate]\ncommand=sh -c 'echo migrated; exit 0'\nstartsecs=0\nautorestart=false\n\
         [program:flaky]\ncommand=sh -c 'echo boom >&2; exit 1'\nstartretries=1\n\
         [program:cron]\ncommand=sleep 1000\nautostart=false\n"
    ));
    d.ready();
    d.wait_state("web", "RUNNING");
    d.wait_state("flaky", "FATAL");
    let sock = d.sock();

    // The page needs the same credentials as the RPC.
    assert_eq!(get(Target::Tcp(port), "/", None).0, 401);
    let (status, head, body) = get(Target::Tcp(port), "/", Some("YWRtaW46c2VjcmV0"));
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(body.contains("<title>Supervisor Status</title>"));

    let mut b = Browser::launch(program);
    b.cmd("Network.enable", json!({}));
    b.cmd(
        "Network.setExtraHTTPHeaders",
        json!({"headers": {"Authorization": "Basic YWRtaW46c2VjcmV0"}}),
    );
    b.cmd("Page.enable", json!({}));
    b.cmd("Page.navigate", json!({"url": format!("http://127.0.0.1:{port}/")}));
    b.wait_for("web RUNNING in the table", &state_of("web"), "RUNNING");
    b.wait_for("worker:worker_1 in the table", &state_of("worker:worker_1"), "RUNNING");
    b.wait_for("flaky FATAL", &state_of("flaky"), "FATAL");
    assert_eq!(b.eval("document.querySelectorAll('#rows tr').length"), 6);

    // Stop: the daemon stops it and the page shows it without a reload.
    assert_eq!(b.eval(&click("web", "stop")), "clicked");
    b.wait_for("web STOPPED on the page", &state_of("web"), "STOPPED");
    assert_eq!(d.info("web")["statename"], "STOPPED");
    b.wait_for(
        "the message",
        "document.getElementById('message').textContent",
        "Process web stopped",
    );
    // Start again.
    assert_eq!(b.eval(&click("web", "start")), "clicked");
    b.wait_for("web RUNNING again", &state_of("web"), "RUNNING");
    assert_eq!(d.info("web")["statename"], "RUNNING");
    // A state change made elsewhere shows up by itself.
    rpc::ok(&sock, "supervisor.startProcess", json!(["cron"]));
    b.wait_for("cron RUNNING after an RPC start", &state_of("cron"), "RUNNING");
    assert_eq!(b.eval("document.querySelector('tr[data-name=\"web\"] td.num').textContent"), "1");

    // Filters.
    b.eval("(() => { const f = document.getElementById('filter'); f.value = 'work'; f.dispatchEvent(new Event('input')); })()");
    assert_eq!(b.eval("document.querySelectorAll('#rows tr').length"), 2);
    b.eval("(() => { const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input')); \
            const s = document.getElementById('statefilter'); s.value = 'problem'; s.dispatchEvent(new Event('change')); })()");
    assert_eq!(
        b.eval("[...document.querySelectorAll('#rows tr')].map(r => r.dataset.name).join()"),
        "flaky"
    );
    b.eval("(() => { const s = document.getElementById('statefilter'); s.value = ''; s.dispatchEvent(new Event('change')); })()");

    // The tail view shows the process's log.
    assert_eq!(b.eval(&click("web", "tail")), "clicked");
    b.wait_for(
        "web's log in the tail view",
        "document.getElementById('tailtext').textContent.includes('web listening on :8080') ? 'yes' : document.getElementById('tailtext').textContent",
        "yes",
    );

    // A screenshot of the page as a user sees it.
    b.cmd(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1100, "height": 700, "deviceScaleFactor": 1, "mobile": false}),
    );
    b.eval("new Promise(r => { window.scrollTo(0, 0); setTimeout(r, 300); })");
    let shot = b.cmd("Page.captureScreenshot", json!({"format": "png"}));
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("base64");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    if std::env::var("UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/web-page.png");
        std::fs::write(&path, &png).expect("write screenshot");
    }
}
