//! What the daemon shows about itself: `/metrics` (checked by `promtool`), `/healthz`,
//! `/readyz`, `status --json`, and log line prefixes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::daemon::{DEADLINE, Daemon, poll};
use crate::support::{rpc, run};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `GET path` with optional basic auth ("user:pass" already base64-encoded by the caller)
/// over a unix socket or TCP; (status, headers, body).
pub fn get(target: Target<'_>, path: &str, auth: Option<&str>) -> (u16, String, String) {
    let auth = auth.map(|a| format!("Authorization: Basic {a}\r\n")).unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    let resp = match target {
        Target::Unix(sock) => {
            let mut s = UnixStream::connect(sock).expect("connect unix socket");
            s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
            s.write_all(req.as_bytes()).expect("write");
            read_response(&mut s)
        }
        Target::Tcp(port) => {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect tcp");
            s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
            s.write_all(req.as_bytes()).expect("write");
            read_response(&mut s)
        }
    };
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// Reads one response: to its Content-Length when it has one (some servers keep the
/// connection open regardless), else to EOF.
fn read_response(s: &mut impl Read) -> Vec<u8> {
    let mut resp = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = s.read(&mut chunk).expect("read");
        if n == 0 {
            return resp;
        }
        resp.extend_from_slice(&chunk[..n]);
        let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&resp[..end]).to_ascii_lowercase();
        let len: Option<usize> =
            head.lines().find_map(|l| l.strip_prefix("content-length:")?.trim().parse().ok());
        if let Some(len) = len
            && resp.len() >= end + 4 + len
        {
            return resp;
        }
    }
}

#[derive(Clone, Copy)]
pub enum Target<'a> {
    Unix(&'a Path),
    Tcp(u16),
}

/// `promtool`, or a loud skip (a failure under `CI=true`, where `.ci/run` installs it).
fn promtool() -> Option<&'static str> {
    let found =
        Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    if found {
        return Some("promtool");
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("promtool is required under CI=true (apt-get install prometheus)");
    }
    eprintln!("SKIPPED: promtool not installed (apt-get install prometheus); metrics not linted");
    None
}

