//! The supervisord 4.3.0 configuration language and the daemon's command line.
//!
//! The pipeline is raw → expanded → typed, one module per step:
//! - [`ini`]: configparser's dialect, keeping the file and line of every option;
//! - [`expand`]: `%(name)s` interpolation (pure);
//! - [`options`]: value parsers (sizes, signals, exit codes, `environment=`, …);
//! - `build`: sections → [`Config`], with Python's defaults and rules, collecting every
//!   problem as a [`ConfigError`] instead of stopping at the first;
//! - [`model`]: the typed result the daemon runs from;
//! - [`lifecycle`]: our dependency, check, essential and restart-budget options;
//! - [`cli`]: the daemon's flags, which override the file.
//!
//! Users are not looked up here: `user=` and `chown=` stay strings for the daemon.

mod build;
pub mod cli;
pub mod diag;
pub mod expand;
pub mod ini;
pub mod lifecycle;
pub mod model;
pub mod options;

pub use build::{EVENT_TYPES, LoadContext, load};
pub use cli::{Command, Overrides};
pub use lifecycle::{
    CheckForm, Dependency, DependencyCondition, DependencyGraph, HealthCheck, Lifecycle,
    ProcessKey, ReadyCheck, RestartBackoff, RestartLimit,
};
pub use model::*;
