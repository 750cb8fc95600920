//! Readiness of the child output pipes, through one epoll descriptor of our own instead of
//! tokio's reactor.
//!
//! Every running program has two output pipes watched for its whole life. tokio keeps a
//! 256-byte record per registered descriptor (aligned to a pair of cache lines), an eighth
//! of the daemon's memory at 1,000 programs. Here a pipe costs a 32-byte [`Slot`] in a
//! table indexed by its descriptor number, and the epoll descriptor is one registration
//! with the pump runtime ([`drive_on`]): when it turns readable, one task takes the ready
//! pipes from it, marks their slots and wakes their pumps, on the pumps' own thread.
//! Where no runtime drives it (unit tests), a thread of its own sleeps in `epoll_wait`.
//!
//! Registrations are edge-triggered, as tokio's are: a pipe is reported when output
//! arrives, and its reader reads until a read finds it empty before it waits again; the
//! report is a flag in the slot, so one that comes between that read and the wait is not
//! missed. The pump runtime pauses before it sleeps (`coalesce`), and the reports of a
//! pause are taken in one `epoll_wait`.
//!
//! The table is indexed by descriptor number, which the kernel hands to one open file at
//! a time. A stale report for a closed descriptor whose number was reused only marks the
//! new pipe ready for a read that finds nothing: a spurious wake, never a lost one.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::runtime::Handle;

/// Slots are allocated in chunks of this many descriptors, when one of them is first
/// watched, and kept: the table only grows to the highest descriptor a pipe has had.
const CHUNK: usize = 64;
/// Descriptors up to 2^20 (Linux's default `nr_open`, the most `RLIMIT_NOFILE` allows).
const CHUNKS: usize = (1 << 20) / CHUNK;

/// One descriptor's readiness: set by the watch, taken by the reader.
#[derive(Default)]
struct Slot {
    waker: AtomicWaker,
    ready: AtomicBool,
}

static SLOTS: [OnceLock<Box<[Slot; CHUNK]>>; CHUNKS] = [const { OnceLock::new() }; CHUNKS];

fn slot(fd: RawFd) -> Option<&'static Slot> {
    let fd = usize::try_from(fd).ok()?;
    let chunk = SLOTS.get(fd / CHUNK)?;
    let slots = chunk.get_or_init(|| Box::new(std::array::from_fn(|_| Slot::default())));
    slots.get(fd % CHUNK)
}

/// Marks and wakes each pipe reported readable (or hung up).
fn dispatch(events: &[EpollEvent]) {
    for event in events {
        if let Some(slot) = RawFd::try_from(event.data()).ok().and_then(slot) {
            slot.ready.store(true, Ordering::Release);
            slot.waker.wake();
        }
    }
}

/// The process's epoll descriptor for output pipes, and what waits on it.
struct Watch {
    epoll: Epoll,
}

static WATCH: OnceLock<Result<Watch, Errno>> = OnceLock::new();

/// Has `rt` (the daemon's pump runtime) wait for the output pipes: one task there takes
/// their reports, so a pump is woken on its own thread. Call before the first pipe is
/// watched; otherwise the watch has a thread of its own.
pub fn drive_on(rt: &Handle) {
    WATCH.get_or_init(|| Watch::start(Some(rt)));
}

fn watch() -> io::Result<&'static Watch> {
    let watch = WATCH.get_or_init(|| Watch::start(None));
    watch.as_ref().map_err(|e| io::Error::from(*e))
}

/// The epoll descriptor as tokio sees it (a copy of the watch's).
struct Waiter(Epoll);

impl AsRawFd for Waiter {
    fn as_raw_fd(&self) -> RawFd {
        self.0.0.as_raw_fd()
    }
}

