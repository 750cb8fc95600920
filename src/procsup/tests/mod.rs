//! Tests of the state machine through a fake shell with a virtual clock: transcripts
//! (expect-test snapshots), Python's state table, the policy matrix, and property tests.

mod harness;
mod lifecycle;
mod props;
mod table;
mod transcripts;
