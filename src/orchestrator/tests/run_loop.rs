//! The actor's loop itself, on a current-thread runtime: requests arrive through the
//! handle, and `run` returns once a restart has stopped everything.

use super::harness::World;
use crate::fault::FaultKind;
use crate::orchestrator::msg::{DaemonState, Request};

#[test]
fn the_loop_answers_through_the_handle_and_returns_after_a_restart() {
    let w = World::new(&["[program:a]\ncommand=a\nautostart=false\n"]);
    let handle = w.handle.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    let (exit, state, after) = rt.block_on(async move {
        let run = tokio::spawn(w.orch.run());
        let state = handle.ask(|reply| Request::GetState { reply }).await;
        let restart = handle.ask(|reply| Request::Restart { reply }).await;
        assert!(matches!(restart, Ok(Ok(()))), "restart refused: {restart:?}");
        let exit = tokio::time::timeout(std::time::Duration::from_secs(10), run)
            .await
            .expect("the loop ends once nothing runs")
            .expect("the loop does not panic");
        // With the actor gone, the handle answers as Python does while shutting down.
        let after = handle.ask(|reply| Request::GetState { reply }).await;
        (exit, state, after)
    });
    assert!(exit.restart);
    assert_eq!(state.ok(), Some(DaemonState::Running));
    assert_eq!(after.err().and_then(|f| f.kind()), Some(FaultKind::ShutdownState));
}
