//! Replies parked on processes: start and stop with and without `wait`, and their faults.

use expect_test::expect;

use super::harness::World;

fn manual(extra: &str) -> World {
    World::new(&[&format!("[program:a]\ncommand=a\nautostart=false\n{extra}")])
}

#[test]
fn start_with_wait_is_answered_at_running() {
    let mut w = manual("startsecs=2\n");
    w.check("boot startw(a) spawned(a) tick(a)@1 tick(a)@2", expect![[r#"
        @0 boot
        @0 startw(a)
          = startw a:a: waiting
          a: spawn
        @0 spawned(a)
          INFO spawned: 'a' with pid 100
          a: deadline @2
        @1 tick(a)
          a: deadline @2
        @2 tick(a)
          INFO success: a entered RUNNING state, process has stayed up for > than 2 seconds (startsecs)
          reply startw a:a: ok
    "#]]);
}

#[test]
fn start_without_wait_is_answered_once_forked() {
    let mut w = manual("");
    w.check(
        "boot start(a) spawned(a)",
        expect![[r#"
            @0 boot
            @0 start(a)
              = start a:a: waiting
              a: spawn
            @0 spawned(a)
              INFO spawned: 'a' with pid 100
              a: deadline @1
              reply start a:a: ok
        "#]],
    );
}

#[test]
fn a_failed_spawn_answers_a_waiting_start_with_spawn_error_at_once() {
    let mut w = manual("startretries=1\n");
    w.check(
        "boot startw(a) spawnfail(a) tick(a)@1 spawnfail(a)",
        expect![[r#"
            @0 boot
            @0 startw(a)
              = startw a:a: waiting
              a: spawn
            @0 spawnfail(a)
              INFO spawnerr: can't find command 'x'
              a: deadline @1
              reply startw a:a: SPAWN_ERROR: a
            @1 tick(a)
              a: spawn
            @1 spawnfail(a)
              INFO spawnerr: can't find command 'x'
              INFO gave up: a entered FATAL state, too many start retries too quickly
        "#]],
    );
}

#[test]
fn dying_within_startsecs_is_spawn_error_as_it_sets_spawnerr() {
    let mut w = manual("startsecs=5\nstartretries=0\n");
    w.check(
        "boot startw(a) spawned(a) exit(a,1)@1",
        expect![[r#"
            @0 boot
            @0 startw(a)
              = startw a:a: waiting
              a: spawn
            @0 spawned(a)
              INFO spawned: 'a' with pid 100
              a: deadline @5
            @1 exit(a,1)
              WARN exited: a (exit status 1; not expected)
              INFO gave up: a entered FATAL state, too many start retries too quickly
              a: no deadline
              reply startw a:a: SPAWN_ERROR: a
        "#]],
    );
}

#[test]
fn start_without_wait_gets_spawn_error_when_the_fork_fails() {
    let mut w = manual("startretries=0\n");
    w.check(
        "boot start(a) spawnfail(a)",
        expect![[r#"
        @0 boot
        @0 start(a)
          = start a:a: waiting
          a: spawn
        @0 spawnfail(a)
          INFO spawnerr: can't find command 'x'
          INFO gave up: a entered FATAL state, too many start retries too quickly
          reply start a:a: SPAWN_ERROR: a
    "#]],
    );
}

#[test]
fn stop_with_wait_is_answered_at_stopped_and_reported_meanwhile() {
    let mut w = manual("startsecs=0\n");
    w.run("boot start(a) spawned(a)");
    w.check(
        "stopw(a)@1 report@1 report@3 exit(a,0)@4 report@5",
        expect![[r#"
            @1 stopw(a)
              = stopw a:a: waiting
              a: kill 100 SIGTERM
              a: deadline @11
            @1 report
              INFO waiting for a to stop
            @3 report
              INFO waiting for a to stop
            @4 exit(a,0)
              INFO stopped: a (exit status 0)
              a: no deadline
              reply stopw a:a: ok
            @5 report
        "#]],
    );
}

#[test]
fn refusals_are_faults_at_once() {
    let mut w = manual("startsecs=0\n");
    w.check("boot stop(a) start(nope) start(a) spawned(a) start(a) startw(a)", expect![[r#"
        @0 boot
        @0 stop(a)
          = NOT_RUNNING: a
        @0 start(nope)
          = BAD_NAME: nope
        @0 start(a)
          = start a:a: waiting
          a: spawn
        @0 spawned(a)
          INFO spawned: 'a' with pid 100
          INFO success: a entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
          reply start a:a: ok
        @0 start(a)
          = ALREADY_STARTED: a
        @0 startw(a)
          = ALREADY_STARTED: a
    "#]]);
}

#[test]
fn idempotent_start_of_a_starting_process_waits_with_it() {
    let mut w = manual("startsecs=1\n");
    w.check("boot start(a) spawned(a) startnw(a) tick(a)@1 startnw(a)", expect![[r#"
        @0 boot
        @0 start(a)
          = start a:a: waiting
          a: spawn
        @0 spawned(a)
          INFO spawned: 'a' with pid 100
          a: deadline @1
          reply start a:a: ok
        @0 startnw(a)
          = startnw a:a: waiting
        @1 tick(a)
          INFO success: a entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
          reply startnw a:a: ok
        @1 startnw(a)
          = startnw a:a: ok
    "#]]);
}

#[test]
fn group_start_skips_running_members_and_a_single_fault_is_the_call_fault() {
    let mut w = World::new(&["[program:w]\ncommand=w\nautostart=false\nstartsecs=0\nnumprocs=2\n\
         process_name=w%(process_num)s\n"]);
    w.check("boot start(w:w0) spawned(w0) start(w:*) startw(w:w0)", expect![[r#"
        @0 boot
        @0 start(w:w0)
          = start w:w0: waiting
          w:w0: spawn
        @0 spawned(w0)
          INFO spawned: 'w0' with pid 100
          INFO success: w0 entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
          reply start w:w0: ok
        @0 start(w:*)
          = start w:w1: waiting
          w:w1: spawn
        @0 startw(w:w0)
          = ALREADY_STARTED: w:w0
    "#]]);
}

#[test]
fn stop_during_spawn_kills_once_the_fork_is_reported() {
    let mut w = manual("");
    w.check(
        "boot start(a) stopw(a) spawned(a) killed(a,15)",
        expect![[r#"
            @0 boot
            @0 start(a)
              = start a:a: waiting
              a: spawn
            @0 stopw(a)
              = stopw a:a: waiting
            @0 spawned(a)
              INFO spawned: 'a' with pid 100
              a: kill 100 SIGTERM
              a: deadline @10
              reply start a:a: ok
            @0 killed(a,15)
              WARN stopped: a (terminated by SIGTERM)
              a: no deadline
              reply stopw a:a: ok
        "#]],
    );
}

#[test]
fn a_waiting_start_ended_by_a_stop_is_abnormal_termination() {
    let mut w = manual("startsecs=5\n");
    w.check(
        "boot startw(a) spawned(a) stop(a)@1 killed(a,15)",
        expect![[r#"
        @0 boot
        @0 startw(a)
          = startw a:a: waiting
          a: spawn
        @0 spawned(a)
          INFO spawned: 'a' with pid 100
          a: deadline @5
        @1 stop(a)
          = stop a:a: ok
          a: kill 100 SIGTERM
          a: deadline @11
          reply startw a:a: ABNORMAL_TERMINATION: a
        @1 killed(a,15)
          WARN stopped: a (terminated by SIGTERM)
          a: no deadline
    "#]],
    );
}

#[test]
fn an_exit_within_startsecs_answers_spawn_error_though_it_retries() {
    let mut w = manual("startsecs=1\nstartretries=2\n");
    w.check("boot startw(a) spawned(a) exit(a,1) tick(a)@1 spawned(a) tick(a)@2", expect![[r#"
        @0 boot
        @0 startw(a)
          = startw a:a: waiting
          a: spawn
        @0 spawned(a)
          INFO spawned: 'a' with pid 100
          a: deadline @1
        @0 exit(a,1)
          WARN exited: a (exit status 1; not expected)
          reply startw a:a: SPAWN_ERROR: a
        @1 tick(a)
          a: spawn
        @1 spawned(a)
          INFO spawned: 'a' with pid 101
          a: deadline @2
        @2 tick(a)
          INFO success: a entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
    "#]]);
}

#[test]
fn an_answered_wait_leaves_nothing_parked() {
    let mut w = manual("startsecs=0\n");
    w.run("boot startw(a)");
    assert_eq!(w.orch.waiters.len(), 1);
    w.run("spawned(a)");
    // The process stays in the table; its answered waiters do not.
    assert!(w.orch.waiters.is_empty() && w.orch.waiters.capacity() == 0);
}
