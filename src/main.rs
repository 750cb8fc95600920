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

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first().map(|a| Path::new(a).file_name().unwrap_or(a.as_os_str()));
    let argv0 = argv0.and_then(|a| a.to_str()).unwrap_or("supervisord");
    let first = args.get(1).and_then(|a| a.to_str());
    let (which, rest) = personality::choose(argv0, first, &args);
    #[cfg(feature = "client-arena")]
    if matches!(which, Personality::Daemon | Personality::EventListener) {
        ALLOCATOR.close();
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
