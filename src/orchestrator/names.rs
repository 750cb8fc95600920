//! supervisorctl/RPC name syntax, pure: `name`, `group:name`, `group:*`, `group:`.

/// What a name spec asks for, before it is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec<'a> {
    pub group: &'a str,
    /// `None` means the whole group (`group:*` or `group:`).
    pub process: Option<&'a str>,
}

/// Python's `split_namespec`: a bare `name` means group `name`, process `name`; after the
/// first `:` an empty name or `*` means the whole group.
pub fn split(spec: &str) -> Spec<'_> {
    match spec.split_once(':') {
        Some((group, "" | "*")) => Spec { group, process: None },
        Some((group, process)) => Spec { group, process: Some(process) },
        None => Spec { group: spec, process: Some(spec) },
    }
}

/// The table key of a process: `group:name`.
pub fn key(group: &str, process: &str) -> String {
    let mut k = String::with_capacity(group.len() + process.len() + 1);
    k.push_str(group);
    k.push(':');
    k.push_str(process);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_python() {
        let cases = [
            ("web", "web", Some("web")),
            ("g:web", "g", Some("web")),
            ("g:*", "g", None),
            ("g:", "g", None),
            ("g:a:b", "g", Some("a:b")),
            (":x", "", Some("x")),
            ("", "", Some("")),
        ];
        for (spec, group, process) in cases {
            assert_eq!(split(spec), Spec { group, process }, "{spec}");
        }
        assert_eq!(key("g", "p"), "g:p");
    }
}
