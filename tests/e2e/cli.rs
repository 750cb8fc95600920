//! Dispatch on argv[0] and the first argument.

use crate::support::{run, run_as, tempdir};

#[test]
fn argv0_link_chooses_the_personality() {
    let dir = tempdir();
    let link = dir.path().join("wekastop");
    std::os::unix::fs::symlink(crate::support::bin(), &link).expect("symlink");
    let r = run_as(&link, &[], None);
    r.expect_code(2);
    assert!(
        r.stderr.contains("required arguments were not provided") && r.stderr.contains("<NAME>"),
        "{}",
        r.explain()
    );
    let ctl = dir.path().join("supervisorctl");
    std::os::unix::fs::symlink(crate::support::bin(), &ctl).expect("symlink");
    let r = run_as(&ctl, &["-h"], None);
    r.expect_code(0);
    assert!(
        r.stdout.starts_with("supervisorctl -- control applications run by supervisord"),
        "{}",
        r.explain()
    );
}

#[test]
fn install_links_makes_working_links() {
    let dir = tempdir();
    let d = dir.path().display().to_string();
    let r = run(&["--install-links", &d], None);
    r.expect_code(0);
    for name in ["supervisorctl", "wekastop"] {
        let link = dir.path().join(name);
        assert!(
            std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
            "{}",
            r.explain()
        );
    }
    let r = run_as(&dir.path().join("supervisorctl"), &["-h"], None);
    r.expect_code(0);
    // Again: existing links are replaced, not an error.
    run(&["--install-links", &d], None).expect_code(0);
    run(&["--install-links"], None).expect_code(2);
}
