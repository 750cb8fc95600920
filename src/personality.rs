//! Which personality of the one binary runs, from `argv[0]` and the first argument.

use std::ffi::OsString;

/// The five programs this binary can be (docs/design.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// `supervisord [flags]`: the daemon.
    Daemon,
    /// `supervisorctl …` or `supervisord ctl …`.
    Ctl,
    /// `wekastop …` or `supervisord wekastop …`.
    Wekastop,
    /// `supervisord bridge METHOD [JSON-ARRAY]`.
    Bridge,
    /// `supervisord eventlistener --logger|--test-req-restart`.
    EventListener,
}

impl Personality {
    /// The name a user types for it.
    pub fn name(self) -> &'static str {
        match self {
            Personality::Daemon => "supervisord",
            Personality::Ctl => "supervisorctl",
            Personality::Wekastop => "wekastop",
            Personality::Bridge => "bridge",
            Personality::EventListener => "eventlistener",
        }
    }
}

/// Picks the personality and returns the arguments it sees: `argv[0]` first, as its own
/// parser expects, with the subcommand word joined to it when one chose it
/// (`supervisord ctl`).
pub fn choose(argv0: &str, first: Option<&str>, args: &[OsString]) -> (Personality, Vec<OsString>) {
    let by_name = match argv0 {
        "supervisorctl" => Some(Personality::Ctl),
        "wekastop" => Some(Personality::Wekastop),
        _ => None,
    };
    if let Some(p) = by_name {
        return (p, args.to_vec());
    }
    let by_word = match first {
        Some("ctl") => Some(Personality::Ctl),
        Some("wekastop") => Some(Personality::Wekastop),
        Some("bridge") => Some(Personality::Bridge),
        Some("eventlistener") => Some(Personality::EventListener),
        _ => None,
    };
    match by_word {
        Some(p) => {
            // `supervisord ctl` is the program's name in its messages (`For help, use
            // supervisord ctl -h`), where Python's would say `supervisorctl`.
            let mut rest = Vec::with_capacity(args.len().saturating_sub(1));
            rest.extend(args.first().zip(args.get(1)).map(|(a0, word)| {
                let mut name = a0.clone();
                name.push(" ");
                name.push(word);
                name
            }));
            rest.extend(args.iter().skip(2).cloned());
            (p, rest)
        }
        None => (Personality::Daemon, args.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn argv0_wins_over_first_word() {
        let args = os(&["supervisorctl", "bridge"]);
        let (p, rest) = choose("supervisorctl", Some("bridge"), &args);
        assert_eq!(p, Personality::Ctl);
        assert_eq!(rest, args);
    }

    #[test]
    fn subcommand_word_is_removed() {
        let args = os(&["/usr/bin/supervisord", "ctl", "status", "web"]);
        let (p, rest) = choose("supervisord", Some("ctl"), &args);
        assert_eq!(p, Personality::Ctl);
        assert_eq!(rest, os(&["/usr/bin/supervisord ctl", "status", "web"]));
    }

    #[test]
    fn flags_mean_the_daemon() {
        let args = os(&["supervisord", "-n", "-c", "x.conf"]);
        let (p, rest) = choose("supervisord", Some("-n"), &args);
        assert_eq!(p, Personality::Daemon);
        assert_eq!(rest, args);
        assert_eq!(choose("wekastop", None, &os(&["wekastop"])).0, Personality::Wekastop);
        assert_eq!(
            choose("x", Some("eventlistener"), &os(&["x", "eventlistener"])).0,
            Personality::EventListener
        );
        assert_eq!(choose("x", Some("bridge"), &os(&["x", "bridge"])).0, Personality::Bridge);
    }
}
