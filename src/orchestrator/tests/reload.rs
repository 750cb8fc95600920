//! Reread, add and remove: comparing a new config with the active groups.

use expect_test::expect;

use super::harness::World;

const OLD: &str = "[program:keep]\ncommand=k\nstartsecs=0\n\
     [program:change]\ncommand=c\nstartsecs=0\n\
     [program:gone]\ncommand=g\nstartsecs=0\n";
const NEW: &str = "[program:keep]\ncommand=k\nstartsecs=0\n\
     [program:change]\ncommand=c --new\nstartsecs=0\n\
     [program:fresh]\ncommand=f\nstartsecs=0\n";

#[test]
fn reread_names_added_changed_and_removed_groups() {
    let mut w = World::new(&[OLD, NEW]);
    w.run("boot spawned(keep) spawned(change) spawned(gone)");
    w.check(
        "reread(1) reread(0)",
        expect![[r#"
        @0 reread(1)
          = added ["fresh"] changed ["change"] removed ["gone"]
        @0 reread(0)
          = added [] changed [] removed []
    "#]],
    );
}

#[test]
fn update_adds_autostarts_and_removes_stopped_groups() {
    let mut w = World::new(&[OLD, NEW]);
    w.run("boot spawned(keep) spawned(change) spawned(gone)");
    w.check(
        "reread(1) remove(gone) stop(gone) exit(gone,0) remove(gone) add(fresh) spawned(fresh) \
         stop(change) exit(change,0) remove(change) add(change) spawned(change) states",
        expect![[r#"
            @0 reread(1)
              = added ["fresh"] changed ["change"] removed ["gone"]
            @0 remove(gone)
              = STILL_RUNNING: gone
            @0 stop(gone)
              = stop gone:gone: ok
              gone: kill 102 SIGTERM
              gone: deadline @10
            @0 exit(gone,0)
              INFO stopped: gone (exit status 0)
              gone: no deadline
            @0 remove(gone)
              = ok
              gone: retire
            @0 add(fresh)
              = ok
              fresh: spawn
            @0 spawned(fresh)
              INFO spawned: 'fresh' with pid 103
              INFO success: fresh entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @0 stop(change)
              = stop change:change: ok
              change: kill 101 SIGTERM
              change: deadline @10
            @0 exit(change,0)
              INFO stopped: change (exit status 0)
              change: no deadline
            @0 remove(change)
              = ok
              change: retire
            @0 add(change)
              = ok
              change: spawn
            @0 spawned(change)
              INFO spawned: 'change' with pid 104
              INFO success: change entered RUNNING state, process has stayed up for > than 0 seconds (startsecs)
            @0 states
              = change:change RUNNING, fresh:fresh RUNNING, keep:keep RUNNING
        "#]],
    );
}

#[test]
fn add_and_remove_refuse_unknown_and_duplicate_names() {
    let mut w = World::new(&[OLD, NEW]);
    w.check(
        "boot add(fresh) reread(1) add(keep) remove(nope) add(nope)",
        expect![[r#"
        @0 boot
          change: spawn
          gone: spawn
          keep: spawn
        @0 add(fresh)
          = BAD_NAME: fresh
        @0 reread(1)
          = added ["fresh"] changed ["change"] removed ["gone"]
        @0 add(keep)
          = ALREADY_ADDED: keep
        @0 remove(nope)
          = BAD_NAME: nope
        @0 add(nope)
          = BAD_NAME: nope
    "#]],
    );
}

#[test]
fn facts_from_a_removed_group_runner_are_ignored() {
    let mut w = World::new(&["[program:a]\ncommand=a\nautostart=false\n"]);
    w.run("boot start(a) spawned(a) stop(a)");
    w.check(
        "exit(a,0) remove(a) exit(a,0) tick(a) states",
        expect![[r#"
            @0 exit(a,0)
              INFO stopped: a (exit status 0)
              a: no deadline
            @0 remove(a)
              = ok
              a: retire
            @0 exit(a,0)
            @0 tick(a)
            @0 states
              = (none)
        "#]],
    );
}
