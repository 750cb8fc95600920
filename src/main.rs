//! One binary, five personalities, chosen by argv[0] and then by the first argument
//! (docs/design.md). Only dispatch lives here; each personality maps its own errors to
//! an exit code.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use supervisord::personality::{self, Personality};

/// See Cargo.toml: the musl build's own allocator makes the daemon page-fault per reply.
#[cfg(target_env = "musl")]
type Inner = mimalloc::MiMalloc;
#[cfg(target_env = "musl")]
const INNER: Inner = mimalloc::MiMalloc;
#[cfg(not(target_env = "musl"))]
type Inner = std::alloc::System;
#[cfg(not(target_env = "musl"))]
const INNER: Inner = std::alloc::System;

/// With `client-arena`, clients bump through a region (see `sys::arena`); the daemon and
/// the listeners close it and use the inner allocator.
#[cfg(feature = "client-arena")]
#[global_allocator]
static ALLOCATOR: supervisord::sys::arena::Arena<Inner> =
    supervisord::sys::arena::Arena::new(INNER);
#[cfg(not(feature = "client-arena"))]
#[global_allocator]
static ALLOCATOR: Inner = INNER;

/// mimalloc returns freed pages to the kernel 10 ms after they empty, but only when the
/// thread that owns them next allocates or frees: a daemon thread that went idle kept
/// them for good, except where `sys::memory` asks after a boot's spawns or a large reply
/// (a config read with nothing to start kept ~1 KB per program). Returned at once
/// instead; measured, this costs no boot time, and daemon CPU per `status` (its reply's
/// pages faulted in afresh) 0.2 ms more at 1,000 programs, 1 ms at 3,500.
#[cfg(target_env = "musl")]
fn purge_at_once() {
    use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};
    /// `mi_option_purge_delay` in mimalloc 2's `mimalloc.h` (not exported by the crate).
    const PURGE_DELAY: mi_option_t = 15;
    /// Its documented default, checked so that a renumbered option is left alone.
    const DEFAULT_MS: std::ffi::c_long = 10;
    // SAFETY: plain option reads and writes, before this process starts other threads.
    unsafe {
        if mi_option_get(PURGE_DELAY) == DEFAULT_MS {
            mi_option_set(PURGE_DELAY, 0);
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first().map(|a| Path::new(a).file_name().unwrap_or(a.as_os_str()));
    let argv0 = argv0.and_then(|a| a.to_str()).unwrap_or("supervisord");
    let first = args.get(1).and_then(|a| a.to_str());
    let (which, rest) = personality::choose(argv0, first, &args);
    if matches!(which, Personality::Daemon | Personality::EventListener) {
        #[cfg(feature = "client-arena")]
        ALLOCATOR.close();
        #[cfg(target_env = "musl")]
        purge_at_once();
    }
    let code = match which {
        Personality::Daemon => supervisord::daemon::main(rest),
        Personality::Ctl => supervisord::ctl::main(rest),
        Personality::Wekastop => supervisord::wekastop::main(rest),
        Personality::Bridge => supervisord::bridge::main(rest),
        Personality::EventListener => supervisord::listeners::main(rest),
    };
    ExitCode::from(code)
}
