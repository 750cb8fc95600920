//! One behaviour per test, as a transcript of inputs and actions.

use expect_test::expect;

use super::harness::{World, check};
use crate::procsup::{Refusal, StartOutcome};

// ---- starting ------------------------------------------------------------------------

#[test]
fn start_then_running_after_startsecs() {
    check(
        "startsecs=1",
        "start@0 wait",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
    "#]],
    );
}

#[test]
fn startsecs_zero_is_running_as_soon_as_spawned() {
    check(
        "startsecs=0",
        "start@0",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → RUNNING
          INFO spawned: 'web' with pid 100
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
    "#]],
    );
}

#[test]
fn still_alive_at_exactly_startsecs_is_running() {
    check(
        "startsecs=2",
        "start@0 tick@1.999 tick@2",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @2
        @1.999 tick → STARTING
        @2 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 2 seconds (startsecs)
    "#]],
    );
}

#[test]
fn late_spawn_report_past_startsecs_is_running_at_once() {
    check(
        "startsecs=1",
        "spawns=manual start@0 spawned@1.5",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @1.5 spawned(100) → RUNNING
          INFO spawned: 'web' with pid 100
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
    "#]],
    );
}

// ---- exits, startsecs and backoff ----------------------------------------------------

#[test]
fn exit_before_startsecs_backs_off_then_retries() {
    check(
        "startsecs=1",
        "start@0 exit(1)@0.5 wait",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.5 exit of pid 100 (exit status 1) → BACKOFF
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          timer backoff @1.5
        @1.5 tick → STARTING
          BACKOFF→STARTING tries:1
          spawn
        @1.5 spawned(101) → STARTING
          INFO spawned: 'web' with pid 101
          timer startsecs @2.5
    "#]],
    );
}

#[test]
fn exit_at_exactly_startsecs_has_stayed_up() {
    check(
        "startsecs=1 autorestart=false",
        "start@0 exit(1)@1",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 exit of pid 100 (exit status 1) → EXITED
          cancel startsecs
          STARTING→RUNNING pid:100
          resolve start: running
          RUNNING→EXITED expected:0 pid:100
          WARN exited: web (exit status 1; not expected)
    "#]],
    );
}

#[test]
fn too_quick_exit_is_not_expected_even_with_an_expected_code() {
    check(
        "startsecs=5 exitcodes=0",
        "start@0 exit(0)@1",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @5
        @1 exit of pid 100 (exit status 0) → BACKOFF
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 0; not expected)
          timer backoff @2
    "#]],
    );
}

