//! `memcpy` and `memmove` for the static musl build, replacing musl's (cargo feature
//! `fast-memcpy`, which the release build enables).
//!
//! musl's x86_64 `memcpy` is `rep movsq` whatever the length, and a `rep` instruction
//! takes tens of cycles to start. Rust code copies short strings all the time (a status
//! reply of 100 processes makes thousands of copies of 4 to 30 bytes); with musl's copy
//! that reply took four times as long to build as with glibc's, and `memcpy` was a
//! quarter of the daemon's CPU time. These copy up to 32 bytes with two overlapping
//! loads and stores, up to 4 KiB with a 16-byte loop, and leave longer copies to
//! `rep movsb` (fast on CPUs with ERMS, which is every x86_64 of the last decade).
//!
//! The code is assembled under its own names (`supervisord_memcpy`/`_memmove`), so unit
//! tests compare it with a byte loop on any x86_64 target; with the feature on musl,
//! `memcpy` and `memmove` are defined as those names. Defining both symbols keeps musl's
//! `memcpy.o` out of the link (its `memmove` is the only user of its internal
//! `__memcpy_fwd`). Written in assembly because a Rust body may be compiled back into a
//! call to `memcpy`.
//!
//! Overlap: every path either loads all its bytes before storing any (up to 32 bytes), or
//! loads the last (forward) or first (backward) 16 bytes up front and then copies in the
//! direction that never overwrites a byte it has yet to read; `rep movsb` is defined as a
//! forward byte-by-byte copy. So the forward path is also `memmove`'s for `dst < src`.

std::arch::global_asm!(
    ".text",
    ".globl supervisord_memmove",
    ".hidden supervisord_memmove",
    ".type supervisord_memmove,@function",
    ".p2align 4",
    "supervisord_memmove:",
    "    mov rax, rdi",
    "    mov rcx, rdi",
    "    sub rcx, rsi",
    // dst - src < n (unsigned): dst lies inside the source, copy from the end.
    "    cmp rcx, rdx",
    "    jb 42f",
    "    jmp 30f",
    ".size supervisord_memmove, .-supervisord_memmove",
    "",
    ".globl supervisord_memcpy",
    ".hidden supervisord_memcpy",
    ".type supervisord_memcpy,@function",
    ".p2align 4",
    "supervisord_memcpy:",
    "    mov rax, rdi",
    "30:",
    "    cmp rdx, 16",
    "    ja 35f",
    "    cmp edx, 8",
    "    jb 32f",
    "    mov rcx, [rsi]",
    "    mov r8, [rsi + rdx - 8]",
    "    mov [rdi], rcx",
    "    mov [rdi + rdx - 8], r8",
    "    ret",
    "32:",
    "    cmp edx, 4",
    "    jb 33f",
    "    mov ecx, [rsi]",
    "    mov r8d, [rsi + rdx - 4]",
    "    mov [rdi], ecx",
    "    mov [rdi + rdx - 4], r8d",
    "    ret",
    "33:",
    "    test edx, edx",
    "    je 34f",
    "    movzx ecx, byte ptr [rsi]",
    "    movzx r8d, byte ptr [rsi + rdx - 1]",
    "    mov r10, rdx",
    "    shr r10, 1",
    "    movzx r9d, byte ptr [rsi + r10]",
    "    mov [rdi], cl",
    "    mov [rdi + rdx - 1], r8b",
    "    mov [rdi + r10], r9b",
    "34:",
    "    ret",
    "35:",
    "    cmp rdx, 32",
    "    ja 36f",
    "    movups xmm0, [rsi]",
    "    movups xmm1, [rsi + rdx - 16]",
    "    movups [rdi], xmm0",
    "    movups [rdi + rdx - 16], xmm1",
    "    ret",
    "36:",
    "    cmp rdx, 4096",
    "    jae 38f",
    // The last 16 bytes first: the loop may overwrite them when dst < src.
    "    movups xmm1, [rsi + rdx - 16]",
    "    lea r8, [rdi + rdx - 16]",
    "    mov rcx, rdx",
    "37:",
    "    movups xmm0, [rsi]",
    "    movups [rdi], xmm0",
    "    add rsi, 16",
    "    add rdi, 16",
    "    sub rcx, 16",
    "    cmp rcx, 16",
    "    ja 37b",
    "    movups [r8], xmm1",
    "    ret",
    "38:",
    "    mov rcx, rdx",
    "    rep movsb",
    "    ret",
    "",
    // Backward (memmove with src < dst < src + n).
    "42:",
    "    cmp rdx, 32",
    "    jbe 30b",
    // The first 16 bytes first: the loop may overwrite them.
    "    movups xmm1, [rsi]",
    "    mov r8, rdi",
    "    lea rsi, [rsi + rdx - 16]",
    "    lea rdi, [rdi + rdx - 16]",
    "    mov rcx, rdx",
    "43:",
    "    movups xmm0, [rsi]",
    "    movups [rdi], xmm0",
    "    sub rsi, 16",
    "    sub rdi, 16",
    "    sub rcx, 16",
    "    cmp rcx, 16",
    "    ja 43b",
    "    movups [r8], xmm1",
    "    ret",
    ".size supervisord_memcpy, .-supervisord_memcpy",
);

