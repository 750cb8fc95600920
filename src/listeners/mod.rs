//! The built-in event listeners.
