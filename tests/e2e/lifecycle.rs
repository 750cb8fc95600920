//! The lifecycle options end to end (`docs/lifecycle.md`): dependency order, readiness
//! gating RUNNING, liveness restarts, essential exit codes, restart backoff and budget,
//! reverse-dependency shutdown, and each example with stand-in programs.

use std::path::Path;

use crate::daemon::conf;
use crate::support::daemon::Daemon;

/// Index of the first log message containing `needle`, once it is there (the main log is
/// written by its own thread, a little after the event).
fn at(d: &Daemon, needle: &str) -> usize {
    d.wait_for_log(needle);
    d.log_messages()
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no log line with {needle:?}\n{}", d.explain()))
}

#[test]
fn completed_dependency_gates_the_start() {
    let d = Daemon::start(&conf(
        "[program:gen]\ncommand=sh -c 'sleep 0.3; touch {dir}/gen.done'\nautorestart=false\n\
         startsecs=0\n\
         [program:web]\ncommand=sh -c 'test -f {dir}/gen.done && exec sleep 100'\n\
         depends_on=gen:completed\nstartretries=0\n",
    ));
    d.ready();
    d.wait_state("web", "RUNNING");
    assert!(at(&d, "exited: gen (exit status 0; expected)") < at(&d, "spawned: 'web'"));
    // It never failed: spawned once, never exited, never backed off.
    let log = d.log_messages();
    assert_eq!(log.iter().filter(|l| l.contains("spawned: 'web'")).count(), 1, "{}", d.explain());
    assert!(!log.iter().any(|l| l.contains("exited: web")), "{}", d.explain());
    let info = d.info("web");
    assert_eq!(info["spawnerr"], "", "{info}");
}

#[test]
fn ready_check_holds_starting_until_it_passes() {
    let d = Daemon::start(&conf(
        "[program:web]\ncommand=sleep 100\nstartsecs=0\n\
         ready_check=exec:test -f {dir}/ready\nready_check_interval=0.1\n\
         [program:client]\ncommand=sleep 100\nstartsecs=0\ndepends_on=web\n",
    ));
    d.ready();
    d.wait_for_log("spawned: 'web'");
    // The first attempt's failure shows once it has been made.
    let info = crate::support::daemon::poll("not ready", crate::support::daemon::DEADLINE, || {
        let info = d.info("web");
        info["description"]
            .as_str()
            .is_some_and(|s| s.starts_with("not ready: exit status 1"))
            .then_some(info)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert_eq!(info["statename"], "STARTING", "{info}");
    assert_eq!(info["ready"], false, "{info}");
    let client = d.info("client");
    assert_eq!(client["statename"], "STARTING", "{}", d.explain());
    assert_eq!(client["description"], "waiting for web:running", "{client}");
    assert_eq!(client["waiting_for"], "waiting for web:running", "{client}");
    std::fs::write(d.path("ready"), b"").expect("touch ready");
    d.wait_state("web", "RUNNING");
    d.wait_state("client", "RUNNING");
}

#[test]
fn essential_exit_ends_the_daemon_with_its_code() {
    for (command, code) in [("sh -c 'exit 3'", 3), ("sh -c 'kill -KILL $$'", 137)] {
        let mut d = Daemon::start(&conf(&format!(
            "[program:main]\ncommand={command}\nautorestart=false\nstartsecs=0\nessential=true\n\
             [program:other]\ncommand=sleep 100\nstartsecs=0\n"
        )));
        assert_eq!(d.wait_exit(), Some(code), "{}", d.explain());
    }
    // Never ran: a command that cannot be found is FATAL without a pid.
    let mut d = Daemon::start(&conf(
        "[program:main]\ncommand=/no/such/program\nessential=true\nstartretries=0\n",
    ));
    assert_eq!(d.wait_exit(), Some(1), "{}", d.explain());
}

#[test]
fn shutdown_and_stop_go_in_reverse_dependency_order() {
    let mut d = Daemon::start(&conf(
        "[program:db]\ncommand=sleep 100\nstartsecs=0\npriority=900\n\
         [program:api]\ncommand=sleep 100\nstartsecs=0\ndepends_on=db\npriority=1\n",
    ));
    d.ready();
    d.wait_state("api", "RUNNING");
    let sock = d.sock();
    crate::support::rpc::ok(&sock, "supervisor.stopProcess", serde_json::json!(["db"]));
    assert_eq!(d.info("api")["statename"], "STOPPED", "stopping db stops api first");
    assert!(at(&d, "stopped: api") < at(&d, "stopped: db"));
    crate::support::rpc::ok(&sock, "supervisor.startProcess", serde_json::json!(["api"]));
    assert_eq!(d.info("db")["statename"], "RUNNING", "starting api starts db");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));
    let log = d.log_messages();
    let last = |needle: &str| log.iter().rposition(|l| l.contains(needle)).unwrap_or(0);
    assert!(last("stopped: api") < last("stopped: db"), "{}", d.explain());
}

