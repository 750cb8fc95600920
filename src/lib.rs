//! A drop-in replacement for Python supervisord 4.3.0.
//!
//! # Layout
//! - [`config`]: the supervisord configuration language, raw ini with file and line,
//!   interpolation, numprocs expansion, the validated typed model, and the daemon's flags.
//! - [`procsup`]: the pure process state machine (no IO, no clock, no tokio).
//! - [`orchestrator`]: the actor that owns every piece of mutable daemon state.
//! - [`runner`]: the per-process shell that executes `procsup` actions.
//! - [`sys`]: the only places that fork, wait, read the clock, or look up users.
//! - [`logio`]: rotating log writers, output pumps, log-reading offset rules.
//! - [`events`]: the supervisor 3.0 event types, listener pools and the listener protocol.
//! - [`fault`]: supervisor's fault codes, shared by the daemon, the RPC layer and clients.
//! - [`listeners`]: the built-in event listeners (`--logger`, `--test-req-restart`).
//! - [`rpc`]: the HTTP server, JSON-RPC and XML-RPC; the only module that knows JSON/XML.
//! - [`ctl`]: supervisorctl, with byte-exact formatting.
//!
//! `ARCHITECTURE.md` at the top of the repository is the map.

/// Declares an enum of Python's named constants once: the enum, `ALL` (declaration order)
/// and `name()`; with `= code`, also `code()` (the discriminant) and `from_code()`.
macro_rules! python_constants {
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal => $name:literal,)*
        }
    ) => {
        $(#[$meta])*
        $vis enum $enum {
            $($(#[$vmeta])* $variant = $code,)*
        }

        impl $enum {
            /// Every value, in declaration order.
            pub const ALL: [$enum; [$($enum::$variant,)*].len()] = [$($enum::$variant,)*];

            /// Python's number.
            pub const fn code(self) -> i32 {
                self as i32
            }

            /// Python's name.
            pub fn name(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)*
                }
            }

            /// The value with this number, if any.
            pub fn from_code(code: i32) -> Option<$enum> {
                Self::ALL.into_iter().find(|v| v.code() == code)
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident {
            $($(#[$vmeta:meta])* $variant:ident => $name:literal,)*
        }
    ) => {
        $(#[$meta])*
        $vis enum $enum {
            $($(#[$vmeta])* $variant,)*
        }

        impl $enum {
            /// Every value, in declaration order.
            pub const ALL: [$enum; [$($enum::$variant,)*].len()] = [$($enum::$variant,)*];

            /// Python's name.
            pub fn name(self) -> &'static str {
                match self {
                    $($enum::$variant => $name,)*
                }
            }
        }
    };
}

pub mod bridge;
pub mod checks;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod events;
pub mod fault;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod inbox;
pub mod listeners;
pub mod logio;
pub mod orchestrator;
pub mod personality;
pub mod procsup;
pub mod pytext;
pub mod rpc;
pub mod runner;
pub mod sys;
pub mod wekastop;
