//! Signals, clearing logs, process info, and commands a runner could not take.

use expect_test::expect;

use super::harness::World;

const TWO: &str =
    "[program:w]\ncommand=w\nstartsecs=0\nnumprocs=2\nprocess_name=w%(process_num)s\n";

#[test]
fn signal_goes_to_running_members_and_a_stopped_single_is_not_running() {
    let mut w = World::new(&[TWO]);
    w.run("boot spawned(w0) spawned(w1) stop(w:w1) killed(w1,15)");
    w.check(
        "signal(w:*,1) signal(w:w1,1) signal(w:w0,10) sigfail(w0)",
        expect![[r#"
        @0 signal(w:*,1)
          = signal w:w0: ok
          w:w0: signal 100 SIGHUP
        @0 signal(w:w1,1)
          = NOT_RUNNING: w:w1
        @0 signal(w:w0,10)
          = signal w:w0: ok
          w:w0: signal 100 SIGUSR1
        @0 sigfail(w0)
          CRIT unknown problem sending sig w0 (100):EPERM
    "#]],
    );
}

#[test]
fn a_kill_that_fails_is_reported() {
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=0\n"]);
    w.run("boot spawned(a)");
    w.check(
        "stop(a) killfail(a) states",
        expect![[r#"
        @0 stop(a)
          = stop a:a: ok
          a: kill 100 SIGTERM
          a: deadline @10
        @0 killfail(a)
          CRIT unknown problem killing a (100):EPERM
          a: no deadline
        @0 states
          = a:a UNKNOWN
    "#]],
    );
}

#[test]
fn a_full_runner_inbox_is_logged_and_clear_logs_fails() {
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=0\nautostart=false\n"]);
    w.check(
        "boot clearlogs(a) full clearlogs(a) start(a) unfull",
        expect![[r#"
        @0 boot
        @0 clearlogs(a)
          = clearlogs a:a: waiting
          a: clear logs
          reply clearlogs a:a: dropped
        @0 full
        @0 clearlogs(a)
          = clearlogs a:a: FAILED: a:a
        @0 start(a)
          = start a:a: waiting
          ERRO command not delivered: the runner is gone
        @0 unfull
    "#]],
    );
}

#[test]
fn process_info_reads_the_fake_clock_and_startsecs_counts_from_the_start_request() {
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=1\n"]);
    w.check("boot info(a) spawned(a)@2 info(a)@65 info(nope) info(a:)", expect![[r#"
        @0 boot
          a: spawn
        @0 info(a)
          = STARTING pid:0 start:1800000000 now:1800000000 exitstatus:0 spawnerr:"" ""
        @2 spawned(a)
          INFO spawned: 'a' with pid 100
          INFO success: a entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @65 info(a)
          = RUNNING pid:100 start:1800000000 now:1800000065 exitstatus:0 spawnerr:"" "pid 100, uptime 0:01:05"
        @65 info(nope)
          = BAD_NAME: nope
        @65 info(a:)
          = BAD_NAME: a:
    "#]]);
}

#[test]
fn shutdown_answers_a_waiting_stop() {
    let mut w = World::new(&[
        "[program:a]\ncommand=a\nstartsecs=0\n[program:b]\ncommand=b\nstartsecs=0\npriority=1\n",
    ]);
    w.run("boot spawned(b) spawned(a)");
    w.check(
        "stopw(b) sigterm killed(a,15) killed(b,15)",
        expect![[r#"
        @0 stopw(b)
          = stopw b:b: waiting
          b: kill 100 SIGTERM
          b: deadline @10
        @0 sigterm
          WARN received SIGTERM indicating exit request
          a: kill 101 SIGTERM
          a: deadline @10
          INFO waiting for b, a to die
        @0 killed(a,15)
          WARN stopped: a (terminated by SIGTERM)
          a: no deadline
        @0 killed(b,15)
          WARN stopped: b (terminated by SIGTERM)
          b: no deadline
          reply stopw b:b: ok
          => all stopped
    "#]],
    );
}

#[test]
fn stdin_needs_a_live_child_and_a_runner_that_takes_it() {
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=0\nautostart=false\n"]);
    w.check(
        "boot stdin(a) stdin(a:) start(a) stdin(a) spawned(a) stdin(a) full stdin(a) unfull \
         stop(a) stdin(a)",
        expect![[r#"
            @0 boot
            @0 stdin(a)
              = NOT_RUNNING: a
            @0 stdin(a:)
              = BAD_NAME: a:
            @0 start(a)
              = start a:a: waiting
              a: spawn
            @0 stdin(a)
              = NOT_RUNNING: a
            @0 spawned(a)
              INFO spawned: 'a' with pid 100
              INFO success: a entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
              reply start a:a: ok
            @0 stdin(a)
              = ok
              a: stdin
            @0 full
            @0 stdin(a)
              = FAILED: a: runner is gone
            @0 unfull
            @0 stop(a)
              = stop a:a: ok
              a: kill 100 SIGTERM
              a: deadline @10
            @0 stdin(a)
              = NOT_RUNNING: a
        "#]],
    );
}

#[test]
fn an_auto_log_path_is_handed_out_once_its_file_is_created() {
    let conf = "[program:a]\ncommand=a\n\n[program:b]\ncommand=b\nstdout_logfile=/tmp/b.log\n\n\
                [program:c]\ncommand=c\nstdout_logfile=NONE\n";
    let mut w = World::new(&[conf]);
    w.check(
        "boot logpath(a) logpath(b) logpath(c)",
        expect![[r#"
            @0 boot
              a: spawn
              b: spawn
              c: spawn
            @0 logpath(a)
              = true
              (after the AUTO logs queued so far)
            @0 logpath(b)
              = true
            @0 logpath(c)
              = false
        "#]],
    );
}