/// The gateway example, moved to a temp dir and its own ports.
#[test]
fn gateway_example_boots_in_dependency_order() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/container");
    let text = std::fs::read_to_string(src.join("gateway.conf")).expect("read example");
    let pick = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    };
    let (svc, proxy) = (pick(), pick());
    let text = text
        .replace("%(here)s", &src.display().to_string())
        .replace("/tmp/supervisor.sock", "{dir}/sock")
        .replace("/tmp/supervisord.pid", "{dir}/sd.pid")
        .replace("childlogdir=/tmp", "childlogdir={dir}")
        .replace("/tmp/gateway", "{dir}/gateway")
        .replace("9091", &svc.to_string())
        .replace("10000", &proxy.to_string());
    let d = Daemon::start(&text);
    d.ready();
    d.wait_state("envoy", "RUNNING");
    assert_eq!(d.info("brightstaff")["statename"], "RUNNING");
    assert!(at(&d, "exited: config_generator") < at(&d, "spawned: 'brightstaff'"));
    assert!(at(&d, "success: brightstaff") < at(&d, "spawned: 'envoy'"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Seconds of a main-log line's timestamp (`2026-11-29 20:00:01,234 …`).
fn stamp(line: &str) -> f64 {
    let t = line.get(11..23).unwrap_or("00:00:00,000");
    let (hms, ms) = t.split_once(',').unwrap_or((t, "0"));
    let v: Vec<f64> = hms.split(':').map(|x| x.parse().unwrap_or(0.0)).collect();
    v.iter().fold(0.0, |acc, x| acc * 60.0 + x) + ms.parse::<f64>().unwrap_or(0.0) / 1000.0
}

fn alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_dependent_never_starts_before_the_port_accepts() {
    let port = free_port();
    let d = Daemon::start(&conf(&format!(
        "[program:svc]\ncommand=python3 -c \"import socket,time; time.sleep(0.8); \
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
         s.bind(('127.0.0.1', {port})); s.listen(8); time.sleep(100)\"\n\
         startsecs=0\nready_check=tcp:127.0.0.1:{port}\nready_check_interval=0.1\n\
         [program:client]\ncommand=python3 -c \"import socket,time; \
         r='ok' if socket.socket().connect_ex(('127.0.0.1', {port})) == 0 else 'refused'; \
         open('{{dir}}/client.txt', 'w').write(r); time.sleep(100)\"\n\
         startsecs=0\ndepends_on=svc\n"
    )));
    d.ready();
    // While svc is not listening, client waits and says why.
    let info = d.wait_state("client", "STARTING");
    assert_eq!(info["pid"], 0, "{info}");
    d.wait_state("client", "RUNNING");
    let seen = crate::support::daemon::poll("client.txt", crate::support::daemon::DEADLINE, || {
        std::fs::read_to_string(d.path("client.txt")).ok().filter(|s| !s.is_empty())
    })
    .expect("client wrote its file");
    assert_eq!(seen, "ok", "the dependent started before the port accepted\n{}", d.explain());
    assert!(at(&d, "success: svc") < at(&d, "spawned: 'client'"));
}

#[test]
fn starting_the_last_link_starts_the_chain() {
    let d = Daemon::start(&conf(
        "[supervisorctl]\nserverurl=unix://{dir}/sock\n\
         [program:a]\ncommand=sleep 100\nstartsecs=0\nautostart=false\n\
         [program:b]\ncommand=sleep 100\nstartsecs=0\nautostart=false\ndepends_on=a\n\
         [program:c]\ncommand=sleep 100\nstartsecs=0\nautostart=false\ndepends_on=b\n",
    ));
    d.ready();
    let conf = d.conf.display().to_string();
    let r = crate::support::run(&["ctl", "-c", &conf, "start", "c"], Some(d.dir.path()));
    r.expect_code(0);
    assert_eq!(r.stdout, "c: started\n", "{}", r.explain());
    for p in ["a", "b", "c"] {
        assert_eq!(d.info(p)["statename"], "RUNNING", "{p}\n{}", d.explain());
    }
    assert!(at(&d, "spawned: 'a'") < at(&d, "spawned: 'b'"));
    assert!(at(&d, "spawned: 'b'") < at(&d, "spawned: 'c'"));
    // Stopping the first link stops the chain, dependents first.
    let r = crate::support::run(&["ctl", "-c", &conf, "stop", "a"], Some(d.dir.path()));
    r.expect_code(0);
    for p in ["a", "b", "c"] {
        assert_eq!(d.info(p)["statename"], "STOPPED", "{p}\n{}", d.explain());
    }
    assert!(at(&d, "stopped: c") < at(&d, "stopped: b"));
    assert!(at(&d, "stopped: b") < at(&d, "stopped: a"));
}

#[test]
fn an_essential_exit_7_ends_the_daemon_with_7_and_nothing_left() {
    let mut d = Daemon::start(&conf(
        "[program:other]\ncommand=sleep 100\nstartsecs=0\npriority=1\n\
         [program:main]\ncommand=sh -c 'sleep 0.5; exit 7'\nstartsecs=0\nautorestart=false\n\
         essential=true\ndepends_on=other\n",
    ));
    d.ready();
    let other = d.wait_state("other", "RUNNING")["pid"].as_i64().expect("pid");
    assert_eq!(d.wait_exit(), Some(7), "{}", d.explain());
    assert!(!alive(other), "other (pid {other}) was left running\n{}", d.explain());
    let log = d.log_messages();
    assert!(
        log.iter().any(|l| l.contains(
            "essential process main exited (exit status 7): shutting down with exit code 7"
        )),
        "{}",
        d.explain()
    );
    assert!(log.iter().any(|l| l.contains("stopped: other")), "{}", d.explain());
}

#[test]
fn a_failing_liveness_check_restarts_after_the_retries() {
    let d = Daemon::start(&conf(
        "[program:web]\ncommand=sleep 100\nstartsecs=0\n\
         health_check=exec:test ! -e {dir}/sick\nhealth_check_interval=0.1\n\
         health_check_retries=3\n",
    ));
    d.ready();
    let first = d.wait_state("web", "RUNNING")["pid"].as_i64().expect("pid");
    std::fs::write(d.path("sick"), b"").expect("touch sick");
    d.wait_for_log("unhealthy: web failed 3 health checks in a row (exit status 1), restarting");
    // Healthy again once restarted.
    std::fs::remove_file(d.path("sick")).expect("rm sick");
    let info = crate::support::daemon::poll("a new pid", crate::support::daemon::DEADLINE, || {
        let info = d.info("web");
        (info["statename"] == "RUNNING" && info["pid"].as_i64() != Some(first)).then_some(info)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert!(!alive(first), "the unhealthy child was stopped");
    assert_eq!(info["health"], "healthy", "{info}");
}

#[test]
fn a_crash_loop_backs_off_exponentially_and_gives_up_at_the_limit() {
    let d = Daemon::start(&conf(
        "[program:crash]\ncommand=sh -c 'exit 3'\nstartsecs=0\nautorestart=true\n\
         restart_backoff_initial=0.2\nrestart_backoff_max=0.8\nrestart_limit=4/60\n",
    ));
    d.ready();
    let info = d.wait_state("crash", "FATAL");
    assert_eq!(info["description"], "more than 4 restarts within 60 seconds", "{info}");
    let out = d.stdout();
    let spawns: Vec<f64> =
        out.lines().filter(|l| l.contains("spawned: 'crash'")).map(stamp).collect();
    assert_eq!(spawns.len(), 5, "the first start and 4 restarts\n{}", d.explain());
    let gaps: Vec<f64> = spawns.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, want) in gaps.iter().zip([0.2, 0.4, 0.8, 0.8]) {
        // Never sooner than the formula says; later only by scheduling noise.
        assert!(*gap >= want - 0.02 && *gap < want + 1.0, "gaps {gaps:?}\n{}", d.explain());
    }
    assert!(
        out.contains("gave up: crash entered FATAL state, more than 4 restarts within 60 seconds")
    );
}

fn example_text(rel: &str) -> (std::path::PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let dir = path.parent().expect("dir").to_path_buf();
    let text = std::fs::read_to_string(&path).expect("read example");
    (dir, text)
}

/// The gateway example, stopped: dependents before what they depend on, exit code 0.
#[test]
fn gateway_example_stops_in_reverse_order() {
    let (src, text) = example_text("examples/container/gateway.conf");
    let (svc, proxy) = (free_port(), free_port());
    let text = text
        .replace("%(here)s", &src.display().to_string())
        .replace("/tmp/supervisor.sock", "{dir}/sock")
        .replace("/tmp/supervisord.pid", "{dir}/sd.pid")
        .replace("childlogdir=/tmp", "childlogdir={dir}")
        .replace("/tmp/gateway", "{dir}/gateway")
        .replace("9091", &svc.to_string())
        .replace("10000", &proxy.to_string());
    let mut d = Daemon::start(&text);
    d.ready();
    d.wait_state("envoy", "RUNNING");
    // brightstaff answers /ready only after a second: envoy was held until then.
    assert!(at(&d, "success: brightstaff") < at(&d, "spawned: 'envoy'"));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0), "{}", d.explain());
    assert!(at(&d, "stopped: envoy") < at(&d, "stopped: brightstaff"), "{}", d.explain());
}

/// The gateway example's essential proxy: when it can no longer start, the container ends
/// with its exit code.
#[test]
fn gateway_example_ends_with_the_essential_proxys_code() {
    let (src, text) = example_text("examples/container/gateway.conf");
    let (svc, proxy) = (free_port(), free_port());
    // envoy's config is never generated: it exits 1 each time, then is FATAL.
    let text = text
        .replace("%(here)s", &src.display().to_string())
        .replace("/tmp/supervisor.sock", "{dir}/sock")
        .replace("/tmp/supervisord.pid", "{dir}/sd.pid")
        .replace("childlogdir=/tmp", "childlogdir={dir}")
        .replace("--config /tmp/gateway/envoy.yaml", "--config {dir}/missing.yaml")
        .replace("/tmp/gateway", "{dir}/gateway")
        .replace("9091", &svc.to_string())
        .replace("10000", &proxy.to_string())
        .replace("essential=true", "essential=true\nstartretries=0");
    let mut d = Daemon::start(&text);
    assert_eq!(d.wait_exit(), Some(1), "{}", d.explain());
    assert!(d.stdout().contains("essential process envoy entered FATAL state"), "{}", d.explain());
}

/// The sidecar example: the proxy waits for the app's sd_notify READY=1, and is ready by
/// its own log line.
#[test]
fn sidecar_example_gates_on_notify_and_log_readiness() {
    let (src, text) = example_text("examples/sidecar/supervisord.conf");
    let (app, proxy) = (free_port(), free_port());
    let text = text
        .replace("%(here)s", &src.display().to_string())
        .replace("/tmp/sidecar-supervisor.sock", "{dir}/sock")
        .replace("/tmp/sidecar-supervisord.pid", "{dir}/sd.pid")
        .replace("childlogdir=/tmp", "childlogdir={dir}")
        .replace("8080", &app.to_string())
        .replace("15001", &proxy.to_string());
    let mut d = Daemon::start(&text);
    d.ready();
    let info = d.wait_state("proxy", "STARTING");
    assert_eq!(info["description"], "waiting for app:running", "{info}");
    d.wait_state("proxy", "RUNNING");
    assert!(at(&d, "success: app") < at(&d, "spawned: 'proxy'"), "{}", d.explain());
    assert_eq!(d.info("app")["statename"], "RUNNING");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0), "{}", d.explain());
    assert!(at(&d, "stopped: proxy") < at(&d, "stopped: app"), "{}", d.explain());
}

