//! Operating-system mechanics: spawn, reap, signals, users, clock.
