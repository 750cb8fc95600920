//! The lifecycle inputs and policies: readiness gating RUNNING, the ready timeout as a
//! failed start, unhealthy restarts, failed dependencies, exponential backoff and the
//! restart budget.

use expect_test::expect;

use super::harness::{World, check};
use crate::procsup::{Description, ProcessState};

#[test]
fn running_waits_for_both_startsecs_and_ready() {
    // Ready before startsecs: RUNNING at startsecs.
    check(
        "startsecs=1 ready_timeout=10",
        "start@0 notready@0.5 ready@0.6 wait",
        expect![[r#"
            @0 start → STARTING
              STOPPED→STARTING tries:0
              spawn
            @0 spawned(100) → STARTING
              INFO spawned: 'web' with pid 100
              timer ready @10
              timer startsecs @1
            @0.5 not ready → STARTING
            @0.6 ready → STARTING
            @1 tick → RUNNING
              cancel ready
              STARTING→RUNNING pid:100
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        "#]],
    );
    // Ready after startsecs: RUNNING when ready.
    check(
        "startsecs=1 ready_timeout=10",
        "start@0 wait ready@3",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer ready @10
          timer startsecs @1
        @1 tick → STARTING
        @3 ready → RUNNING
          cancel ready
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
    "#]],
    );
}

#[test]
fn not_ready_shows_in_the_description() {
    let mut w = World::new("startsecs=0 ready_timeout=10");
    w.run("start@0 notready@0.5");
    assert_eq!(w.proc.state(), ProcessState::Starting);
    assert_eq!(
        w.proc.description(w.now),
        Description::Text("not ready: connection refused".into())
    );
}

#[test]
fn the_ready_timeout_stops_the_process_and_counts_a_failed_start() {
    check(
        "startsecs=0 ready_timeout=5 startretries=1 stopwaitsecs=2",
        "start@0 notready@1 wait wait killed(9)@7.1 wait wait wait killed(9)@20",
        expect![[r#"
            @0 start → STARTING
              STOPPED→STARTING tries:0
              spawn
            @0 spawned(100) → STARTING
              INFO spawned: 'web' with pid 100
              timer ready @5
            @1 not ready → STARTING
            @5 tick → STARTING
              WARN not ready: web did not pass its ready check within 5 seconds (connection refused)
              DEBG killing web (pid 100) with signal SIGTERM
              timer kill @7
              kill 100 SIGTERM
            @7 tick → STARTING
              WARN killing 'web' (100) with SIGKILL
              DEBG killing web (pid 100) with signal SIGKILL
              timer kill @9
              kill 100 SIGKILL
            @7.1 exit of pid 100 (terminated by SIGKILL) → BACKOFF
              cancel kill
              STARTING→BACKOFF tries:1
              resolve start: SPAWN_ERROR
              WARN exited: web (terminated by SIGKILL; not expected)
              timer backoff @8.1
            @8.1 tick → STARTING
              BACKOFF→STARTING tries:1
              spawn
            @8.1 spawned(101) → STARTING
              INFO spawned: 'web' with pid 101
              timer ready @13.1
            @13.1 tick → STARTING
              WARN not ready: web did not pass its ready check within 5 seconds
              DEBG killing web (pid 101) with signal SIGTERM
              timer kill @15.1
              kill 101 SIGTERM
            @15.1 tick → STARTING
              WARN killing 'web' (101) with SIGKILL
              DEBG killing web (pid 101) with signal SIGKILL
              timer kill @17.1
              kill 101 SIGKILL
            @20 exit of pid 101 (terminated by SIGKILL) → FATAL
              cancel kill
              STARTING→BACKOFF tries:2
              resolve start: SPAWN_ERROR
              WARN exited: web (terminated by SIGKILL; not expected)
              BACKOFF→FATAL
              resolve stop
              INFO gave up: web entered FATAL state, too many start retries too quickly
        "#]],
    );
}

#[test]
fn an_exit_before_ready_is_a_failed_start_even_after_startsecs() {
    check(
        "startsecs=1 ready_timeout=30",
        "start@0 exit(0)@5",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer ready @30
          timer startsecs @1
        @5 exit of pid 100 (exit status 0) → BACKOFF
          cancel startsecs
          cancel ready
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 0; not expected)
          timer backoff @6
    "#]],
    );
}

#[test]
fn an_unhealthy_process_is_restarted_whatever_autorestart_says() {
    check(
        "startsecs=0 autorestart=false",
        "start@0 unhealthy@10 killed(15)@10.5 stop@10.6",
        expect![[r#"
            @0 start → STARTING
              STOPPED→STARTING tries:0
              spawn
            @0 spawned(100) → RUNNING
              INFO spawned: 'web' with pid 100
              STARTING→RUNNING pid:100
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @10 unhealthy → STOPPING
              WARN unhealthy: web failed 3 health checks in a row (HTTP 503), restarting
              DEBG killing web (pid 100) with signal SIGTERM
              timer kill @20
              RUNNING→STOPPING pid:100
              kill 100 SIGTERM
            @10.5 exit of pid 100 (terminated by SIGTERM) → STARTING
              cancel kill
              STOPPING→EXITED expected:0 pid:100
              resolve stop
              WARN exited: web (terminated by SIGTERM; not expected)
              EXITED→STARTING tries:0
              spawn
            @10.5 spawned(101) → RUNNING
              INFO spawned: 'web' with pid 101
              STARTING→RUNNING pid:101
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @10.6 stop → STOPPING
              DEBG killing web (pid 101) with signal SIGTERM
              timer kill @20.6
              RUNNING→STOPPING pid:101
              kill 101 SIGTERM
        "#]],
    );
}

#[test]
fn a_failed_dependency_makes_a_process_fatal() {
    check(
        "",
        "depfail@0",
        expect![[r#"
        @0 dependency failed → FATAL
          STOPPED→FATAL
          WARN gave up: web entered FATAL state, dependency db is FATAL
    "#]],
    );
}

#[test]
fn exponential_backoff_doubles_to_the_cap_and_resets_after_a_long_run() {
    // Crash loop in RUNNING (startsecs=0): 1, 2, 4, 4 seconds.
    check(
        "startsecs=0 autorestart=true backoff_max=4",
        "start@0 exit(1)@0.1 wait exit(1)@1.2 wait exit(1)@3.3 wait exit(1)@7.4 wait \
         exit(1)@100 wait",
        expect![[r#"
            @0 start → STARTING
              STOPPED→STARTING tries:0
              spawn
            @0 spawned(100) → RUNNING
              INFO spawned: 'web' with pid 100
              STARTING→RUNNING pid:100
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @0.1 exit of pid 100 (exit status 1) → BACKOFF
              RUNNING→EXITED expected:0 pid:100
              WARN exited: web (exit status 1; not expected)
              INFO backoff: web restarts in 1 seconds (failure 1)
              EXITED→BACKOFF tries:0
              timer backoff @1.1
            @1.1 tick → STARTING
              BACKOFF→STARTING tries:0
              spawn
            @1.1 spawned(101) → RUNNING
              INFO spawned: 'web' with pid 101
              STARTING→RUNNING pid:101
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @1.2 exit of pid 101 (exit status 1) → BACKOFF
              RUNNING→EXITED expected:0 pid:101
              WARN exited: web (exit status 1; not expected)
              INFO backoff: web restarts in 2 seconds (failure 2)
              EXITED→BACKOFF tries:0
              timer backoff @3.2
            @3.2 tick → STARTING
              BACKOFF→STARTING tries:0
              spawn
            @3.2 spawned(102) → RUNNING
              INFO spawned: 'web' with pid 102
              STARTING→RUNNING pid:102
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @3.3 exit of pid 102 (exit status 1) → BACKOFF
              RUNNING→EXITED expected:0 pid:102
              WARN exited: web (exit status 1; not expected)
              INFO backoff: web restarts in 4 seconds (failure 3)
              EXITED→BACKOFF tries:0
              timer backoff @7.3
            @7.3 tick → STARTING
              BACKOFF→STARTING tries:0
              spawn
            @7.3 spawned(103) → RUNNING
              INFO spawned: 'web' with pid 103
              STARTING→RUNNING pid:103
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @7.4 exit of pid 103 (exit status 1) → BACKOFF
              RUNNING→EXITED expected:0 pid:103
              WARN exited: web (exit status 1; not expected)
              INFO backoff: web restarts in 4 seconds (failure 4)
              EXITED→BACKOFF tries:0
              timer backoff @11.4
            @11.4 tick → STARTING
              BACKOFF→STARTING tries:0
              spawn
            @11.4 spawned(104) → RUNNING
              INFO spawned: 'web' with pid 104
              STARTING→RUNNING pid:104
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @100 exit of pid 104 (exit status 1) → BACKOFF
              RUNNING→EXITED expected:0 pid:104
              WARN exited: web (exit status 1; not expected)
              INFO backoff: web restarts in 1 seconds (failure 1)
              EXITED→BACKOFF tries:0
              timer backoff @101
            @101 tick → STARTING
              BACKOFF→STARTING tries:0
              spawn
            @101 spawned(105) → RUNNING
              INFO spawned: 'web' with pid 105
              STARTING→RUNNING pid:105
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
        "#]],
    );
}

#[test]
fn exponential_backoff_for_failed_starts_keeps_startretries() {
    check(
        "startsecs=10 startretries=2 backoff_max=60 backoff_initial=2",
        "start@0 exit(1)@1 wait exit(1)@4 wait exit(1)@9",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @10
        @1 exit of pid 100 (exit status 1) → BACKOFF
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          INFO backoff: web restarts in 2 seconds (failure 1)
          timer backoff @3
        @3 tick → STARTING
          BACKOFF→STARTING tries:1
          spawn
        @3 spawned(101) → STARTING
          INFO spawned: 'web' with pid 101
          timer startsecs @13
        @4 exit of pid 101 (exit status 1) → BACKOFF
          cancel startsecs
          STARTING→BACKOFF tries:2
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          INFO backoff: web restarts in 4 seconds (failure 2)
          timer backoff @8
        @8 tick → STARTING
          BACKOFF→STARTING tries:2
          spawn
        @8 spawned(102) → STARTING
          INFO spawned: 'web' with pid 102
          timer startsecs @18
        @9 exit of pid 102 (exit status 1) → FATAL
          cancel startsecs
          STARTING→BACKOFF tries:3
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          BACKOFF→FATAL
          resolve stop
          INFO gave up: web entered FATAL state, too many start retries too quickly
    "#]],
    );
}

#[test]
fn the_restart_limit_gives_up_on_the_restart_beyond_it() {
    check(
        "startsecs=0 autorestart=true limit=2/60",
        "start@0 exit(1)@1 exit(1)@2 exit(1)@3 start@4 exit(1)@5",
        expect![[r#"
            @0 start → STARTING
              STOPPED→STARTING tries:0
              spawn
            @0 spawned(100) → RUNNING
              INFO spawned: 'web' with pid 100
              STARTING→RUNNING pid:100
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @1 exit of pid 100 (exit status 1) → STARTING
              RUNNING→EXITED expected:0 pid:100
              WARN exited: web (exit status 1; not expected)
              EXITED→STARTING tries:0
              spawn
            @1 spawned(101) → RUNNING
              INFO spawned: 'web' with pid 101
              STARTING→RUNNING pid:101
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @2 exit of pid 101 (exit status 1) → STARTING
              RUNNING→EXITED expected:0 pid:101
              WARN exited: web (exit status 1; not expected)
              EXITED→STARTING tries:0
              spawn
            @2 spawned(102) → RUNNING
              INFO spawned: 'web' with pid 102
              STARTING→RUNNING pid:102
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @3 exit of pid 102 (exit status 1) → FATAL
              RUNNING→EXITED expected:0 pid:102
              WARN exited: web (exit status 1; not expected)
              EXITED→FATAL
              INFO gave up: web entered FATAL state, more than 2 restarts within 60 seconds
            @4 start → STARTING
              FATAL→STARTING tries:0
              spawn
            @4 spawned(103) → RUNNING
              INFO spawned: 'web' with pid 103
              STARTING→RUNNING pid:103
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @5 exit of pid 103 (exit status 1) → STARTING
              RUNNING→EXITED expected:0 pid:103
              WARN exited: web (exit status 1; not expected)
              EXITED→STARTING tries:0
              spawn
            @5 spawned(104) → RUNNING
              INFO spawned: 'web' with pid 104
              STARTING→RUNNING pid:104
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
        "#]],
    );
}

#[test]
fn an_explicit_start_resets_the_streak_and_the_budget() {
    let mut w = World::new("startsecs=0 autorestart=true backoff_max=8 limit=5/60");
    w.run("start@0 exit(1)@1 wait exit(1)@3 stop@3.5");
    assert_eq!(w.proc.restarts(), 2);
    assert_eq!(w.proc.failures(), 0, "a stop starts the count over");
    w.run("start@4 exit(1)@5");
    assert_eq!(w.proc.failures(), 1);
    assert_eq!(w.proc.next_restart().map(|t| t - w.t0), Some(std::time::Duration::from_secs(6)));
}