/// The Kubernetes example: the pod's config (from its ConfigMap) includes the gateway and
/// adds the inet server the probes use.
#[test]
fn kubernetes_example_runs_the_gateway_with_the_probe_port() {
    let (src, gateway) = example_text("examples/container/gateway.conf");
    let (_, pod) = example_text("examples/kubernetes/pod.yaml");
    // The ConfigMap's `pod.conf: |` block, unindented.
    let pod_conf: String = pod
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("pod.conf: |"))
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect();
    assert!(pod_conf.contains("[include]"), "{pod_conf}");
    let inc = crate::support::tempdir();
    let here = inc.path().display().to_string();
    let sock = inc.path().join("sock");
    let (svc, proxy, http) = (free_port(), free_port(), free_port());
    let gateway = gateway
        .replace("%(here)s", &src.display().to_string())
        .replace("/tmp/gateway", &format!("{here}/gateway"))
        .replace("/tmp/supervisor.sock", &sock.display().to_string())
        .replace("/tmp/supervisord.pid", &format!("{here}/sd.pid"))
        .replace("childlogdir=/tmp", &format!("childlogdir={here}"))
        .replace("9091", &svc.to_string())
        .replace("10000", &proxy.to_string());
    std::fs::write(inc.path().join("gateway.conf"), gateway).expect("write gateway.conf");
    let conf = pod_conf
        .replace("/app/gateway.conf", &inc.path().join("gateway.conf").display().to_string())
        .replace("0.0.0.0:9001", &format!("127.0.0.1:{http}"));
    let mut d = Daemon::start(&conf);
    let state = |name: &str| {
        crate::support::rpc::call(&sock, "supervisor.getProcessInfo", serde_json::json!([name]))
            .ok()
            .and_then(|i| i["statename"].as_str().map(str::to_string))
    };
    crate::support::daemon::poll("envoy RUNNING", crate::support::daemon::DEADLINE, || {
        (state("envoy").as_deref() == Some("RUNNING")).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.explain()));
    assert!(at(&d, "exited: config_generator") < at(&d, "spawned: 'brightstaff'"));
    assert!(at(&d, "success: brightstaff") < at(&d, "spawned: 'envoy'"));
    // The pod's readiness probe: envoy and brightstaff are ready, the one-shot generator
    // has completed.
    let readyz = || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", http)).expect("the probe port");
        s.write_all(b"GET /readyz HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let page = readyz();
    assert!(page.starts_with("HTTP/1.") && page.contains(" 200 "), "{page}\n{}", d.explain());
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0), "{}", d.explain());
    assert!(at(&d, "stopped: envoy") < at(&d, "stopped: brightstaff"), "{}", d.explain());
}
