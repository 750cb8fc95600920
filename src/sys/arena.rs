//! A bump allocator in front of the process allocator, for the short-lived clients
//! (cargo feature `client-arena`, which the release build enables).
//!
//! Most of a `supervisorctl status` run is page faults (ARCHITECTURE, "client start-up is
//! the budget"). A general allocator starts every size class on a page of its own, so a
//! client making a few hundred allocations of forty sizes touches forty-odd pages. Bumping
//! through one zero-filled region touches pages in order, one per 4 KiB allocated. Freed
//! memory is reused only when it was the last allocation (stack order, which is what a
//! growing `Vec` or `String` and most temporaries look like); the rest is given up, which a
//! process that lives for a millisecond does not notice. When the region is full, or once
//! it is closed, allocations go to the inner allocator, so `tail -f` running for days costs
//! at most the region's megabyte.
//!
//! The daemon and the event listeners live long and [`Arena::close`] it first thing; they
//! keep the few allocations made before that (the argument vector).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
// Release/Acquire throughout: a block given back by one thread (the CAS that moves `next`
// down) may be handed out next by another, which must see the first thread's last writes
// to it as done.
use std::sync::atomic::{
    AtomicBool, AtomicUsize, Ordering::AcqRel, Ordering::Acquire, Ordering::Release,
};

/// Bytes in the region. It is `.bss`: pages nobody touches cost nothing.
const SIZE: usize = 1 << 20;

#[repr(C, align(4096))]
struct Region(UnsafeCell<[u8; SIZE]>);

// SAFETY: the region's bytes are only reached through pointers `Arena` hands out, and an
// atomic bump hands out disjoint ranges.
unsafe impl Sync for Region {}

static REGION: Region = Region(UnsafeCell::new([0; SIZE]));

/// The global allocator: bumps through [`REGION`] while open, else defers to `A`.
///
/// All-zero when constructed (both atomics start at 0/false), so the static lives in
/// `.bss` too.
pub struct Arena<A> {
    inner: A,
    /// Offset of the first free byte of the region.
    next: AtomicUsize,
    closed: AtomicBool,
}

impl<A> Arena<A> {
    /// An open arena in front of `inner`.
    pub const fn new(inner: A) -> Arena<A> {
        Arena { inner, next: AtomicUsize::new(0), closed: AtomicBool::new(false) }
    }

    /// From now on every allocation goes to the inner allocator (for long-lived processes,
    /// which free in any order). Memory already in the region stays valid.
    pub fn close(&self) {
        self.closed.store(true, Release);
    }

    /// Bytes of the region handed out so far.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.next.load(Acquire)
    }

    fn base() -> *mut u8 {
        REGION.0.get().cast::<u8>()
    }

    /// The region offset of `ptr`, when the region holds it.
    fn offset(ptr: *mut u8) -> Option<usize> {
        let off = (ptr as usize).wrapping_sub(Self::base() as usize);
        (off < SIZE).then_some(off)
    }

    /// Claims `layout` from the region, or `None` when closed or full.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if self.closed.load(Acquire) {
            return None;
        }
        let base = Self::base() as usize;
        let mut cur = self.next.load(Acquire);
        loop {
            // `align` is a power of two; the region's address is 4 KiB aligned.
            let start = (base + cur).checked_next_multiple_of(layout.align())? - base;
            let end = start.checked_add(layout.size())?;
            if end > SIZE {
                return None;
            }
            match self.next.compare_exchange_weak(cur, end, AcqRel, Acquire) {
                Ok(_) => return Some(Self::base().wrapping_add(start)),
                Err(now) => cur = now,
            }
        }
    }
}

