//! Events and event listeners (the supervisor 3.0 event protocol).
//!
//! Pure parts, tested without tokio: the type table and hierarchy ([`kind`]), bodies, the
//! envelope and serials ([`event`]), the listener protocol ([`protocol`]) and a pool's
//! buffer ([`buffer`]).
//!
//! Runtime parts: the [`Bus`] the orchestrator owns (the global serial, which pool
//! subscribes to what, TICK timers) and publishes into with `try_send` only; one task per
//! pool ([`pool`]) holding its bounded buffer; one task per listener process ([`pump`])
//! speaking the protocol over the listener's stdin/stdout; and the output-pump hook
//! ([`hook`]) that turns child output into PROCESS_LOG / PROCESS_COMMUNICATION events.

pub mod buffer;
pub mod bus;
pub mod event;
pub mod hook;
pub mod kind;
pub mod pool;
pub mod protocol;
pub mod pump;

pub use bus::Bus;
pub use event::Event;
pub use hook::{EventHook, Publisher};
pub use pool::{Attach, PoolHandle};
