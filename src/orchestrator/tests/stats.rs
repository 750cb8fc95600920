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