fn promtool_check(text: &str) {
    let Some(tool) = promtool() else { return };
    let mut child = Command::new(tool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the sample whose line starts with `series` (name and labels as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

const AUTH: &str = "dXNlcjpwdw=="; // user:pw

#[test]
fn metrics_on_both_servers_behind_auth_and_promtool_clean() {
    let port = free_port();
    let conf = format!(
        "[supervisord]\nlogfile={{dir}}/d.log\npidfile={{dir}}/d.pid\nchildlogdir={{dir}}\n\
         [unix_http_server]\nfile={{dir}}/sock\n\
         [inet_http_server]\nport=127.0.0.1:{port}\nusername=user\npassword=pw\n\
         [program:talker]\ncommand=sh -c 'printf \"hello\\n\"; printf \"oops\" >&2; exec sleep 1000'\n\
         [program:crash]\ncommand=sh -c 'exit 7'\nstartretries=1\n\
         [program:idle]\ncommand=sleep 1000\nautostart=false\n\
         [eventlistener:lst]\ncommand=sh -c 'echo READY; exec sleep 1000'\nevents=PROCESS_STATE\nbuffer_size=2\n"
    );
    let d = Daemon::start(&conf);
    d.ready();
    d.wait_state("talker", "RUNNING");
    d.wait_state("crash", "FATAL");
    let sock = d.sock();
    let text = poll("talker's output to be counted", DEADLINE, || {
        let (status, head, body) = get(Target::Unix(&sock), "/metrics", None);
        assert_eq!(status, 200, "{body}");
        assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
        let out = r#"supervisord_process_output_bytes_total{name="talker",group="talker",channel="stdout"}"#;
        let err = r#"supervisord_process_output_bytes_total{name="talker",group="talker",channel="stderr"}"#;
        (sample(&body, out) == Some(6.0) && sample(&body, err) == Some(4.0)).then_some(body)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    promtool_check(&text);
    let s = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
    };
    // node_exporter's names and labels.
    assert_eq!(s(r#"node_supervisord_up{name="talker",group="talker"}"#), 1.0);
    assert_eq!(s(r#"node_supervisord_up{name="crash",group="crash"}"#), 0.0);
    assert_eq!(s(r#"node_supervisord_state{name="crash",group="crash"}"#), 200.0);
    assert_eq!(s(r#"node_supervisord_state{name="idle",group="idle"}"#), 0.0);
    assert_eq!(
        s(r#"node_supervisord_exit_status{name="crash",group="crash"}"#),
        d.info("crash")["exitstatus"].as_f64().expect("exitstatus")
    );
    let info = d.info("talker");
    assert_eq!(
        s(r#"node_supervisord_start_time_seconds{name="talker",group="talker"}"#),
        info["start"].as_f64().expect("start")
    );
    // Restarts, exits and FATAL by cause: startretries=1 is two early exits, one retry.
    assert_eq!(
        s(r#"supervisord_process_exits_total{name="crash",group="crash",cause="early"}"#),
        2.0
    );
    assert_eq!(
        s(r#"supervisord_process_restarts_total{name="crash",group="crash",cause="backoff"}"#),
        1.0
    );
    assert_eq!(
        s(r#"supervisord_process_fatal_transitions_total{name="crash",group="crash"}"#),
        1.0
    );
    assert!(s(r#"supervisord_process_backoff_seconds_total{name="crash",group="crash"}"#) > 0.0);
    // /proc figures of the running process, none for a stopped one.
    assert!(s(r#"supervisord_process_resident_memory_bytes{name="talker",group="talker"}"#) > 0.0);
    assert!(
        sample(&text, r#"supervisord_process_cpu_seconds_total{name="idle",group="idle"}"#)
            .is_none()
    );
    // The listener never answers: its 2-event buffer has overflowed by now.
    assert!(s(r#"supervisord_listener_buffer_overflows_total{pool="lst"}"#) > 0.0);
    assert!(s("process_open_fds") > 3.0);
    assert!(s("process_resident_memory_bytes") > 0.0);
    assert!(s("supervisord_uptime_seconds") >= 0.0);
    assert_eq!(s("supervisord_state"), 1.0);

    // The inet server asks for the same credentials as its RPC.
    let (status, head, _) = get(Target::Tcp(port), "/metrics", None);
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: basic"), "{head}");
    let (status, _, body) = get(Target::Tcp(port), "/metrics", Some(AUTH));
    assert_eq!(status, 200);
    assert!(body.contains("node_supervisord_up{name=\"talker\",group=\"talker\"} 1"), "{body}");

    // A stop and a request start are counted.
    rpc::ok(&sock, "supervisor.stopProcess", json!(["talker"]));
    rpc::ok(&sock, "supervisor.startProcess", json!(["talker"]));
    let (_, _, text) = get(Target::Unix(&sock), "/metrics", None);
    assert_eq!(
        sample(
            &text,
            r#"supervisord_process_exits_total{name="talker",group="talker",cause="stopped"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"supervisord_process_restarts_total{name="talker",group="talker",cause="request"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn healthz_and_readyz_follow_the_autostart_processes() {
    let d = Daemon::start(
        "[supervisord]\nlogfile={dir}/d.log\npidfile={dir}/d.pid\nchildlogdir={dir}\n\
         [unix_http_server]\nfile={dir}/sock\nusername=user\npassword=pw\n\
         [supervisorctl]\nserverurl=unix://{dir}/sock\nusername=user\npassword=pw\n\
         [program:slow]\ncommand=sleep 1000\nstartsecs=2\n\
         [program:manual]\ncommand=sleep 1000\nautostart=false\n",
    );
    let sock = d.sock();
    poll("the daemon to answer", DEADLINE, || UnixStream::connect(&sock).ok().map(|_| ()))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let probe = |path: &str| get(Target::Unix(&sock), path, Some(AUTH));
    // Without credentials: 401 like everything else on this server.
    assert_eq!(get(Target::Unix(&sock), "/healthz", None).0, 401);
    let (status, _, body) = poll("the loop to answer /healthz", DEADLINE, || {
        let r = probe("/healthz");
        (r.0 == 200).then_some(r)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // `slow` is STARTING for 2 s: not ready, and the reason names it.
    let (status, head, body) = probe("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert_eq!(body, "not ready: slow STARTING\n");
    let (status, _, body) = poll("readyz to say ready", DEADLINE, || {
        let r = probe("/readyz");
        (r.0 == 200).then_some(r)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    // An autostart process stopped by hand makes the daemon not ready again; a process
    // without autostart never counts.
    run(&["ctl", "-c", d.conf.to_str().expect("utf8"), "stop", "slow"], None).expect_code(0);
    assert_eq!(probe("/readyz"), (503, probe("/readyz").1, "not ready: slow STOPPED\n".into()));
    assert_eq!(probe("/healthz").0, 200);
    assert_eq!(probe("/nope").0, 404);
}

/// XML-RPC values as JSON, for comparing with `status --json`.
fn to_json(v: &supervisord::rpc::Value) -> serde_json::Value {
    use supervisord::rpc::Value as V;
    match v {
        V::Int(n) => json!(n),
        V::Bool(b) => json!(b),
        V::String(s) => json!(s),
        V::Double(f) => json!(f),
        V::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        V::Struct(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect())
        }
        other => panic!("unexpected value {other:?}"),
    }
}

#[test]
fn status_json_has_every_field_of_get_all_process_info_and_more() {
    let d = Daemon::start(
        "[supervisord]\nlogfile={dir}/d.log\npidfile={dir}/d.pid\nchildlogdir={dir}\n\
         [unix_http_server]\nfile={dir}/sock\n\
         [supervisorctl]\nserverurl=unix://{dir}/sock\n\
         [program:up]\ncommand=sleep 1000\nstartsecs=0\n\
         [program:down]\ncommand=sleep 1000\nautostart=false\n\
         [group:g]\nprograms=member\n\
         [program:member]\ncommand=sh -c 'exit 2'\nstartsecs=0\nautorestart=false\n",
    );
    d.ready();
    d.wait_state("up", "RUNNING");
    d.wait_state("g:member", "EXITED");
    let conf = d.conf.to_str().expect("utf8").to_string();
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "-c", conf.as_str()];
        all.extend(args);
        run(&all, None)
    };
    let r = ctl(&["status", "--json"]);
    r.expect_code(3); // `down` and `member` are not running, as plain `status` says.
    let doc: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}", r.explain()));
    let xml = crate::support::xrpc::ok(&d.sock(), "supervisor.getAllProcessInfo", &[]);
    let xml = to_json(&xml);
    let (ours, theirs) = (doc.as_array().expect("array"), xml.as_array().expect("array"));
    assert_eq!(ours.len(), theirs.len());
    for (o, t) in ours.iter().zip(theirs) {
        for (k, v) in t.as_object().expect("struct") {
            // `now` (and so nothing else) may move on between the two calls.
            if k != "now" {
                assert_eq!(&o[k], v, "field {k} of {}", t["name"]);
            }
        }
        for k in ["restarts", "restarts_by_cause", "exits_by_cause", "fatal_count", "autostart"] {
            assert!(o.get(k).is_some(), "{k} missing in {o}");
        }
    }
    let member = ours.iter().find(|o| o["name"] == "member").expect("member");
    assert_eq!(member["exits_by_cause"]["unexpected"], 1);
    assert_eq!(member["restarts"], 0);

    // Names filter as in plain status; a bad name goes to stderr and exits 4.
    let r = ctl(&["status", "--json", "up", "nope"]);
    r.expect_code(4);
    let doc: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}", r.explain()));
    assert_eq!(doc.as_array().map(Vec::len), Some(1));
    assert_eq!(doc[0]["name"], "up");
    assert_eq!(r.stderr, "nope: ERROR (no such process)\n");
    ctl(&["status", "--json", "up"]).expect_code(0);

    // avail --json: getAllConfigInfo's records.
    let r = ctl(&["avail", "--json"]);
    r.expect_code(0);
    let doc: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}", r.explain()));
    let xml = to_json(&crate::support::xrpc::ok(&d.sock(), "supervisor.getAllConfigInfo", &[]));
    assert_eq!(doc, xml);
}

#[test]
fn log_prefixes_frame_every_line_and_lose_no_byte() {
    // Partial writes: each line is written in two pieces, and the last has no newline.
    let script = "i=0; while [ $i -lt 3000 ]; do printf \"line-$i \"; printf \"end\\n\"; \
                  printf \"err-$i\" >&2; printf \"\\n\" >&2; i=$((i+1)); done; printf tail";
    let d = Daemon::start(&format!(
        "[supervisord]\nlogfile={{dir}}/d.log\npidfile={{dir}}/d.pid\nchildlogdir={{dir}}\n\
         stdout_log_prefix=%(group_name)s/%(process_name)s %(channel)s |\n\
         [unix_http_server]\nfile={{dir}}/sock\n\
         [program:chatty]\ncommand=sh -c '{script}'\nstartsecs=0\nautorestart=false\n\
         stdout_logfile={{dir}}/out.log\nstderr_logfile={{dir}}/err.log\nstderr_log_prefix=json\n\
         [program:plain]\ncommand=sh -c 'printf \"a\"; printf \"b\\nc\"'\nstartsecs=0\n\
         autorestart=false\nstdout_logfile={{dir}}/plain.log\nstdout_log_prefix=\n"
    ));
    d.ready();
    d.wait_state("chatty", "EXITED");
    d.wait_state("plain", "EXITED");
    let out = poll("the unfinished last line", DEADLINE, || {
        let t = std::fs::read_to_string(d.path("out.log")).ok()?;
        t.ends_with("chatty/chatty stdout | tail\n").then_some(t)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3001);
    for (i, l) in lines[..3000].iter().enumerate() {
        assert_eq!(*l, format!("chatty/chatty stdout | line-{i} end"));
    }
    let err = poll("stderr's lines", DEADLINE, || {
        let t = std::fs::read_to_string(d.path("err.log")).ok()?;
        (t.lines().count() == 3000).then_some(t)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    for (i, l) in err.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).expect(l);
        assert_eq!(v["message"], format!("err-{i}"));
        assert_eq!(v["process"], "chatty");
        assert_eq!(v["channel"], "stderr");
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24), "{l}");
    }
    // An empty value turns the default off: the bytes are written as they come.
    assert_eq!(std::fs::read_to_string(d.path("plain.log")).expect("plain log"), "ab\nc");
}

#[test]
fn a_bad_log_prefix_names_file_line_and_option() {
    let dir = crate::support::tempdir();
    let conf = dir.path().join("s.conf");
    std::fs::write(
        &conf,
        "[supervisord]\n[program:a]\ncommand=sleep 1\nstdout_log_prefix=%(nope)s |\n",
    )
    .expect("write");
    let r = run(&["-c", conf.to_str().expect("utf8"), "--check"], None);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("s.conf:4: [program:a] stdout_log_prefix:"), "{}", r.explain());
    assert!(all.contains("nope"), "{}", r.explain());
}

#[test]
fn readiness_and_health_are_in_the_metrics_of_processes_that_have_the_checks() {
    let d = Daemon::start(&crate::daemon::conf(
        "[program:web]\ncommand=sleep 1000\nstartsecs=0\n\
         ready_check=exec:test -f {dir}/ready\nready_check_interval=0.1\n\
         health_check=exec:test -f {dir}/healthy\nhealth_check_interval=0.2\n\
         health_check_retries=1000\n\
         [program:plain]\ncommand=sleep 1000\nstartsecs=0\n",
    ));
    d.ready();
    let sock = d.sock();
    let series = |m: &str, name: &str| format!("{m}{{name=\"{name}\",group=\"{name}\"}}");
    let metrics = || get(Target::Unix(&sock), "/metrics", None).2;
    // Not ready yet: STARTING, its ready gauge 0.
    d.wait_for_log("spawned: 'web'");
    let text = metrics();
    assert_eq!(sample(&text, &series("supervisord_process_ready", "web")), Some(0.0), "{text}");
    assert_eq!(sample(&text, &series("supervisord_process_healthy", "web")), Some(0.0), "{text}");
    // Only processes with the checks have the series.
    for m in ["supervisord_process_ready", "supervisord_process_healthy"] {
        assert_eq!(sample(&text, &series(m, "plain")), None, "{text}");
    }
    std::fs::write(d.path("ready"), b"").expect("touch ready");
    d.wait_state("web", "RUNNING");
    // RUNNING, ready, and its health checks failing (no `healthy` file).
    let text = poll("failed health checks counted", DEADLINE, || {
        let text = metrics();
        let failures =
            sample(&text, &series("supervisord_process_health_check_failures_total", "web"))?;
        (failures >= 2.0).then_some(text)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert_eq!(sample(&text, &series("supervisord_process_ready", "web")), Some(1.0), "{text}");
    assert_eq!(sample(&text, &series("supervisord_process_healthy", "web")), Some(0.0), "{text}");
    promtool_check(&text);
    std::fs::write(d.path("healthy"), b"").expect("touch healthy");
    poll("healthy", DEADLINE, || {
        (sample(&metrics(), &series("supervisord_process_healthy", "web")) == Some(1.0))
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert_eq!(d.info("web")["health"], "healthy");
}
