//! The per-process counters behind metrics and `status --json`, as the table keeps them:
//! restarts by cause (`[exited, backoff, autorecovery, request]`), exits by cause
//! (`[expected, unexpected, early, stopped, spawn_error]`), FATAL transitions and BACKOFF
//! time on the fake clock.

use expect_test::expect;

use super::harness::World;

#[test]
fn a_crash_loop_counts_early_exits_backoff_retries_and_fatal() {
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=1\nstartretries=2\n"]);
    w.run("boot spawned(a) exit(a,1)@0.5 tick(a)@1.5 spawned(a)@1.5 exit(a,1)@1.6");
    w.run("tick(a)@3.6 spawned(a)@3.6 exit(a,1)@3.7");
    w.check(
        "stats@10",
        expect![[r#"
        @10 stats
          = a:a restarts:[0, 2, 0, 0] exits:[0, 0, 3, 0, 0] fatal:1 backoff:3s
    "#]],
    );
    // An explicit start of the FATAL process is a restart by request; a stop is counted.
    w.check("start(a) spawned(a)@10 tick(a)@11 stop(a) exit(a,0)@11.5 stats@12", expect![[r#"
        @10 start(a)
          = start a:a: waiting
          a: spawn
        @10 spawned(a)
          INFO spawned: 'a' with pid 103
          a: deadline @11
          reply start a:a: ok
        @11 tick(a)
          INFO success: a entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @11 stop(a)
          = stop a:a: ok
          a: kill 103 SIGTERM
          a: deadline @21
        @11.5 exit(a,0)
          INFO stopped: a (exit status 0)
          a: no deadline
        @12 stats
          = a:a restarts:[0, 2, 0, 1] exits:[0, 0, 3, 1, 0] fatal:1 backoff:3s
    "#]]);
}

#[test]
fn the_snapshot_for_metrics_agrees_with_the_full_one() {
    // a runs, b becomes FATAL, c waits for b (STARTING in both) and then gives up.
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=0\n\
        [program:b]\ncommand=b\nstartsecs=1\nstartretries=0\n\
        [program:c]\ncommand=c\ndepends_on=b\n"]);
    w.run("boot spawned(a) spawned(b)");
    w.check(
        "counts@0.2 exit(b,3)@0.5 counts@2",
        expect![[r#"
        @0.2 counts
          = a:a RUNNING agree
          = b:b STARTING agree
          = c:c STARTING agree
        @0.5 exit(b,3)
          WARN exited: b (exit status 3; not expected)
          INFO gave up: b entered FATAL state, too many start retries too quickly
          b: no deadline
          WARN gave up: c entered FATAL state, dependency b is FATAL
        @2 counts
          = a:a RUNNING agree
          = b:b FATAL agree
          = c:c FATAL agree
    "#]],
    );
}