impl Watch {
    fn start(rt: Option<&Handle>) -> Result<Watch, Errno> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let copy = || epoll.0.try_clone().map(Epoll).map_err(|e| Errno::from_raw(errno(&e)));
        if let Some(rt) = rt {
            let _entered = rt.enter();
            // SAFETY: the waiter owns its descriptor for as long as it exists.
            let fd =
                unsafe { AsyncFd::register_with_interest(Waiter(copy()?), Interest::READABLE) };
            match fd {
                Ok(fd) => {
                    rt.spawn(drive(fd));
                    return Ok(Watch { epoll });
                }
                Err(e) => tracing::warn!("output pipes: watched by a thread: {e}"),
            }
        }
        let waiter = copy()?;
        std::thread::Builder::new()
            .name("pipes".into())
            .spawn(move || wait_in_thread(&waiter))
            .map_err(|e| Errno::from_raw(errno(&e)))?;
        Ok(Watch { epoll })
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// The runtime's task: takes the reports whenever the epoll descriptor turns readable.
async fn drive(fd: AsyncFd<Waiter>) {
    let mut events = [EpollEvent::empty(); 64];
    loop {
        // Fails only as the runtime shuts down.
        let Ok(mut guard) = fd.readable().await else { return };
        match take(&fd.get_ref().0, &mut events, EpollTimeout::ZERO) {
            Ok(n) if n < events.len() => guard.clear_ready(),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// The watch's own thread, where no runtime drives it.
fn wait_in_thread(epoll: &Epoll) {
    let mut events = [EpollEvent::empty(); 64];
    while let Ok(_) | Err(Errno::EINTR) = take(epoll, &mut events, EpollTimeout::NONE) {}
}

/// Takes up to `events.len()` reports, waiting up to `timeout`, and dispatches them. An
/// error other than `EINTR` cannot happen with a valid descriptor; pumps would stall.
fn take(epoll: &Epoll, events: &mut [EpollEvent], timeout: EpollTimeout) -> Result<usize, Errno> {
    let n = epoll.wait(events, timeout).inspect_err(|e| {
        if *e != Errno::EINTR {
            tracing::error!("output pipes: epoll_wait failed: {e}");
        }
    })?;
    dispatch(events.get(..n).unwrap_or_default());
    Ok(n)
}

fn interest(fd: RawFd) -> EpollEvent {
    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, fd as u64)
}

/// The read end of a child's output pipe, non-blocking and watched.
pub struct Pipe {
    fd: OwnedFd,
    slot: &'static Slot,
    watch: &'static Watch,
    /// A read may find data: set until a read finds the pipe empty, and again when the
    /// watch reports it.
    maybe_ready: bool,
}

impl Pipe {
    /// Checks that `fd` is a pipe, makes it non-blocking and starts watching it.
    pub fn new(fd: OwnedFd) -> io::Result<Pipe> {
        Pipe::on(watch()?, fd)
    }

    fn on(watch: &'static Watch, fd: OwnedFd) -> io::Result<Pipe> {
        let stat = nix::sys::stat::fstat(&fd)?;
        if stat.st_mode & libc::S_IFMT != libc::S_IFIFO {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a pipe"));
        }
        let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags))?;
        let raw = fd.as_raw_fd();
        let slot = slot(raw).ok_or_else(|| io::Error::from_raw_os_error(libc::EMFILE))?;
        // Whatever a previous holder of this descriptor number left.
        slot.ready.store(false, Ordering::Release);
        drop(slot.waker.take());
        watch.epoll.add(&fd, interest(raw))?;
        Ok(Pipe { fd, slot, watch, maybe_ready: true })
    }

    /// Ready when a read may find data or the end; otherwise wakes `cx` when it may.
    pub fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.maybe_ready {
            return Poll::Ready(());
        }
        // Registered before the flag is looked at, so a report in between still wakes us.
        self.slot.waker.register(cx.waker());
        if self.slot.ready.swap(false, Ordering::AcqRel) {
            self.maybe_ready = true;
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// One `read`; `WouldBlock` when the pipe is empty, after which it waits for a report.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match nix::unistd::read(&self.fd, buf) {
            Ok(n) => Ok(n),
            Err(Errno::EAGAIN) => {
                self.maybe_ready = false;
                Err(io::ErrorKind::WouldBlock.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for Pipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // Before the descriptor closes: a copy of it held by a child about to exec would
        // otherwise keep the registration.
        let _ = self.watch.epoll.delete(&self.fd);
        drop(self.slot.waker.take());
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::io::Write;
    use std::time::Duration;

    use super::*;

    /// Each scenario runs against a watch driven by the test's runtime (as the daemon's
    /// pump runtime drives it) and against one with a thread of its own.
    fn watches() -> [&'static Watch; 2] {
        let driven = Watch::start(Some(&Handle::current())).unwrap();
        let threaded = Watch::start(None).unwrap();
        [Box::leak(Box::new(driven)), Box::leak(Box::new(threaded))]
    }

    fn pipe(watch: &'static Watch) -> (Pipe, std::fs::File) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        (Pipe::on(watch, r).unwrap(), std::fs::File::from(w))
    }

    /// Reads what is there now; None once the pipe is empty.
    fn drain(p: &mut Pipe) -> Option<Vec<u8>> {
        let mut buf = [0u8; 64];
        match p.try_read(&mut buf) {
            Ok(n) => Some(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("{e}"),
        }
    }

    async fn ready(p: &mut Pipe) -> bool {
        let wait = poll_fn(|cx| p.poll_read_ready(cx));
        tokio::time::timeout(Duration::from_secs(10), wait).await.is_ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn output_written_while_waiting_wakes_the_reader() {
        for watch in watches() {
            let (mut p, mut w) = pipe(watch);
            assert!(ready(&mut p).await, "a new pipe is read once to find out");
            assert_eq!(drain(&mut p), None);
            let waiting = poll_fn(|cx| Poll::Ready(p.poll_read_ready(cx).is_pending())).await;
            assert!(waiting, "an empty pipe waits");
            for round in 0..3u8 {
                w.write_all(&[b'a' + round]).unwrap();
                assert!(ready(&mut p).await, "round {round}: woken");
                assert_eq!(drain(&mut p), Some(vec![b'a' + round]));
                assert_eq!(drain(&mut p), None);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn output_written_between_the_empty_read_and_the_wait_is_not_missed() {
        for watch in watches() {
            let (mut p, mut w) = pipe(watch);
            assert_eq!(drain(&mut p), None);
            w.write_all(b"x").unwrap();
            assert!(ready(&mut p).await);
            assert_eq!(drain(&mut p), Some(b"x".to_vec()));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn many_pipes_each_wake_their_reader() {
        for watch in watches() {
            // More than one batch of reports (64) at once.
            let mut pipes: Vec<_> = (0..100).map(|_| pipe(watch)).collect();
            for (p, _) in &mut pipes {
                assert_eq!(drain(p), None);
            }
            for (i, (_, w)) in pipes.iter_mut().enumerate() {
                w.write_all(format!("{i}").as_bytes()).unwrap();
            }
            for (i, (p, _)) in pipes.iter_mut().enumerate() {
                assert!(ready(p).await, "pipe {i}");
                assert_eq!(drain(p), Some(format!("{i}").into_bytes()));
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_writer_closing_is_reported_as_the_end() {
        for watch in watches() {
            let (mut p, w) = pipe(watch);
            assert_eq!(drain(&mut p), None);
            drop(w);
            assert!(ready(&mut p).await);
            assert_eq!(drain(&mut p), Some(Vec::new()), "EOF");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_reused_descriptor_number_starts_afresh() {
        for watch in watches() {
            // Dropped with data unread and a report pending; the next pipe (usually on the
            // same number) reads only its own data and still waits for it.
            let (mut p, mut w) = pipe(watch);
            w.write_all(b"old").unwrap();
            assert!(ready(&mut p).await);
            drop(p);
            drop(w);
            let (mut q, mut w2) = pipe(watch);
            assert_eq!(drain(&mut q), None);
            w2.write_all(b"new").unwrap();
            assert!(ready(&mut q).await);
            assert_eq!(drain(&mut q), Some(b"new".to_vec()));
        }
    }

    #[test]
    fn only_pipes_are_watched() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let err = Pipe::new(f.into()).err().expect("a character device is refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