// The C library's symbols are these functions. Same module, so the same object file.
#[cfg(all(feature = "fast-memcpy", target_env = "musl"))]
std::arch::global_asm!(
    ".globl memcpy",
    ".type memcpy,@function",
    ".set memcpy, supervisord_memcpy",
    ".globl memmove",
    ".type memmove,@function",
    ".set memmove, supervisord_memmove",
);

// Declared for the tests, which call the code under its own names.
#[cfg(test)]
unsafe extern "C" {
    fn supervisord_memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
    fn supervisord_memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    /// The reference: `memmove` as a byte loop through a temporary.
    unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
        // SAFETY: the caller's contract is memcpy's.
        unsafe { supervisord_memcpy(dst, src, n) };
    }

    unsafe fn move_bytes(dst: *mut u8, src: *const u8, n: usize) {
        // SAFETY: the caller's contract is memmove's.
        unsafe { supervisord_memmove(dst, src, n) };
    }

    fn by_bytes(buf: &mut [u8], from: usize, to: usize, n: usize) {
        let tmp: Vec<u8> = buf[from..from + n].to_vec();
        for (i, b) in tmp.into_iter().enumerate() {
            buf[to + i] = b;
        }
    }

    /// Lengths around every size class the code switches at, and some long ones.
    fn len() -> impl Strategy<Value = usize> {
        prop_oneof![4 => 0usize..=64, 2 => 64usize..=5000, 1 => prop_oneof![Just(4095usize), Just(4096), Just(4097), 5000usize..=20_000]]
    }

    const LENS: &[usize] = &[
        0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 100, 255, 4095, 4096, 4097,
        10_000,
    ];

    proptest! {
        #[test]
        fn copy_matches_a_byte_loop(n in len(), src_off in 0usize..64, dst_off in 0usize..64) {
            let src = pattern(n + src_off);
            let mut got = vec![0xAAu8; n + dst_off + 64];
            let mut want = got.clone();
            want[dst_off..dst_off + n].copy_from_slice(&src[src_off..src_off + n]);
            // SAFETY: both ranges are in bounds of distinct allocations.
            unsafe { copy(got.as_mut_ptr().add(dst_off), src.as_ptr().add(src_off), n) };
            prop_assert_eq!(got, want);
        }

        #[test]
        fn move_matches_a_byte_loop_for_any_overlap(
            n in len(), from in 0usize..200, to in 0usize..200,
        ) {
            let mut got = pattern(n + 200);
            let mut want = got.clone();
            by_bytes(&mut want, from, to, n);
            // SAFETY: both ranges lie inside `got`.
            unsafe { move_bytes(got.as_mut_ptr().add(to), got.as_ptr().add(from), n) };
            prop_assert_eq!(got, want);
        }

        #[test]
        fn memmove_forward_path_is_memcpy_safe_for_dst_below_src(
            n in len(), shift in 1usize..200,
        ) {
            // memcpy is also the forward path of memmove: dst < src overlaps are fine.
            let mut got = pattern(n + shift);
            let mut want = got.clone();
            by_bytes(&mut want, shift, 0, n);
            // SAFETY: both ranges lie inside `got`.
            unsafe { supervisord_memcpy(got.as_mut_ptr(), got.as_ptr().add(shift), n) };
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn every_boundary_length_in_both_directions() {
        for &n in LENS {
            for shift in [0usize, 1, 3, 8, 15, 16, 17, 31, 33, 100] {
                for (from, to) in [(shift, 0), (0, shift)] {
                    let mut got = pattern(n + shift);
                    let mut want = got.clone();
                    by_bytes(&mut want, from, to, n);
                    // SAFETY: both ranges lie inside `got`.
                    unsafe { move_bytes(got.as_mut_ptr().add(to), got.as_ptr().add(from), n) };
                    assert_eq!(got, want, "n={n} from={from} to={to}");
                }
            }
        }
    }
}
