//! The lifecycle options in the orchestrator: starts that wait for dependencies,
//! dependencies started first, dependents stopped first, reverse-dependency shutdown,
//! checks started and stopped with the states they belong to, health retries, and the
//! essential process that ends the daemon.

use expect_test::expect;

use super::harness::World;

const CHAIN: &str = "[program:a]\ncommand=a\nstartsecs=0\nautostart=false\n\
    [program:b]\ncommand=b\nstartsecs=0\nautostart=false\ndepends_on=a\n\
    [program:c]\ncommand=c\nstartsecs=0\ndepends_on=b\npriority=1\n";

#[test]
fn boot_starts_dependencies_first_whatever_their_priority_and_autostart() {
    let mut w = World::new(&[CHAIN]);
    w.check("boot info(c) spawned(a) spawned(b) spawned(c) states", expect![[r#"
        @0 boot
          INFO waiting: c waits for b:running
          a: spawn
          INFO waiting: b waits for a:running
        @0 info(c)
          = STARTING pid:0 start:0 now:1800000000 exitstatus:0 spawnerr:"" "waiting for b:running"
        @0 spawned(a)
          INFO spawned: 'a' with pid 100
          INFO success: a entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
          b: spawn
        @0 spawned(b)
          INFO spawned: 'b' with pid 101
          INFO success: b entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
          c: spawn
        @0 spawned(c)
          INFO spawned: 'c' with pid 102
          INFO success: c entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
        @0 states
          = a:a RUNNING, b:b RUNNING, c:c RUNNING
    "#]]);
}

#[test]
fn a_completed_dependency_gates_and_a_failed_one_fails_the_dependent() {
    let mut w = World::new(&["[program:gen]\ncommand=gen\nstartsecs=0\nautorestart=false\n\
         [program:web]\ncommand=web\nstartsecs=0\ndepends_on=gen:completed\n"]);
    w.check("boot spawned(gen) exit(gen,0) spawned(web) states", expect![[r#"
        @0 boot
          gen: spawn
          INFO waiting: web waits for gen:completed
        @0 spawned(gen)
          INFO spawned: 'gen' with pid 100
          INFO success: gen entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
        @0 exit(gen,0)
          INFO exited: gen (exit status 0; expected)
          web: spawn
        @0 spawned(web)
          INFO spawned: 'web' with pid 101
          INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
        @0 states
          = gen:gen EXITED, web:web RUNNING
    "#]]);
    let mut w = World::new(&["[program:gen]\ncommand=gen\nstartsecs=0\nautorestart=false\n\
         [program:web]\ncommand=web\nstartsecs=0\ndepends_on=gen:completed\n"]);
    w.check("boot spawned(gen) exit(gen,2) info(web) states", expect![[r#"
        @0 boot
          gen: spawn
          INFO waiting: web waits for gen:completed
        @0 spawned(gen)
          INFO spawned: 'gen' with pid 100
          INFO success: gen entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
        @0 exit(gen,2)
          WARN exited: gen (exit status 2; not expected)
          WARN gave up: web entered FATAL state, dependency gen exited unexpectedly
        @0 info(web)
          = FATAL pid:0 start:0 now:1800000000 exitstatus:0 spawnerr:"dependency gen exited unexpectedly" "dependency gen exited unexpectedly"
        @0 states
          = gen:gen EXITED, web:web FATAL
    "#]]);
}

#[test]
fn start_of_the_last_link_starts_the_chain_and_waits_for_it() {
    let mut w = World::new(&[CHAIN.replace("priority=1\n", "autostart=false\n").as_str()]);
    w.check("boot startw(c) spawned(a) spawned(b) spawned(c)", expect![[r#"
        @0 boot
        @0 startw(c)
          = startw c:c: waiting
          a: spawn
          INFO waiting: b waits for a:running
          INFO waiting: c waits for b:running
        @0 spawned(a)
          INFO spawned: 'a' with pid 100
          INFO success: a entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
          b: spawn
        @0 spawned(b)
          INFO spawned: 'b' with pid 101
          INFO success: b entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
          c: spawn
        @0 spawned(c)
          INFO spawned: 'c' with pid 102
          INFO success: c entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
          reply startw c:c: ok
    "#]]);
}

#[test]
fn stop_stops_dependents_first_and_waits_for_them() {
    let mut w = World::new(&[CHAIN]);
    w.run("boot spawned(a) spawned(b) spawned(c)");
    w.check(
        "stopw(a) killed(c,15) killed(b,15) killed(a,15) states",
        expect![[r#"
        @0 stopw(a)
          = stopw a:a: waiting
          c: kill 102 SIGTERM
          c: deadline @10
        @0 killed(c,15)
          WARN stopped: c (terminated by SIGTERM)
          c: no deadline
          b: kill 101 SIGTERM
          b: deadline @10
        @0 killed(b,15)
          WARN stopped: b (terminated by SIGTERM)
          b: no deadline
          a: kill 100 SIGTERM
          a: deadline @10
        @0 killed(a,15)
          WARN stopped: a (terminated by SIGTERM)
          a: no deadline
          reply stopw a:a: ok
        @0 states
          = a:a STOPPED, b:b STOPPED, c:c STOPPED
    "#]],
    );
}

#[test]
fn shutdown_goes_in_reverse_dependency_order() {
    let mut w = World::new(&[CHAIN]);
    w.run("boot spawned(a) spawned(b) spawned(c)");
    w.check(
        "sigterm killed(c,15) killed(b,15) killed(a,15)",
        expect![[r#"
        @0 sigterm
          WARN received SIGTERM indicating exit request
          c: kill 102 SIGTERM
          c: deadline @10
          INFO waiting for c, a, b to die
        @0 killed(c,15)
          WARN stopped: c (terminated by SIGTERM)
          c: no deadline
          b: kill 101 SIGTERM
          b: deadline @10
        @0 killed(b,15)
          WARN stopped: b (terminated by SIGTERM)
          b: no deadline
          a: kill 100 SIGTERM
          a: deadline @10
        @0 killed(a,15)
          WARN stopped: a (terminated by SIGTERM)
          a: no deadline
          => all stopped
    "#]],
    );
}

#[test]
fn readiness_check_runs_while_starting_and_health_while_running() {
    let mut w = World::new(&["[program:web]\ncommand=web\nstartsecs=0\n\
         ready_check=tcp:127.0.0.1:80\nhealth_check=tcp:127.0.0.1:80\n\
         health_check_retries=2\n\
         [program:client]\ncommand=client\nstartsecs=0\ndepends_on=web\n"]);
    w.check(
        "boot spawned(web) notready(web) info(web) info(client) ready(web) spawned(client) \
         unhealthy(web) info(web) healthy(web) unhealthy(web) unhealthy(web) killed(web,15) \
         tick(web)@1 spawned(web)@1",
        expect![[r#"
            @0 boot
              web: spawn
              INFO waiting: client waits for web:running
            @0 spawned(web)
              INFO spawned: 'web' with pid 100
              web: deadline @60
              web: Ready check tcp:127.0.0.1:80 (#1)
            @0 notready(web)
            @0 info(web)
              = STARTING pid:100 start:1800000000 now:1800000000 exitstatus:0 spawnerr:"" "not ready: connection refused"
            @0 info(client)
              = STARTING pid:0 start:0 now:1800000000 exitstatus:0 spawnerr:"" "waiting for web:running"
            @0 ready(web)
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
              web: no deadline
              web: Ready check stopped
              web: Health check tcp:127.0.0.1:80 (#2)
              client: spawn
            @0 spawned(client)
              INFO spawned: 'client' with pid 101
              INFO success: client entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @0 unhealthy(web)
            @0 info(web)
              = RUNNING pid:100 start:1800000000 now:1800000000 exitstatus:0 spawnerr:"" "pid 100, uptime 0:00:00, health check failed 1/2: connection refused"
            @0 healthy(web)
            @0 unhealthy(web)
            @0 unhealthy(web)
              WARN unhealthy: web failed 2 health checks in a row (connection refused), restarting
              web: kill 100 SIGTERM
              web: deadline @10
              web: Health check stopped
            @0 killed(web,15)
              WARN exited: web (terminated by SIGTERM; not expected)
              web: deadline @1
            @1 tick(web)
              web: spawn
            @1 spawned(web)
              INFO spawned: 'web' with pid 102
              web: deadline @61
              web: Ready check tcp:127.0.0.1:80 (#3)
        "#]],
    );
}

#[test]
fn an_essential_exit_shuts_the_daemon_down_but_a_requested_stop_does_not() {
    let mut w = World::new(&["[program:main]\ncommand=main\nstartsecs=0\nautorestart=false\n\
         essential=true\n[program:other]\ncommand=other\nstartsecs=0\n"]);
    w.check("boot spawned(main) spawned(other) exit(main,7) killed(other,15)", expect![[r#"
        @0 boot
          main: spawn
          other: spawn
        @0 spawned(main)
          INFO spawned: 'main' with pid 100
          INFO success: main entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
        @0 spawned(other)
          INFO spawned: 'other' with pid 101
          INFO success: other entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
        @0 exit(main,7)
          WARN exited: main (exit status 7; not expected)
          CRIT essential process main exited (exit status 7): shutting down with exit code 7
          other: kill 101 SIGTERM
          other: deadline @10
          INFO waiting for other to die
        @0 killed(other,15)
          WARN stopped: other (terminated by SIGTERM)
          other: no deadline
          => all stopped
    "#]]);
    assert_eq!(w.orch.exit_code, Some(7));
    let mut w = World::new(&["[program:main]\ncommand=main\nstartsecs=0\nessential=true\n"]);
    w.run("boot spawned(main) stop(main) killed(main,15) getstate");
    assert_eq!(w.orch.exit_code, None, "an operator stop is no end");
}

#[test]
fn many_dependents_of_one_process_boot_and_shut_down_in_order() {
    let n = 300;
    let mut w = World::new(&["[program:db]\ncommand=db\nstartsecs=0\n\
         [program:w]\ncommand=w\nstartsecs=0\nnumprocs=300\nprocess_name=w_%(process_num)d\n\
         depends_on=db\n"]);
    let spawns: String = (0..n).map(|i| format!(" spawned(w_{i})")).collect();
    w.run(&format!("boot spawned(db){spawns}"));
    let up = w.orch.all_process_info().iter().filter(|i| i.state.name() == "RUNNING").count();
    assert_eq!(up, n + 1);
    let kills: String = (0..n - 1).map(|i| format!(" killed(w_{i},15)")).collect();
    let out = w.run(&format!("sigterm{kills}")).to_string();
    assert!(!out.contains("db: kill"), "db waits for its dependents");
    let out = w.run(&format!("killed(w_{},15)", n - 1)).to_string();
    assert!(out.contains("db: kill"), "{out}");
    let out = w.run("killed(db,15)").to_string();
    assert!(out.contains("=> all stopped"), "{out}");
}

#[test]
fn stopping_a_waiting_start_gives_it_up_and_a_fatal_dependency_is_started_again() {
    let mut w = World::new(&["[program:db]\ncommand=db\nstartsecs=0\nstartretries=0\n\
         [program:api]\ncommand=api\nstartsecs=0\ndepends_on=db\n"]);
    w.check(
        "boot startnw(api) stop(api) states spawnfail(db) states startw(api) spawned(db) \
         spawned(api)",
        expect![[r#"
            @0 boot
              db: spawn
              INFO waiting: api waits for db:running
            @0 startnw(api)
              = startnw api:api: waiting
            @0 stop(api)
              = stop api:api: ok
              reply startnw api:api: ABNORMAL_TERMINATION: api
            @0 states
              = api:api STOPPED, db:db STARTING
            @0 spawnfail(db)
              INFO spawnerr: can't find command 'x'
              INFO gave up: db entered FATAL state, too many start retries too quickly
            @0 states
              = api:api STOPPED, db:db FATAL
            @0 startw(api)
              = startw api:api: waiting
              db: spawn
              INFO waiting: api waits for db:running
            @0 spawned(db)
              INFO spawned: 'db' with pid 100
              INFO success: db entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
              api: spawn
            @0 spawned(api)
              INFO spawned: 'api' with pid 101
              INFO success: api entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
              reply startw api:api: ok
        "#]],
    );
}

#[test]
fn a_start_while_a_dependency_stops_waits_for_it_and_starts_it_again() {
    // `stop db` is still in progress (db STOPPING) when `start web` arrives: web waits,
    // db is started again once it is down, then web.
    let mut w = World::new(&["[program:db]\ncommand=db\nstartsecs=0\n\
         [program:web]\ncommand=web\nstartsecs=0\ndepends_on=db\n"]);
    w.run("boot spawned(db) spawned(web)");
    w.check("stop(db) killed(web,15) startw(web) killed(db,15) spawned(db) spawned(web) states", expect![[r#"
        @0 stop(db)
          = stop db:db: ok
          web: kill 101 SIGTERM
          web: deadline @10
        @0 killed(web,15)
          WARN stopped: web (terminated by SIGTERM)
          web: no deadline
          db: kill 100 SIGTERM
          db: deadline @10
        @0 startw(web)
          = startw web:web: waiting
          INFO waiting: db waits for its stop
          INFO waiting: web waits for db:running
        @0 killed(db,15)
          WARN stopped: db (terminated by SIGTERM)
          db: no deadline
          db: spawn
        @0 spawned(db)
          INFO spawned: 'db' with pid 102
          INFO success: db entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
          web: spawn
        @0 spawned(web)
          INFO spawned: 'web' with pid 103
          INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
          reply startw web:web: ok
        @0 states
          = db:db RUNNING, web:web RUNNING
    "#]]);
}

#[test]
fn a_start_of_a_stopping_process_is_refused_as_python_does() {
    // Without dependencies in the way, Python's answer: the spawn is refused ("already
    // running"), the start fails, and the stop goes on.
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=0\n"]);
    w.run("boot spawned(a)");
    w.check(
        "stop(a) startw(a) killed(a,15) states",
        expect![[r#"
        @0 stop(a)
          = stop a:a: ok
          a: kill 100 SIGTERM
          a: deadline @10
        @0 startw(a)
          = ABNORMAL_TERMINATION: a
          WARN process 'a' already running
        @0 killed(a,15)
          WARN stopped: a (terminated by SIGTERM)
          a: no deadline
        @0 states
          = a:a STOPPED
    "#]],
    );
}

#[test]
fn status_rows_are_process_info_s_name_group_state_pid_and_description() {
    let mut w = World::new(&["[program:db]\ncommand=db\nstartsecs=0\n\
         [program:web]\ncommand=web\nstartsecs=0\ndepends_on=db\n\
         [program:off]\ncommand=off\nautostart=false\n\
         [group:g]\nprograms=off\n"]);
    w.run("boot");
    let rows = w.orch.status_rows();
    let infos = w.orch.all_process_info();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (r.config.group.clone(), r.config.name.clone(), r.state, r.pid, r.description.clone())
        })
        .collect();
    let want: Vec<_> = infos
        .iter()
        .map(|i| (i.group.clone(), i.name.clone(), i.state, i.pid, i.description.clone()))
        .collect();
    assert_eq!(got, want);
    assert!(
        rows.iter().any(|r| r.config.name == "web" && r.description.starts_with("waiting for db")),
        "the lifecycle description is kept: {got:?}"
    );
    w.run("spawned(db) spawned(web)");
    let rows = w.orch.status_rows();
    let web = rows.iter().find(|r| r.config.name == "web").expect("web");
    assert_eq!((web.state.name(), web.pid > 0), ("RUNNING", true), "{web:?}");
    assert!(web.description.starts_with("pid "), "{web:?}");
}
