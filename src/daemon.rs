//! The `supervisord` personality: flags, config, and (once built) the daemon's wiring.

use std::ffi::OsString;

/// Runs the daemon personality and returns its exit code.
pub fn main(_args: Vec<OsString>) -> u8 {
    crate::personality::not_built(crate::personality::Personality::Daemon)
}
