//! Shutdown and restart: groups stop in reverse priority order, each waited for.

use expect_test::expect;

use super::harness::World;

const THREE: &str = "[program:low]\ncommand=l\npriority=1\nstartsecs=0\n\
     [program:mid]\ncommand=m\npriority=2\nstartsecs=0\n\
     [program:high]\ncommand=h\npriority=3\nstartsecs=0\n";

fn booted(conf: &str, procs: &[&str]) -> World {
    let mut w = World::new(&[conf]);
    let mut script = String::from("boot");
    for p in procs {
        script.push_str(&format!(" spawned({p})"));
    }
    w.run(&script);
    w
}

#[test]
fn groups_stop_highest_priority_first_each_waited_for() {
    let mut w = booted(THREE, &["low", "mid", "high"]);
    w.check(
        "sigterm@10 exit(high,0) exit(mid,0)@11 exit(low,0)@12",
        expect![[r#"
            @10 sigterm
              WARN received SIGTERM indicating exit request
              high: kill 102 SIGTERM
              high: deadline @20
              INFO waiting for low, mid, high to die
            @10 exit(high,0)
              INFO stopped: high (exit status 0)
              high: no deadline
              mid: kill 101 SIGTERM
              mid: deadline @20
            @11 exit(mid,0)
              INFO stopped: mid (exit status 0)
              mid: no deadline
              low: kill 100 SIGTERM
              low: deadline @21
            @12 exit(low,0)
              INFO stopped: low (exit status 0)
              low: no deadline
              => all stopped
        "#]],
    );
}

#[test]
fn a_slow_group_is_killed_at_stopwaitsecs_before_the_next_is_stopped() {
    let mut w = booted(
        "[program:a]\ncommand=a\npriority=1\nstartsecs=0\n\
         [program:b]\ncommand=b\npriority=2\nstartsecs=0\nstopwaitsecs=5\n",
        &["a", "b"],
    );
    w.check(
        "shutdown@1 getstate tick(b)@6 killed(b,9) exit(a,0)",
        expect![[r#"
            @1 shutdown
              = ok
              b: kill 101 SIGTERM
              b: deadline @6
              INFO waiting for a, b to die
            @1 getstate
              = SHUTDOWN
            @6 tick(b)
              WARN killing 'b' (101) with SIGKILL
              b: kill 101 SIGKILL
              b: deadline @11
            @6 killed(b,9)
              WARN stopped: b (terminated by SIGKILL)
              b: no deadline
              a: kill 100 SIGTERM
              a: deadline @16
            @6 exit(a,0)
              INFO stopped: a (exit status 0)
              a: no deadline
              => all stopped
        "#]],
    );
}

#[test]
fn requests_are_refused_while_stopping_but_sighup_is_ignored() {
    let mut w = booted(THREE, &["low", "mid", "high"]);
    w.check(
        "restart getstate start(low) stop(low) sighup",
        expect![[r#"
        @0 restart
          = ok
          high: kill 102 SIGTERM
          high: deadline @10
          INFO waiting for low, mid, high to die
        @0 getstate
          = RESTARTING
        @0 start(low)
          = SHUTDOWN_STATE
        @0 stop(low)
          = SHUTDOWN_STATE
        @0 sighup
          WARN ignored SIGHUP indicating restart request (shutdown in progress)
    "#]],
    );
}

#[test]
fn backoff_and_stopped_processes_do_not_hold_up_shutdown() {
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=5\n\
         [program:b]\ncommand=b\nautostart=false\n"]);
    w.check(
        "boot spawned(a) exit(a,1)@1 sigterm states",
        expect![[r#"
            @0 boot
              a: spawn
            @0 spawned(a)
              INFO spawned: 'a' with pid 100
              a: deadline @5
            @1 exit(a,1)
              WARN exited: a (exit status 1; not expected)
              a: deadline @2
            @1 sigterm
              WARN received SIGTERM indicating exit request
              a: no deadline
              => all stopped
            @1 states
              = a:a FATAL, b:b STOPPED
        "#]],
    );
}

#[test]
fn members_of_a_group_stop_together_in_reverse_order() {
    let mut w = booted(
        "[program:w]\ncommand=w\nnumprocs=2\nprocess_name=w%(process_num)s\nstartsecs=0\n",
        &["w0", "w1"],
    );
    w.check(
        "sigterm exit(w0,0) exit(w1,0)",
        expect![[r#"
            @0 sigterm
              WARN received SIGTERM indicating exit request
              w:w1: kill 101 SIGTERM
              w:w1: deadline @10
              w:w0: kill 100 SIGTERM
              w:w0: deadline @10
              INFO waiting for w0, w1 to die
            @0 exit(w0,0)
              INFO stopped: w0 (exit status 0)
              w:w0: no deadline
            @0 exit(w1,0)
              INFO stopped: w1 (exit status 0)
              w:w1: no deadline
              => all stopped
        "#]],
    );
}

#[test]
fn config_changes_are_refused_while_stopping() {
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=0\n", "[program:b]\ncommand=b\n"]);
    w.run("boot spawned(a)");
    w.check(
        "sigterm reread(1) add(b) remove(a) shutdown",
        expect![[r#"
        @0 sigterm
          WARN received SIGTERM indicating exit request
          a: kill 100 SIGTERM
          a: deadline @10
          INFO waiting for a to die
        @0 reread(1)
          = SHUTDOWN_STATE
        @0 add(b)
          = SHUTDOWN_STATE
        @0 remove(a)
          = SHUTDOWN_STATE
        @0 shutdown
          = SHUTDOWN_STATE
    "#]],
    );
}

#[test]
fn groups_of_one_priority_stop_together_before_the_next_priority() {
    let mut w = booted(
        "[program:a]\ncommand=a\nstartsecs=0\n[program:b]\ncommand=b\nstartsecs=0\n\
         [program:first]\ncommand=f\npriority=1\nstartsecs=0\n",
        &["first", "a", "b"],
    );
    w.check(
        "sigterm exit(a,0) exit(b,0) exit(first,0)",
        expect![[r#"
            @0 sigterm
              WARN received SIGTERM indicating exit request
              b: kill 102 SIGTERM
              b: deadline @10
              a: kill 101 SIGTERM
              a: deadline @10
              INFO waiting for first, a, b to die
            @0 exit(a,0)
              INFO stopped: a (exit status 0)
              a: no deadline
            @0 exit(b,0)
              INFO stopped: b (exit status 0)
              b: no deadline
              first: kill 100 SIGTERM
              first: deadline @10
            @0 exit(first,0)
              INFO stopped: first (exit status 0)
              first: no deadline
              => all stopped
        "#]],
    );
}
