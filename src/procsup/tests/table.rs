//! Python's state table (reference section 2.2), one row per edge, and the restart policy
//! matrix: autorestart × exit kind × autorecovery gate.

use expect_test::expect;

use super::harness::World;
use crate::procsup::{Action, ProcessState};

/// (policy, script, the edge its last input must emit).
const EDGES: &[(&str, &str, &str)] = &[
    ("", "start", "STOPPED→STARTING"),
    ("autorestart=true", "start wait exit(0)@5", "EXITED→STARTING"),
    ("autorestart=false", "start wait exit(0)@5 start@6", "EXITED→STARTING"),
    ("startretries=0", "start exit(1)@0.1 start@1", "FATAL→STARTING"),
    ("", "start exit(1)@0.1 wait", "BACKOFF→STARTING"),
    ("", "start wait", "STARTING→RUNNING"),
    ("startsecs=0", "spawns=manual start spawned", "STARTING→RUNNING"),
    ("", "start exit(1)@0.5", "STARTING→BACKOFF"),
    ("", "spawns=fail start", "STARTING→BACKOFF"),
    ("", "start stop@0.5", "STARTING→STOPPING"),
    ("", "start sig(1)@0.5 sigfail", "STARTING→UNKNOWN"),
    ("", "start wait stop@2", "RUNNING→STOPPING"),
    ("", "start wait shutdown@2", "RUNNING→STOPPING"),
    ("autorestart=false", "start wait exit(0)@2", "RUNNING→EXITED"),
    ("", "start wait sig(1)@2 sigfail", "RUNNING→UNKNOWN"),
    ("startretries=0", "start exit(1)@0.5", "BACKOFF→FATAL"),
    ("", "start exit(1)@0.5 shutdown", "BACKOFF→FATAL"),
    ("", "start exit(1)@0.5 stop", "BACKOFF→STOPPED"),
    ("", "start wait stop@2 killed(15)@3", "STOPPING→STOPPED"),
    ("", "start wait stop@2 killfail", "STOPPING→UNKNOWN"),
];

#[test]
fn every_edge_of_pythons_state_table() {
    for (policy, script, edge) in EDGES {
        let mut w = World::new(policy);
        w.run(script);
        let emitted: Vec<String> = w
            .last
            .iter()
            .filter_map(|a| match a {
                Action::Emit(sc) => Some(format!("{}→{}", sc.from, sc.to)),
                _ => None,
            })
            .collect();
        assert!(
            emitted.iter().any(|e| e == edge),
            "policy {policy:?}, script {script:?}: wanted {edge}, emitted {emitted:?}"
        );
    }
    // The table covers every legal edge exactly as `can_transition_to` defines them.
    let mut legal = Vec::new();
    for from in ProcessState::ALL {
        for to in ProcessState::ALL {
            if from.can_transition_to(to) {
                legal.push(format!("{from}→{to}"));
            }
        }
    }
    for edge in &legal {
        assert!(EDGES.iter().any(|(_, _, e)| e == edge), "no row for {edge}");
    }
    assert!(EDGES.iter().all(|(_, _, e)| legal.contains(&e.to_string())));
}

/// For each combination: the state after the exit, and whether it restarted at once.
#[test]
fn restart_policy_matrix() {
    let mut rows = String::new();
    for autorestart in ["true", "false", "unexpected"] {
        for (kind, exit) in [("exit 0", "exit(0)"), ("exit 3", "exit(3)"), ("SIGKILL", "killed(9)")]
        {
            for gate in ["on", "off"] {
                let mut w = World::new(&format!("autorestart={autorestart} exitcodes=0"));
                let gate_script = if gate == "off" { "gate-off" } else { "" };
                w.run(&format!("start@0 wait {gate_script} {exit}@5"));
                let restarted = w.last.contains(&Action::Spawn);
                let state = w.proc.state();
                let mut after_gate = String::new();
                if gate == "off" {
                    w.run("gate-on@6");
                    after_gate = format!(" → gate on: {}", w.proc.state());
                }
                rows.push_str(&format!(
                    "autorestart={autorestart:<10} {kind:<7} gate {gate:<3}: {}{}{after_gate}\n",
                    state,
                    if restarted { " (restarted)" } else { "" },
                ));
            }
        }
    }
    expect![[r#"
        autorestart=true       exit 0  gate on : STARTING (restarted)
        autorestart=true       exit 0  gate off: EXITED → gate on: STARTING
        autorestart=true       exit 3  gate on : STARTING (restarted)
        autorestart=true       exit 3  gate off: EXITED → gate on: STARTING
        autorestart=true       SIGKILL gate on : STARTING (restarted)
        autorestart=true       SIGKILL gate off: EXITED → gate on: STARTING
        autorestart=false      exit 0  gate on : EXITED
        autorestart=false      exit 0  gate off: EXITED → gate on: EXITED
        autorestart=false      exit 3  gate on : EXITED
        autorestart=false      exit 3  gate off: EXITED → gate on: EXITED
        autorestart=false      SIGKILL gate on : EXITED
        autorestart=false      SIGKILL gate off: EXITED → gate on: EXITED
        autorestart=unexpected exit 0  gate on : EXITED
        autorestart=unexpected exit 0  gate off: EXITED → gate on: EXITED
        autorestart=unexpected exit 3  gate on : STARTING (restarted)
        autorestart=unexpected exit 3  gate off: EXITED → gate on: STARTING
        autorestart=unexpected SIGKILL gate on : STARTING (restarted)
        autorestart=unexpected SIGKILL gate off: EXITED → gate on: STARTING
    "#]]
    .assert_eq(&rows);
}