// Not inlined: LTO otherwise copies the bump into every allocation site (+250 KB of text,
// which is resident memory and client page faults).
// SAFETY: region blocks are disjoint (atomic bump), aligned as asked, and stay valid for
// the life of the process; a block is only resized in place while it is the last one
// (compare-exchange on its end); everything else is the inner allocator's contract.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Arena<A> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's contract, passed on.
            None => unsafe { self.inner.alloc(layout) },
        }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => {
                // SAFETY: `p` is a fresh block of `layout.size()` bytes. Reused bytes may be
                // dirty, so zero them even though most of the region is still untouched.
                unsafe { p.write_bytes(0, layout.size()) };
                p
            }
            // SAFETY: the caller's contract, passed on.
            None => unsafe { self.inner.alloc_zeroed(layout) },
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Self::offset(ptr) {
            // Only the last block goes back; the others are abandoned.
            Some(off) => {
                let _ = self.next.compare_exchange(off + layout.size(), off, AcqRel, Acquire);
            }
            // SAFETY: not a region block, so the inner allocator made it.
            None => unsafe { self.inner.dealloc(ptr, layout) },
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(off) = Self::offset(ptr) else {
            // SAFETY: not a region block, so the inner allocator made it.
            return unsafe { self.inner.realloc(ptr, layout, new_size) };
        };
        let end = off + layout.size();
        let fits = off.checked_add(new_size).filter(|&e| e <= SIZE);
        if let Some(new_end) = fits.filter(|_| !self.closed.load(Acquire)) {
            // The last block grows or shrinks where it is.
            if self.next.compare_exchange(end, new_end, AcqRel, Acquire).is_ok() {
                return ptr;
            }
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (the caller's
        // contract for `realloc`).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: non-zero size (it exceeds the old one).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are at least `layout.size()` long and distinct.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
            // SAFETY: `ptr` is a live block of `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    // The region is process-wide, so these tests take their own `Arena` over it only
    // through fresh instances whose `next` starts past whatever others used: each test
    // moves `next` to a private offset first.
    fn arena_at(off: usize) -> Arena<System> {
        let a = Arena::new(System);
        a.next.store(off, Release);
        a
    }

    fn l(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn bumps_aligned_and_disjoint_and_gives_back_only_the_last_block() {
        let a = arena_at(SIZE - 4096);
        // SAFETY: every block is used within its layout and freed with it.
        unsafe {
            let p = a.alloc(l(3, 1));
            let q = a.alloc(l(8, 8));
            assert_eq!(Arena::<System>::offset(p), Some(SIZE - 4096));
            assert_eq!(q as usize % 8, 0);
            assert!(q as usize >= p as usize + 3);
            a.dealloc(p, l(3, 1)); // not last: abandoned
            assert_eq!(a.used(), Arena::<System>::offset(q).unwrap() + 8);
            a.dealloc(q, l(8, 8)); // last: given back
            assert_eq!(a.used(), Arena::<System>::offset(q).unwrap());
        }
    }

    #[test]
    fn the_last_block_grows_in_place_and_others_move_with_their_bytes() {
        let a = arena_at(SIZE - 8192);
        // SAFETY: every block is used within its layout and freed with it.
        unsafe {
            let p = a.alloc(l(16, 8));
            p.write_bytes(7, 16);
            let p2 = a.realloc(p, l(16, 8), 64);
            assert_eq!(p2, p, "last block grows where it is");
            let q = a.alloc(l(4, 4));
            let p3 = a.realloc(p2, l(64, 8), 128);
            assert_ne!(p3, p2, "no longer last: moves");
            assert_eq!(std::slice::from_raw_parts(p3, 16), &[7u8; 16]);
            assert_eq!(a.realloc(q, l(4, 4), 2), q, "shrinking never moves");
        }
    }

    #[test]
    fn full_or_closed_falls_back_to_the_inner_allocator_and_frees_there() {
        let a = arena_at(SIZE - 16);
        // SAFETY: every block is used within its layout and freed with it.
        unsafe {
            let big = a.alloc(l(64, 8));
            assert_eq!(Arena::<System>::offset(big), None, "does not fit: inner");
            let grown = {
                let p = a.alloc(l(8, 8));
                assert!(Arena::<System>::offset(p).is_some());
                a.realloc(p, l(8, 8), 4096)
            };
            assert_eq!(Arena::<System>::offset(grown), None, "outgrew the region: inner");
            a.dealloc(grown, l(4096, 8));
            a.dealloc(big, l(64, 8));
            a.close();
            let after = a.alloc(l(1, 1));
            assert_eq!(Arena::<System>::offset(after), None);
            a.dealloc(after, l(1, 1));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc { size: usize, align_log2: u32, zeroed: bool },
        Free(usize),
        Realloc(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let size = prop_oneof![4 => 0usize..64, 2 => 64usize..2048, 1 => 2048usize..4096];
        prop_oneof![
            3 => (size.clone(), 0u32..7, any::<bool>())
                .prop_map(|(size, align_log2, zeroed)| Op::Alloc { size, align_log2, zeroed }),
            2 => any::<usize>().prop_map(Op::Free),
            2 => (any::<usize>(), size).prop_map(|(i, s)| Op::Realloc(i, s)),
        ]
    }

    /// A live block: where, its layout, and the byte it is filled with.
    struct Block {
        ptr: *mut u8,
        layout: Layout,
        fill: u8,
    }

    fn holds(b: &Block, len: usize) -> bool {
        // SAFETY: `b` is live and at least `len` long.
        unsafe { std::slice::from_raw_parts(b.ptr, len) }.iter().all(|&x| x == b.fill)
    }

    use proptest::prelude::*;

    proptest! {
        // Random allocation sequences from the start of the region (the other tests use its
        // end; a case uses well under half of it). After every step each live block still
        // holds its bytes, is aligned as asked and overlaps no other live block.
        #[test]
        fn random_sequences_keep_contents_and_never_overlap(ops in prop::collection::vec(op(), 1..60)) {
            let a = arena_at(0);
            let mut live: Vec<Block> = Vec::new();
            let mut fill = 0u8;
            for op in ops {
                fill = fill.wrapping_add(1);
                match op {
                    Op::Alloc { size, align_log2, zeroed } => {
                        let layout = l(size.max(1), 1 << align_log2);
                        // SAFETY: non-zero size.
                        let ptr = unsafe {
                            if zeroed { a.alloc_zeroed(layout) } else { a.alloc(layout) }
                        };
                        prop_assert!(!ptr.is_null());
                        prop_assert_eq!(ptr as usize % layout.align(), 0);
                        if zeroed {
                            // SAFETY: fresh block of `layout.size()` bytes.
                            let bytes = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
                            prop_assert!(bytes.iter().all(|&x| x == 0));
                        }
                        // SAFETY: fresh block of `layout.size()` bytes.
                        unsafe { ptr.write_bytes(fill, layout.size()) };
                        live.push(Block { ptr, layout, fill });
                    }
                    Op::Free(i) if !live.is_empty() => {
                        let b = live.swap_remove(i % live.len());
                        prop_assert!(holds(&b, b.layout.size()));
                        // SAFETY: live block freed with its layout.
                        unsafe { a.dealloc(b.ptr, b.layout) };
                    }
                    Op::Realloc(i, size) if !live.is_empty() => {
                        let at = i % live.len();
                        let b = &mut live[at];
                        let new_size = size.max(1);
                        // SAFETY: live block with its layout; non-zero new size.
                        let ptr = unsafe { a.realloc(b.ptr, b.layout, new_size) };
                        prop_assert!(!ptr.is_null());
                        prop_assert_eq!(ptr as usize % b.layout.align(), 0);
                        let kept = b.layout.size().min(new_size);
                        b.ptr = ptr;
                        b.layout = l(new_size, b.layout.align());
                        prop_assert!(holds(b, kept), "realloc kept the first {} bytes", kept);
                        // SAFETY: the block is now `new_size` long.
                        unsafe { ptr.write_bytes(b.fill, new_size) };
                    }
                    Op::Free(_) | Op::Realloc(..) => {}
                }
                for (i, b) in live.iter().enumerate() {
                    prop_assert!(holds(b, b.layout.size()), "block {} lost its bytes", i);
                    for c in &live[i + 1..] {
                        let (x, y) = (b.ptr as usize, c.ptr as usize);
                        prop_assert!(
                            x + b.layout.size() <= y || y + c.layout.size() <= x,
                            "blocks overlap"
                        );
                    }
                }
            }
            for b in live {
                // SAFETY: live block freed with its layout.
                unsafe { a.dealloc(b.ptr, b.layout) };
            }
            prop_assert!(a.used() < SIZE / 2);
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_even_where_the_region_was_reused() {
        let a = arena_at(SIZE - 12288);
        // SAFETY: every block is used within its layout and freed with it.
        unsafe {
            let p = a.alloc(l(32, 1));
            p.write_bytes(0xff, 32);
            a.dealloc(p, l(32, 1));
            let z = a.alloc_zeroed(l(32, 1));
            assert_eq!(z, p);
            assert_eq!(std::slice::from_raw_parts(z, 32), &[0u8; 32]);
        }
    }
}