#[test]
fn linear_backoff_then_fatal_after_startretries_plus_one_attempts() {
    check(
        "startsecs=1 startretries=2",
        "start@0 exit(1)@0 wait exit(1) wait exit(1)",
        expect![[r#"
            @0 start → STARTING
              STOPPED→STARTING tries:0
              spawn
            @0 spawned(100) → STARTING
              INFO spawned: 'web' with pid 100
              timer startsecs @1
            @0 exit of pid 100 (exit status 1) → BACKOFF
              cancel startsecs
              STARTING→BACKOFF tries:1
              resolve start: SPAWN_ERROR
              WARN exited: web (exit status 1; not expected)
              timer backoff @1
            @1 tick → STARTING
              BACKOFF→STARTING tries:1
              spawn
            @1 spawned(101) → STARTING
              INFO spawned: 'web' with pid 101
              timer startsecs @2
            @1 exit of pid 101 (exit status 1) → BACKOFF
              cancel startsecs
              STARTING→BACKOFF tries:2
              resolve start: SPAWN_ERROR
              WARN exited: web (exit status 1; not expected)
              timer backoff @3
            @3 tick → STARTING
              BACKOFF→STARTING tries:2
              spawn
            @3 spawned(102) → STARTING
              INFO spawned: 'web' with pid 102
              timer startsecs @4
            @3 exit of pid 102 (exit status 1) → FATAL
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
fn startretries_zero_is_one_attempt() {
    check(
        "startretries=0",
        "start@0 exit(1)@0.1",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.1 exit of pid 100 (exit status 1) → FATAL
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          BACKOFF→FATAL
          resolve stop
          INFO gave up: web entered FATAL state, too many start retries too quickly
    "#]],
    );
}

#[test]
fn spawn_failure_is_backoff_with_spawnerr_and_counts_as_retry() {
    check(
        "startretries=1",
        "spawns=fail start@0 wait",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawn failure → BACKOFF
          INFO spawnerr: can't find command 'x'
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          timer backoff @1
        @1 tick → STARTING
          BACKOFF→STARTING tries:1
          spawn
        @1 spawn failure → FATAL
          INFO spawnerr: can't find command 'x'
          STARTING→BACKOFF tries:2
          resolve start: SPAWN_ERROR
          BACKOFF→FATAL
          resolve stop
          INFO gave up: web entered FATAL state, too many start retries too quickly
    "#]],
    );
}

#[test]
fn expected_exit_from_running_stays_exited() {
    check(
        "autorestart=unexpected",
        "start@0 wait exit(0)@5",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @5 exit of pid 100 (exit status 0) → EXITED
          RUNNING→EXITED expected:1 pid:100
          INFO exited: web (exit status 0; expected)
    "#]],
    );
}

#[test]
fn unexpected_exit_from_running_restarts_with_tries_zero() {
    check(
        "autorestart=unexpected",
        "start@0 wait killed(9)@5",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @5 exit of pid 100 (terminated by SIGKILL) → STARTING
          RUNNING→EXITED expected:0 pid:100
          WARN exited: web (terminated by SIGKILL; not expected)
          EXITED→STARTING tries:0
          spawn
        @5 spawned(101) → STARTING
          INFO spawned: 'web' with pid 101
          timer startsecs @6
    "#]],
    );
}

#[test]
fn core_dump_is_in_the_exit_line() {
    check(
        "autorestart=false",
        "start@0 wait core(11)@5",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @5 exit of pid 100 (terminated by SIGSEGV (core dumped)) → EXITED
          RUNNING→EXITED expected:0 pid:100
          WARN exited: web (terminated by SIGSEGV (core dumped); not expected)
    "#]],
    );
}

#[test]
fn startsecs_zero_never_backs_off_and_restarts_at_most_once_a_second() {
    check(
        "startsecs=0 autorestart=unexpected",
        "start@0 exit(5)@0 tick@1 exit(5)@2.5",
        expect![[r#"
            @0 start → STARTING
              STOPPED→STARTING tries:0
              spawn
            @0 spawned(100) → RUNNING
              INFO spawned: 'web' with pid 100
              STARTING→RUNNING pid:100
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @0 exit of pid 100 (exit status 5) → EXITED
              RUNNING→EXITED expected:0 pid:100
              WARN exited: web (exit status 5; not expected)
              timer restart @1
            @1 tick → STARTING
              EXITED→STARTING tries:0
              spawn
            @1 spawned(101) → RUNNING
              INFO spawned: 'web' with pid 101
              STARTING→RUNNING pid:101
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @2.5 exit of pid 101 (exit status 5) → STARTING
              RUNNING→EXITED expected:0 pid:101
              WARN exited: web (exit status 5; not expected)
              EXITED→STARTING tries:0
              spawn
            @2.5 spawned(102) → RUNNING
              INFO spawned: 'web' with pid 102
              STARTING→RUNNING pid:102
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
        "#]],
    );
}

#[test]
fn running_resets_backoff_counter() {
    check(
        "startsecs=1",
        "start@0 exit(1)@0.5 wait wait exit(1)@10",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.5 exit of pid 100 (exit status 1) → BACKOFF
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          timer backoff @1.5
        @1.5 tick → STARTING
          BACKOFF→STARTING tries:1
          spawn
        @1.5 spawned(101) → STARTING
          INFO spawned: 'web' with pid 101
          timer startsecs @2.5
        @2.5 tick → RUNNING
          STARTING→RUNNING pid:101
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @10 exit of pid 101 (exit status 1) → STARTING
          RUNNING→EXITED expected:0 pid:101
          WARN exited: web (exit status 1; not expected)
          EXITED→STARTING tries:0
          spawn
        @10 spawned(102) → STARTING
          INFO spawned: 'web' with pid 102
          timer startsecs @11
    "#]],
    );
}

// ---- stopping ------------------------------------------------------------------------

#[test]
fn stop_running_signals_and_stopped_on_exit() {
    check(
        "stopwaitsecs=10",
        "start@0 wait stop@5 killed(15)@5.2",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @5 stop → STOPPING
          DEBG killing web (pid 100) with signal SIGTERM
          timer kill @15
          RUNNING→STOPPING pid:100
          kill 100 SIGTERM
        @5.2 exit of pid 100 (terminated by SIGTERM) → STOPPED
          cancel kill
          STOPPING→STOPPED pid:100
          resolve stop
          WARN stopped: web (terminated by SIGTERM)
    "#]],
    );
}

#[test]
fn stop_with_expected_exit_logs_info() {
    check(
        "exitcodes=0",
        "start@0 wait stop@5 exit(0)@5.2",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @5 stop → STOPPING
          DEBG killing web (pid 100) with signal SIGTERM
          timer kill @15
          RUNNING→STOPPING pid:100
          kill 100 SIGTERM
        @5.2 exit of pid 100 (exit status 0) → STOPPED
          cancel kill
          STOPPING→STOPPED pid:100
          resolve stop
          INFO stopped: web (exit status 0)
    "#]],
    );
}

#[test]
fn sigkill_after_stopwaitsecs_to_the_group() {
    check(
        "stopwaitsecs=3 stopasgroup killasgroup stopsignal=2",
        "start@0 wait stop@5 wait wait killed(9)@11.5",
        expect![[r#"
            @0 start → STARTING
              STOPPED→STARTING tries:0
              spawn
            @0 spawned(100) → STARTING
              INFO spawned: 'web' with pid 100
              timer startsecs @1
            @1 tick → RUNNING
              STARTING→RUNNING pid:100
              resolve start: running
              INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
            @5 stop → STOPPING
              DEBG killing web (pid 100) process group with signal SIGINT
              timer kill @8
              RUNNING→STOPPING pid:100
              kill -100 SIGINT
            @8 tick → STOPPING
              WARN killing 'web' (100) with SIGKILL
              DEBG killing web (pid 100) process group with signal SIGKILL
              timer kill @11
              kill -100 SIGKILL
            @11 tick → STOPPING
              WARN killing 'web' (100) with SIGKILL
              DEBG killing web (pid 100) process group with signal SIGKILL
              timer kill @14
              kill -100 SIGKILL
            @11.5 exit of pid 100 (terminated by SIGKILL) → STOPPED
              cancel kill
              STOPPING→STOPPED pid:100
              resolve stop
              WARN stopped: web (terminated by SIGKILL)
        "#]],
    );
}

#[test]
fn sigkill_only_to_the_pid_without_killasgroup() {
    check(
        "stopwaitsecs=3",
        "start@0 wait stop@5 wait killed(9)",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @5 stop → STOPPING
          DEBG killing web (pid 100) with signal SIGTERM
          timer kill @8
          RUNNING→STOPPING pid:100
          kill 100 SIGTERM
        @8 tick → STOPPING
          WARN killing 'web' (100) with SIGKILL
          DEBG killing web (pid 100) with signal SIGKILL
          timer kill @11
          kill 100 SIGKILL
        @8 exit of pid 100 (terminated by SIGKILL) → STOPPED
          cancel kill
          STOPPING→STOPPED pid:100
          resolve stop
          WARN stopped: web (terminated by SIGKILL)
    "#]],
    );
}

#[test]
fn stopwaitsecs_zero_repeats_sigkill_once_a_second() {
    check(
        "stopwaitsecs=0",
        "start@0 wait stop@5 wait wait",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @5 stop → STOPPING
          DEBG killing web (pid 100) with signal SIGTERM
          timer kill @5
          RUNNING→STOPPING pid:100
          kill 100 SIGTERM
        @5 tick → STOPPING
          WARN killing 'web' (100) with SIGKILL
          DEBG killing web (pid 100) with signal SIGKILL
          timer kill @6
          kill 100 SIGKILL
        @6 tick → STOPPING
          WARN killing 'web' (100) with SIGKILL
          DEBG killing web (pid 100) with signal SIGKILL
          timer kill @7
          kill 100 SIGKILL
    "#]],
    );
}

#[test]
fn stop_in_starting_kills_it_and_fails_the_start_waiter() {
    check(
        "startsecs=5",
        "start@0 stop@1 killed(15)@1.1",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @5
        @1 stop → STOPPING
          DEBG killing web (pid 100) with signal SIGTERM
          cancel startsecs
          timer kill @11
          STARTING→STOPPING pid:100
          resolve start: ABNORMAL_TERMINATION
          kill 100 SIGTERM
        @1.1 exit of pid 100 (terminated by SIGTERM) → STOPPED
          cancel kill
          STOPPING→STOPPED pid:100
          resolve stop
          WARN stopped: web (terminated by SIGTERM)
    "#]],
    );
}

#[test]
fn stop_during_backoff_is_stopped_without_a_signal() {
    check(
        "startsecs=1",
        "start@0 exit(1)@0.5 stop@0.7 wait",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.5 exit of pid 100 (exit status 1) → BACKOFF
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          timer backoff @1.5
        @0.7 stop → STOPPED
          DEBG Attempted to kill web, which is in BACKOFF state.
          cancel backoff
          BACKOFF→STOPPED pid:0
          resolve stop
        @0.7 wait: no deadline
    "#]],
    );
}

#[test]
fn second_stop_while_stopping_sends_nothing() {
    check(
        "",
        "start@0 wait stop@5 stop@6",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @5 stop → STOPPING
          DEBG killing web (pid 100) with signal SIGTERM
          timer kill @15
          RUNNING→STOPPING pid:100
          kill 100 SIGTERM
        @6 stop → STOPPING
    "#]],
    );
}

#[test]
fn stop_in_stopped_states_is_a_no_op() {
    let mut w = World::new("startretries=0 autorestart=false");
    let t = w.run("stop@0 start@1 wait exit(0)@3 stop start@4 exit(1)@4.1 stop");
    expect![[r#"
        @0 stop → STOPPED
        @1 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @1 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @2
        @2 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @3 exit of pid 100 (exit status 0) → EXITED
          RUNNING→EXITED expected:1 pid:100
          INFO exited: web (exit status 0; expected)
        @3 stop → EXITED
        @4 start → STARTING
          EXITED→STARTING tries:0
          spawn
        @4 spawned(101) → STARTING
          INFO spawned: 'web' with pid 101
          timer startsecs @5
        @4.1 exit of pid 101 (exit status 1) → FATAL
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          BACKOFF→FATAL
          resolve stop
          INFO gave up: web entered FATAL state, too many start retries too quickly
        @4.1 stop → FATAL
    "#]].assert_eq(t);
    assert_eq!(w.proc.check_stop(), Err(Refusal::NotRunning));
}

#[test]
fn stop_before_spawn_report_is_carried_out_on_spawned() {
    check(
        "",
        "spawns=manual start@0 stop@0 spawned@0.1 killed(15)@0.2",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 stop → STARTING
        @0.1 spawned(100) → STOPPING
          INFO spawned: 'web' with pid 100
          DEBG killing web (pid 100) with signal SIGTERM
          timer kill @10.1
          STARTING→STOPPING pid:100
          resolve start: ABNORMAL_TERMINATION
          kill 100 SIGTERM
        @0.2 exit of pid 100 (terminated by SIGTERM) → STOPPED
          cancel kill
          STOPPING→STOPPED pid:100
          resolve stop
          WARN stopped: web (terminated by SIGTERM)
    "#]],
    );
}

#[test]
fn stop_before_spawn_failure_is_stopped() {
    check(
        "",
        "spawns=manual start@0 stop@0 spawnfail@0.1",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 stop → STARTING
        @0.1 spawn failure → STOPPED
          INFO spawnerr: can't find command 'x'
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          DEBG Attempted to kill web, which is in BACKOFF state.
          BACKOFF→STOPPED pid:0
          resolve stop
    "#]],
    );
}

#[test]
fn shutdown_gives_up_a_backoff_process_silently() {
    check(
        "",
        "start@0 exit(1)@0.2 shutdown@0.5 wait",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.2 exit of pid 100 (exit status 1) → BACKOFF
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          timer backoff @1.2
        @0.5 shutdown → FATAL
          cancel backoff
          BACKOFF→FATAL
          resolve stop
        @0.5 wait: no deadline
    "#]],
    );
}

#[test]
fn shutdown_stops_a_running_process() {
    check(
        "",
        "start@0 wait shutdown@2 killed(15)@2.1",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @2 shutdown → STOPPING
          DEBG killing web (pid 100) with signal SIGTERM
          timer kill @12
          RUNNING→STOPPING pid:100
          kill 100 SIGTERM
        @2.1 exit of pid 100 (terminated by SIGTERM) → STOPPED
          cancel kill
          STOPPING→STOPPED pid:100
          resolve stop
          WARN stopped: web (terminated by SIGTERM)
    "#]],
    );
}

// ---- explicit starts -----------------------------------------------------------------

#[test]
fn start_after_fatal_spawns_with_tries_zero() {
    check(
        "startretries=0",
        "start@0 exit(1)@0.1 start@5",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.1 exit of pid 100 (exit status 1) → FATAL
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          BACKOFF→FATAL
          resolve stop
          INFO gave up: web entered FATAL state, too many start retries too quickly
        @5 start → STARTING
          FATAL→STARTING tries:0
          spawn
        @5 spawned(101) → STARTING
          INFO spawned: 'web' with pid 101
          timer startsecs @6
    "#]],
    );
}

#[test]
fn start_in_backoff_spawns_now_and_resets_the_counter() {
    check(
        "startretries=3",
        "start@0 exit(1)@0.1 start@0.5",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.1 exit of pid 100 (exit status 1) → BACKOFF
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          timer backoff @1.1
        @0.5 start → STARTING
          cancel backoff
          BACKOFF→STARTING tries:0
          spawn
        @0.5 spawned(101) → STARTING
          INFO spawned: 'web' with pid 101
          timer startsecs @1.5
    "#]],
    );
}

#[test]
fn start_while_stopping_warns_already_running() {
    check(
        "",
        "start@0 wait stop@2 start@2.5",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @2 stop → STOPPING
          DEBG killing web (pid 100) with signal SIGTERM
          timer kill @12
          RUNNING→STOPPING pid:100
          kill 100 SIGTERM
        @2.5 start → STOPPING
          WARN process 'web' already running
    "#]],
    );
}

#[test]
fn start_while_starting_or_running_is_silent_and_refused_by_check() {
    let mut w = World::new("");
    let t = w.run("start@0 start@0.5 wait start@2");
    expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.5 start → STARTING
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @2 start → RUNNING
    "#]].assert_eq(t);
    assert_eq!(w.proc.check_start(), Err(Refusal::AlreadyStarted));
}

// ---- waiters -------------------------------------------------------------------------

#[test]
fn start_wait_results_follow_onwait() {
    let mut w = World::new("startsecs=1");
    w.run("start@0");
    assert_eq!(w.proc.start_wait_result(), None);
    w.run("wait");
    assert_eq!(w.proc.start_wait_result(), Some(StartOutcome::Running));

    let mut w = World::new("startsecs=1");
    w.run("start@0 exit(1)@0.5");
    assert_eq!(w.proc.start_wait_result(), Some(StartOutcome::SpawnError));

    let mut w = World::new("startsecs=0 autorestart=false");
    w.run("start@0 exit(0)@0");
    assert_eq!(w.proc.start_wait_result(), Some(StartOutcome::AbnormalTermination));
    assert!(w.proc.stop_wait_done());
}

// ---- stale and illegal inputs --------------------------------------------------------

#[test]
fn stale_tick_and_stale_exit_are_no_ops() {
    check(
        "",
        "start@0 tick@0.5 stale-exit@0.6 wait tick@3",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.5 tick → STARTING
        @0.6 exit of pid 999 (exit status 0) → STARTING
          DEBG ignored exit of pid 999 (exit status 0) for web in state STARTING
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @3 tick → RUNNING
    "#]],
    );
}

#[test]
fn unexpected_spawn_report_is_ignored() {
    check(
        "",
        "start@0 spawned(55)@0.1",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.1 spawned(55) → STARTING
          DEBG ignored spawned(55) for web in state STARTING
    "#]],
    );
}

// ---- signals and UNKNOWN -------------------------------------------------------------

#[test]
fn signal_request_goes_to_the_pid_only_and_keeps_the_state() {
    check(
        "stopasgroup killasgroup",
        "start@0 wait sig(1)@2 stop@3 sig(10)@3",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @2 signal(1) → RUNNING
          DEBG sending web (pid 100) sig SIGHUP
          kill 100 SIGHUP
        @3 stop → STOPPING
          DEBG killing web (pid 100) process group with signal SIGTERM
          timer kill @13
          RUNNING→STOPPING pid:100
          kill -100 SIGTERM
        @3 signal(10) → STOPPING
          DEBG sending web (pid 100) sig SIGUSR1
          kill 100 SIGUSR1
    "#]],
    );
}

#[test]
fn signal_request_without_a_child_is_ignored() {
    let mut w = World::new("");
    expect![[r#"
        @0 signal(1) → STOPPED
          DEBG ignored signal(1) for web in state STOPPED
    "#]]
    .assert_eq(w.run("sig(1)@0"));
    assert_eq!(w.proc.check_signal(), Err(Refusal::NotRunning));
}

#[test]
fn kill_failure_makes_the_process_unknown() {
    let mut w = World::new("");
    let t = w.run("start@0 wait stop@2 killfail@2 start@3 killed(9)@4");
    expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @2 stop → STOPPING
          DEBG killing web (pid 100) with signal SIGTERM
          timer kill @12
          RUNNING→STOPPING pid:100
          kill 100 SIGTERM
        @2 kill failure → UNKNOWN
          CRIT unknown problem killing web (100):EPERM
          cancel kill
          STOPPING→UNKNOWN
          resolve stop
        @3 start → UNKNOWN
          DEBG ignored start for web in state UNKNOWN
        @4 exit of pid 100 (terminated by SIGKILL) → UNKNOWN
          WARN exited: web (terminated by SIGKILL; not expected)
    "#]].assert_eq(t);
    assert_eq!(w.proc.check_start(), Err(Refusal::UnknownState));
}

#[test]
fn signal_failure_makes_the_process_unknown() {
    check(
        "",
        "start@0 wait sig(1)@2 sigfail@2",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @2 signal(1) → RUNNING
          DEBG sending web (pid 100) sig SIGHUP
          kill 100 SIGHUP
        @2 signal failure → UNKNOWN
          CRIT unknown problem sending sig web (100):EPERM
          RUNNING→UNKNOWN
    "#]],
    );
}

// ---- autorecovery gate ---------------------------------------------------------------

#[test]
fn gate_off_exit_stays_exited_until_gate_on() {
    check(
        "autorestart=true",
        "start@0 wait gate-off@3 exit(0)@4 wait gate-on@9",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @3 gate off
        @4 exit of pid 100 (exit status 0) → EXITED
          RUNNING→EXITED expected:1 pid:100
          INFO exited: web (exit status 0; expected)
        @4 wait: no deadline
        @9 autorecovery on → STARTING
          EXITED→STARTING tries:0
          spawn
        @9 spawned(101) → STARTING
          INFO spawned: 'web' with pid 101
          timer startsecs @10
    "#]],
    );
}

#[test]
fn gate_off_backoff_waits_past_its_delay_then_resumes_on_gate_on() {
    check(
        "",
        "start@0 gate-off exit(1)@0.5 wait gate-on@7",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0 gate off
        @0.5 exit of pid 100 (exit status 1) → BACKOFF
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          timer backoff @1.5
        @1.5 tick → BACKOFF
        @7 autorecovery on → STARTING
          BACKOFF→STARTING tries:1
          spawn
        @7 spawned(101) → STARTING
          INFO spawned: 'web' with pid 101
          timer startsecs @8
    "#]],
    );
}

#[test]
fn gate_on_before_backoff_delay_keeps_waiting() {
    check(
        "",
        "start@0 gate-off exit(1)@0.5 gate-on@1 wait",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0 gate off
        @0.5 exit of pid 100 (exit status 1) → BACKOFF
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          timer backoff @1.5
        @1 autorecovery on → BACKOFF
        @1.5 tick → STARTING
          BACKOFF→STARTING tries:1
          spawn
        @1.5 spawned(101) → STARTING
          INFO spawned: 'web' with pid 101
          timer startsecs @2.5
    "#]],
    );
}

#[test]
fn gate_off_still_gives_up_when_retries_are_exhausted() {
    check(
        "startretries=0",
        "gate-off@0 start@0 exit(1)@0.5",
        expect![[r#"
        @0 gate off
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @0.5 exit of pid 100 (exit status 1) → FATAL
          cancel startsecs
          STARTING→BACKOFF tries:1
          resolve start: SPAWN_ERROR
          WARN exited: web (exit status 1; not expected)
          BACKOFF→FATAL
          resolve stop
          INFO gave up: web entered FATAL state, too many start retries too quickly
    "#]],
    );
}

#[test]
fn gate_off_explicit_start_still_works() {
    check(
        "autorestart=false",
        "gate-off@0 start@0 wait",
        expect![[r#"
        @0 gate off
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
    "#]],
    );
}

#[test]
fn gate_on_does_not_restart_what_policy_would_not() {
    check(
        "autorestart=unexpected",
        "start@0 wait gate-off@2 exit(0)@3 gate-on@4",
        expect![[r#"
        @0 start → STARTING
          STOPPED→STARTING tries:0
          spawn
        @0 spawned(100) → STARTING
          INFO spawned: 'web' with pid 100
          timer startsecs @1
        @1 tick → RUNNING
          STARTING→RUNNING pid:100
          resolve start: running
          INFO success: web entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @2 gate off
        @3 exit of pid 100 (exit status 0) → EXITED
          RUNNING→EXITED expected:1 pid:100
          INFO exited: web (exit status 0; expected)
        @4 autorecovery on → EXITED
    "#]],
    );
}

// ---- descriptions --------------------------------------------------------------------

#[test]
fn descriptions_follow_get_process_info() {
    use std::time::Duration;
    let mut w = World::new("startretries=0");
    let desc = |w: &World| {
        w.proc.description(w.now).render(|at| match at {
            Some(t) => format!("stopped at {}", w.secs(t)),
            None => "epoch".into(),
        })
    };
    let mut seen = vec![desc(&w)];
    w.run("start@0");
    seen.push(desc(&w));
    w.run("wait");
    w.now += Duration::from_secs(3723);
    seen.push(desc(&w));
    w.run("stop killed(15)");
    seen.push(desc(&w));
    w.run("start@4000 exit(1)@4000.5");
    seen.push(desc(&w));
    w.run("spawns=fail start@4001");
    seen.push(desc(&w));
    expect![[r#"
        Not started

        pid 100, uptime 1:02:04
        stopped at 3724
        Exited too quickly (process log may have details)
        can't find command 'x'"#]]
    .assert_eq(&seen.join("\n"));
}

#[test]
fn uptime_formats_like_python_timedelta() {
    use crate::procsup::Description;
    use std::time::Duration;
    let uptime = |secs: u64| {
        let d = Description::Running { pid: 7, uptime: Duration::from_secs(secs) };
        d.render(|_| String::new()).replacen("pid 7, uptime ", "", 1)
    };
    let got: Vec<String> = [0, 62, 3723, 86_399, 86_400, 2 * 86_400 + 5].map(uptime).to_vec();
    assert_eq!(
        got.join(" | "),
        "0:00:00 | 0:01:02 | 1:02:03 | 23:59:59 | 1 day, 0:00:00 | 2 days, 0:00:05"
    );
}
