//! The autorecovery gate: while off, exits are not restarted; crossing back on restarts
//! what is waiting.

use expect_test::expect;

use super::harness::World;

#[test]
fn disabled_autorecovery_holds_restarts_until_it_is_enabled_again() {
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=0\nautorestart=true\n"]);
    w.run("boot spawned(a)");
    w.check(
        "disable disable autorecovery exit(a,1)@1 states enable autorecovery states \
         enable autorecovery spawned(a)@2 states",
        expect![[r#"
            @0 disable
            @0 disable
            @0 autorecovery
              = on:false count:-1
            @1 exit(a,1)
              WARN exited: a (exit status 1; not expected)
            @1 states
              = a:a EXITED
            @1 enable
            @1 autorecovery
              = on:false count:0
            @1 states
              = a:a EXITED
            @1 enable
              a: spawn
            @1 autorecovery
              = on:true count:1
            @2 spawned(a)
              INFO spawned: 'a' with pid 101
              INFO success: a entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @2 states
              = a:a RUNNING
        "#]],
    );
}

#[test]
fn enable_without_a_disable_changes_nothing() {
    let mut w = World::new(&["[program:a]\ncommand=a\nstartsecs=0\nautorestart=true\n"]);
    w.check("boot spawned(a) enable autorecovery exit(a,1)@1 spawned(a)", expect![[r#"
        @0 boot
          a: spawn
        @0 spawned(a)
          INFO spawned: 'a' with pid 100
          INFO success: a entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
        @0 enable
        @0 autorecovery
          = on:true count:1
        @1 exit(a,1)
          WARN exited: a (exit status 1; not expected)
          a: spawn
        @1 spawned(a)
          INFO spawned: 'a' with pid 101
          INFO success: a entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
    "#]]);
}

#[test]
fn a_holder_that_exits_without_enabling_releases_its_hold() {
    let mut w = World::new(&["[program:lst]\ncommand=lst\nstartsecs=0\nautorestart=true\n\
         [program:a]\ncommand=a\nstartsecs=0\nautorestart=true\n"]);
    w.run("boot spawned(a) spawned(lst)");
    w.check(
        "disable(lst:lst) disable autorecovery exit(a,1)@1 exit(lst,9)@2 autorecovery \
         enable autorecovery disable(nosuch)",
        expect![[r#"
            @0 disable(lst:lst)
            @0 disable
            @0 autorecovery
              = on:false count:-1
            @1 exit(a,1)
              WARN exited: a (exit status 1; not expected)
            @2 exit(lst,9)
              WARN exited: lst (exit status 9; not expected)
              WARN released 1 autorecovery hold(s) of lst:lst: it exited without releasing them
            @2 autorecovery
              = on:false count:0
            @2 enable
              a: spawn
              lst: spawn
            @2 autorecovery
              = on:true count:1
            @2 disable(nosuch)
              = BAD_NAME: nosuch
        "#]],
    );
}
