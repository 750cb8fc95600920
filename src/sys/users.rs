//! User and group lookups from `/etc/passwd` and `/etc/group`, read directly.
//!
//! The release binary is statically linked against glibc, whose NSS (`getpwnam`) would not
//! work there, so we parse the files ourselves. The parsers take the file text and are pure;
//! the `lookup_*` wrappers read `/etc`. Name resolution follows Python's
//! `supervisor.datatypes.name_to_uid`/`name_to_gid`, error messages included.

use std::path::PathBuf;

/// Where the system user database lives.
pub const PASSWD_PATH: &str = "/etc/passwd";
/// Where the system group database lives.
pub const GROUP_PATH: &str = "/etc/group";

/// One `/etc/passwd` entry (the password and GECOS fields are not needed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Numeric user id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
    /// Login shell.
    pub shell: PathBuf,
}

/// One `/etc/group` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Numeric group id.
    pub gid: u32,
    /// Login names listed as members (the fourth field); the primary members (users whose
    /// passwd entry names this gid) are not listed here, as in the file.
    pub members: Vec<String>,
}

/// A user or group spec that does not resolve; the text is Python's `ValueError` message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// Not numeric and no such login name.
    #[error("Invalid user name {0}")]
    InvalidUserName(String),
    /// Numeric but no entry with that uid.
    #[error("Invalid user id {0}")]
    InvalidUserId(String),
    /// Not numeric and no such group name.
    #[error("Invalid group name {0}")]
    InvalidGroupName(String),
    /// Numeric but no entry with that gid.
    #[error("Invalid group id {0}")]
    InvalidGroupId(String),
}

