//! Boot: autostart processes are started one priority class at a time.

use expect_test::expect;

use super::harness::World;

#[test]
fn a_single_program_starts_and_becomes_running_after_startsecs() {
    let mut w = World::new(&["[program:a]\ncommand=/bin/true\n"]);
    w.check("boot spawned(a) tick(a)@1 states", expect![[r#"
        @0 boot
          a: spawn
        @0 spawned(a)
          INFO spawned: 'a' with pid 100
          a: deadline @1
        @1 tick(a)
          INFO success: a entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
        @1 states
          = a:a RUNNING
    "#]]);
}

#[test]
fn classes_start_in_priority_order_each_after_the_last_is_forked() {
    // b and c share priority 10 (one class, forked together); a (5) goes first, d (20) last.
    let mut w = World::new(&["[program:d]\ncommand=d\npriority=20\n\
         [program:c]\ncommand=c\npriority=10\n\
         [program:b]\ncommand=b\npriority=10\n\
         [program:a]\ncommand=a\npriority=5\n"]);
    w.check(
        "boot spawned(a) spawned(b) spawned(c) spawned(d)",
        expect![[r#"
            @0 boot
              a: spawn
            @0 spawned(a)
              INFO spawned: 'a' with pid 100
              a: deadline @1
              b: spawn
              c: spawn
            @0 spawned(b)
              INFO spawned: 'b' with pid 101
              b: deadline @1
            @0 spawned(c)
              INFO spawned: 'c' with pid 102
              c: deadline @1
              d: spawn
            @0 spawned(d)
              INFO spawned: 'd' with pid 103
              d: deadline @1
        "#]],
    );
}

#[test]
fn a_failed_spawn_also_answers_its_class() {
    let mut w = World::new(&["[program:a]\ncommand=a\npriority=1\nstartretries=0\n\
         [program:b]\ncommand=b\npriority=2\n"]);
    w.check(
        "boot spawnfail(a) states",
        expect![[r#"
            @0 boot
              a: spawn
            @0 spawnfail(a)
              INFO spawnerr: can't find command 'x'
              INFO gave up: a entered FATAL state, too many start retries too quickly
              b: spawn
            @0 states
              = a:a FATAL, b:b STARTING
        "#]],
    );
}

#[test]
fn autostart_false_is_left_stopped_and_does_not_hold_up_the_queue() {
    let mut w = World::new(&["[program:a]\ncommand=a\npriority=1\nautostart=false\n\
         [program:b]\ncommand=b\npriority=2\n"]);
    w.check(
        "boot states",
        expect![[r#"
        @0 boot
          b: spawn
        @0 states
          = a:a STOPPED, b:b STARTING
    "#]],
    );
}

#[test]
fn numprocs_instances_are_one_class() {
    let mut w = World::new(&[
        "[program:w]\ncommand=w\nnumprocs=3\nprocess_name=%(program_name)s_%(process_num)s\n\
         [program:z]\ncommand=z\npriority=1000\n",
    ]);
    w.check(
        "boot spawned(w_0) spawned(w_2) spawned(w_1)",
        expect![[r#"
            @0 boot
              w:w_0: spawn
              w:w_1: spawn
              w:w_2: spawn
            @0 spawned(w_0)
              INFO spawned: 'w_0' with pid 100
              w:w_0: deadline @1
            @0 spawned(w_2)
              INFO spawned: 'w_2' with pid 101
              w:w_2: deadline @1
            @0 spawned(w_1)
              INFO spawned: 'w_1' with pid 102
              w:w_1: deadline @1
              z: spawn
        "#]],
    );
}

#[test]
fn process_priorities_split_a_group_into_classes() {
    let mut w = World::new(&["[group:g]\nprograms=x,y\n\
         [program:x]\ncommand=x\npriority=2\n\
         [program:y]\ncommand=y\npriority=1\n"]);
    w.check(
        "boot spawned(y) spawned(x)",
        expect![[r#"
            @0 boot
              g:y: spawn
            @0 spawned(y)
              INFO spawned: 'y' with pid 100
              g:y: deadline @1
              g:x: spawn
            @0 spawned(x)
              INFO spawned: 'x' with pid 101
              g:x: deadline @1
        "#]],
    );
}

#[test]
fn shutdown_during_boot_drops_the_classes_not_started() {
    let mut w = World::new(&["[program:a]\ncommand=a\npriority=1\n\
         [program:b]\ncommand=b\npriority=2\n"]);
    w.check(
        "boot sigterm spawned(a) killed(a,15)",
        expect![[r#"
            @0 boot
              a: spawn
            @0 sigterm
              WARN received SIGTERM indicating exit request
              INFO waiting for a to die
            @0 spawned(a)
              INFO spawned: 'a' with pid 100
              a: kill 100 SIGTERM
              a: deadline @10
            @0 killed(a,15)
              WARN stopped: a (terminated by SIGTERM)
              a: no deadline
              => all stopped
        "#]],
    );
}
