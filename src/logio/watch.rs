//! Readiness of the child output pipes: one epoll descriptor and one thread for all of
//! them, instead of tokio's reactor.
//!
//! Every running program has two output pipes watched for its whole life. tokio keeps a
//! 256-byte record per registered descriptor (aligned to a pair of cache lines), an eighth
//! of the daemon's memory at 1,000 programs. Here a pipe costs a 32-byte [`Slot`] in a
//! table indexed by its descriptor number, and the "pipes" thread sleeps in `epoll_wait`
//! for all of them: it wakes only when output arrives, marks the pipe's slot ready and
//! wakes the task that reads it. An idle daemon never wakes it.
//!
//! Registrations are one-shot (`EPOLLONESHOT`): the thread hears of a pipe once per round
//! of reads, not once per write of a chatty child; [`Pipe::try_read`] re-arms the pipe
//! when a read finds it empty (an arm on a pipe that already holds data fires at once, so
//! nothing written in between is missed).
//!
//! The table is indexed by descriptor number, which the kernel hands to one open file at
//! a time. A stale event for a closed descriptor whose number was reused only marks the
//! new pipe ready for a read that finds nothing: a spurious wake, never a lost one.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// Slots are allocated in chunks of this many descriptors, when one of them is first
/// watched, and kept: the table only grows to the highest descriptor a pipe has had.
const CHUNK: usize = 64;
/// Descriptors up to 2^20 (Linux's default `nr_open`, the most `RLIMIT_NOFILE` allows).
const CHUNKS: usize = (1 << 20) / CHUNK;

/// One descriptor's readiness: set by the watch thread, taken by the reader.
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

/// The epoll descriptor, and its thread started: once per process, on first use.
fn epoll() -> io::Result<&'static Epoll> {
    static WATCH: OnceLock<Result<Epoll, Errno>> = OnceLock::new();
    let watch = WATCH.get_or_init(|| {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let fd = epoll.0.try_clone().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
        let waiter = Epoll(fd);
        std::thread::Builder::new()
            .name("pipes".into())
            .spawn(move || watch(&waiter))
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)))?;
        Ok(epoll)
    });
    watch.as_ref().map_err(|e| io::Error::from(*e))
}

/// The watch thread: marks and wakes each pipe that became readable (or hung up).
fn watch(epoll: &Epoll) {
    let mut events = [EpollEvent::empty(); 64];
    loop {
        match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => {
                for event in events.iter().take(n) {
                    let fd = RawFd::try_from(event.data()).ok();
                    if let Some(slot) = fd.and_then(slot) {
                        slot.ready.store(true, Ordering::Release);
                        slot.waker.wake();
                    }
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => {
                // Cannot happen with a valid descriptor and buffer; pumps would stall.
                tracing::error!("output pipes: epoll_wait failed: {e}");
                return;
            }
        }
    }
}

fn interest(fd: RawFd) -> EpollEvent {
    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, fd as u64)
}

/// The read end of a child's output pipe, non-blocking and watched.
pub struct Pipe {
    fd: OwnedFd,
    slot: &'static Slot,
    /// A read may find data: set until a read finds the pipe empty, and again when the
    /// watch thread reports it.
    maybe_ready: bool,
}

impl Pipe {
    /// Checks that `fd` is a pipe, makes it non-blocking and starts watching it.
    pub fn new(fd: OwnedFd) -> io::Result<Pipe> {
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
        epoll()?.add(&fd, interest(raw))?;
        Ok(Pipe { fd, slot, maybe_ready: true })
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

    /// One `read`; `WouldBlock` when the pipe is empty, which re-arms the watch.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match nix::unistd::read(&self.fd, buf) {
            Ok(n) => Ok(n),
            Err(Errno::EAGAIN) => {
                self.maybe_ready = false;
                let raw = self.fd.as_raw_fd();
                epoll()?.modify(&self.fd, &mut interest(raw))?;
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
        if let Ok(epoll) = epoll() {
            let _ = epoll.delete(&self.fd);
        }
        drop(self.slot.waker.take());
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::io::Write;
    use std::time::Duration;

    use super::*;

    fn pipe() -> (Pipe, std::fs::File) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        (Pipe::new(r).unwrap(), std::fs::File::from(w))
    }

    /// Reads what is there now; None once the pipe is empty (and re-armed).
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

    #[tokio::test]
    async fn output_written_while_waiting_wakes_the_reader() {
        let (mut p, mut w) = pipe();
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

    #[tokio::test]
    async fn output_written_between_the_empty_read_and_the_wait_is_not_missed() {
        let (mut p, mut w) = pipe();
        assert_eq!(drain(&mut p), None);
        w.write_all(b"x").unwrap();
        assert!(ready(&mut p).await);
        assert_eq!(drain(&mut p), Some(b"x".to_vec()));
    }

    #[tokio::test]
    async fn the_writer_closing_is_reported_as_the_end() {
        let (mut p, w) = pipe();
        assert_eq!(drain(&mut p), None);
        drop(w);
        assert!(ready(&mut p).await);
        assert_eq!(drain(&mut p), Some(Vec::new()), "EOF");
    }

    #[tokio::test]
    async fn a_reused_descriptor_number_starts_afresh() {
        // Dropped with data unread and a report pending; the next pipe (usually on the
        // same number) reads only its own data and still waits for it.
        let (mut p, mut w) = pipe();
        w.write_all(b"old").unwrap();
        assert!(ready(&mut p).await);
        drop(p);
        drop(w);
        let (mut q, mut w2) = pipe();
        assert_eq!(drain(&mut q), None);
        w2.write_all(b"new").unwrap();
        assert!(ready(&mut q).await);
        assert_eq!(drain(&mut q), Some(b"new".to_vec()));
    }

    #[test]
    fn only_pipes_are_watched() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let err = Pipe::new(f.into()).err().expect("a character device is refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
