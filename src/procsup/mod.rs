//! The pure process state machine (issue 2).
