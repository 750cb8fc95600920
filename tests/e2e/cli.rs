//! Dispatch on argv[0] and the first argument.

use crate::support::{run, run_as, tempdir};

#[test]
fn personalities_not_built_yet_say_so_and_exit_2() {
    let r = run(&["bridge"], None);
    r.expect_code(2);
    assert!(r.stderr.contains("not built yet"), "{}", r.explain());
}

#[test]
fn argv0_link_chooses_the_personality() {
    let dir = tempdir();
    let link = dir.path().join("wekastop");
    std::os::unix::fs::symlink(crate::support::bin(), &link).expect("symlink");
    let r = run_as(&link, &[], None);
    r.expect_code(2);
    assert!(r.stderr.contains("'wekastop'"), "{}", r.explain());
}