/// Parses `/etc/passwd` text. Comments, blank lines and malformed lines are skipped, as
/// glibc's files backend does; order is kept because the first match wins.
pub fn parse_passwd(text: &str) -> Vec<User> {
    text.lines()
        .filter_map(|line| {
            if line.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            let [name, _pw, uid, gid, _gecos, home, shell] = f.as_slice() else {
                return None;
            };
            if name.is_empty() {
                return None;
            }
            Some(User {
                name: (*name).to_owned(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home: PathBuf::from(home),
                shell: PathBuf::from(shell),
            })
        })
        .collect()
}

/// Parses `/etc/group` text, skipping comments, blank and malformed lines.
pub fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|line| {
            if line.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            let [name, _pw, gid, members] = f.as_slice() else {
                return None;
            };
            if name.is_empty() {
                return None;
            }
            Some(Group {
                name: (*name).to_owned(),
                gid: gid.parse().ok()?,
                members: members.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// Python's `int(s)` for the forms that matter here: surrounding whitespace, a sign, and
/// digits with single underscores between them. `None` means "not a number, try a name".
fn py_int(s: &str) -> Option<i64> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b' || c == '\x0c');
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, t.get(1..)?),
        b'+' => (false, t.get(1..)?),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let v: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Resolves a `user=` spec (a login name or a numeric uid) against parsed entries, with
/// Python's `name_to_uid` rules: a number must exist as a uid, a name as a login.
pub fn find_user(users: &[User], spec: &str) -> Result<User, UserError> {
    match py_int(spec) {
        Some(n) => u32::try_from(n)
            .ok()
            .and_then(|uid| users.iter().find(|u| u.uid == uid))
            .cloned()
            .ok_or_else(|| UserError::InvalidUserId(spec.to_owned())),
        None => users
            .iter()
            .find(|u| u.name == spec)
            .cloned()
            .ok_or_else(|| UserError::InvalidUserName(spec.to_owned())),
    }
}

/// Resolves a group spec (a name or a numeric gid), Python's `name_to_gid` rules.
pub fn find_group(groups: &[Group], spec: &str) -> Result<Group, UserError> {
    match py_int(spec) {
        Some(n) => u32::try_from(n)
            .ok()
            .and_then(|gid| groups.iter().find(|g| g.gid == gid))
            .cloned()
            .ok_or_else(|| UserError::InvalidGroupId(spec.to_owned())),
        None => groups
            .iter()
            .find(|g| g.name == spec)
            .cloned()
            .ok_or_else(|| UserError::InvalidGroupName(spec.to_owned())),
    }
}

/// The group list a child of `user` gets, in the order Python passes to `setgroups`: the
/// primary gid first, then every group whose member list names the user (duplicates
/// removed, which `setgroups` does not care about).
pub fn supplementary_groups(user: &User, groups: &[Group]) -> Vec<u32> {
    let mut gids = vec![user.gid];
    for g in groups {
        if g.members.contains(&user.name) && !gids.contains(&g.gid) {
            gids.push(g.gid);
        }
    }
    gids
}

/// Reads a database file; a missing or unreadable file is an empty database, which is what
/// Python's `pwd`/`grp` modules report in that case.
fn read_db(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// All entries of `/etc/passwd`.
pub fn etc_users() -> Vec<User> {
    parse_passwd(&read_db(PASSWD_PATH))
}

/// All entries of `/etc/group`.
pub fn etc_groups() -> Vec<Group> {
    parse_group(&read_db(GROUP_PATH))
}

/// [`find_user`] against `/etc/passwd`.
pub fn lookup_user(spec: &str) -> Result<User, UserError> {
    find_user(&etc_users(), spec)
}

/// [`find_group`] against `/etc/group`.
pub fn lookup_group(spec: &str) -> Result<Group, UserError> {
    find_group(&etc_groups(), spec)
}

/// The first `/etc/passwd` entry with `uid` (Python's `pwd.getpwuid`).
pub fn user_by_uid(uid: u32) -> Option<User> {
    etc_users().into_iter().find(|u| u.uid == uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

broken line without fields
badnum:x:abc:1::/:/bin/sh
alice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh
alias:x:1000:50::/home/alias:/bin/sh
";
    const GROUP: &str = "\
root:x:0:
alice:x:1000:
wheel:x:10:bob,alice
audio:x:29:alice
video:x:44:bob
bad:x:notanumber:alice
";

    fn users() -> Vec<User> {
        parse_passwd(PASSWD)
    }

    #[test]
    fn passwd_parsing_skips_junk_and_keeps_order() {
        let u = users();
        let names: Vec<&str> = u.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["root", "daemon", "alice", "alias"]);
        assert_eq!(
            u[2],
            User {
                name: "alice".into(),
                uid: 1000,
                gid: 1000,
                home: "/home/alice".into(),
                shell: "/bin/zsh".into()
            }
        );
    }

    #[test]
    fn user_by_name_or_number_first_match_wins() {
        let u = users();
        assert_eq!(find_user(&u, "alice").map(|u| u.uid), Ok(1000));
        assert_eq!(find_user(&u, "1000").map(|u| u.name), Ok("alice".to_owned()));
        assert_eq!(find_user(&u, " 0 ").map(|u| u.name), Ok("root".to_owned()));
        assert_eq!(find_user(&u, "+1").map(|u| u.name), Ok("daemon".to_owned()));
        assert_eq!(find_user(&u, "1_000").map(|u| u.name), Ok("alice".to_owned()));
    }

    #[test]
    fn user_errors_are_pythons() {
        let u = users();
        let err = |s| find_user(&u, s).map_err(|e| e.to_string());
        assert_eq!(err("nobody"), Err("Invalid user name nobody".to_owned()));
        assert_eq!(err("4242"), Err("Invalid user id 4242".to_owned()));
        assert_eq!(err("-1"), Err("Invalid user id -1".to_owned()));
        assert_eq!(err("1__0"), Err("Invalid user name 1__0".to_owned()));
        assert_eq!(err(""), Err("Invalid user name ".to_owned()));
    }

    #[test]
    fn groups_parse_and_resolve() {
        let g = parse_group(GROUP);
        assert_eq!(g.len(), 5);
        assert_eq!(g[2].members, ["bob", "alice"]);
        assert!(g[0].members.is_empty());
        assert_eq!(find_group(&g, "wheel").map(|g| g.gid), Ok(10));
        assert_eq!(find_group(&g, "44").map(|g| g.name), Ok("video".to_owned()));
        assert_eq!(
            find_group(&g, "staff").map_err(|e| e.to_string()),
            Err("Invalid group name staff".to_owned())
        );
        assert_eq!(
            find_group(&g, "77").map_err(|e| e.to_string()),
            Err("Invalid group id 77".to_owned())
        );
    }

    #[test]
    fn initgroups_semantics_primary_first() {
        let g = parse_group(GROUP);
        let u = users();
        assert_eq!(supplementary_groups(&u[2], &g), [1000, 10, 29]);
        assert_eq!(supplementary_groups(&u[0], &g), [0]);
        // Membership is by login name, so a second name on the same uid gets its own list.
        assert_eq!(supplementary_groups(&u[3], &g), [50]);
    }

    #[test]
    fn real_etc_passwd_has_root() {
        let root = lookup_user("root").expect("root in /etc/passwd");
        assert_eq!(root.uid, 0);
        assert_eq!(lookup_user("0").map(|u| u.name), Ok("root".to_owned()));
        assert_eq!(user_by_uid(0).map(|u| u.name), Some("root".to_owned()));
        assert_eq!(lookup_group("0").map(|g| g.name), Ok("root".to_owned()));
    }
}
