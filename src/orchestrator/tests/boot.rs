//! Boot: the autostart queue by priority class.

use expect_test::expect;

use super::harness::World;

#[test]
fn first_probe() {
    let mut w = World::new(&["[program:a]\ncommand=/bin/true\n"]);
    w.check("boot spawned(a) tick(a)@1", expect![[r#"
        @0 boot
          a: spawn
        @0 spawned(a)
          a: deadline @1
          INFO spawned: 'a' with pid 100
        @1 tick(a)
          INFO success: a entered RUNNING state, process has stayed up for > than 1 seconds (startsecs)
    "#]]);
}
