//! `memcpy` and `memmove` for the static musl build, replacing musl's.
//!
//! musl's x86_64 `memcpy` is `rep movsq` whatever the length, and a `rep` instruction
//! takes tens of cycles to start. Rust code copies short strings all the time (a status
//! reply of 100 processes makes thousands of copies of 4 to 30 bytes); with musl's copy
//! that reply took four times as long to build as with glibc's, and `memcpy` was a
//! quarter of the daemon's CPU time. These copy up to 32 bytes with two overlapping
//! loads and stores, up to 4 KiB with a 16-byte loop, and leave longer copies to
//! `rep movsb` (fast on CPUs with ERMS, which is every x86_64 of the last decade).
//!
//! Defining both symbols keeps musl's `memcpy.o` out of the link (its `memmove` is the
//! only user of its internal `__memcpy_fwd`). Written in assembly because a Rust body
//! may be compiled back into a call to `memcpy`.
//!
//! Overlap: every path either loads all its bytes before storing any (up to 32 bytes), or
//! loads the last (forward) or first (backward) 16 bytes up front and then copies in the
//! direction that never overwrites a byte it has yet to read; `rep movsb` is defined as a
//! forward byte-by-byte copy. So the forward path is also `memmove`'s for `dst < src`.

#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
std::arch::global_asm!(
    ".text",
    ".globl memmove",
    ".type memmove,@function",
    ".p2align 4",
    "memmove:",
    "    mov rax, rdi",
    "    mov rcx, rdi",
    "    sub rcx, rsi",
    // dst - src < n (unsigned): dst lies inside the source, copy from the end.
    "    cmp rcx, rdx",
    "    jb 42f",
    "    jmp 30f",
    ".size memmove, .-memmove",
    "",
    ".globl memcpy",
    ".type memcpy,@function",
    ".p2align 4",
    "memcpy:",
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
    ".size memcpy, .-memcpy",
);

#[cfg(test)]
mod tests {
    // These go through whatever `memcpy`/`memmove` the binary links: ours on the musl
    // target (`cargo test --target x86_64-unknown-linux-musl`), libc's elsewhere.

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    const LENS: &[usize] = &[
        0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 100, 255, 4095, 4096, 4097,
        10_000,
    ];

    #[test]
    fn copies_every_length_at_every_alignment() {
        for &n in LENS {
            for off in 0..4 {
                let src = pattern(n + off);
                let mut dst = vec![0xAAu8; n + 8];
                // SAFETY: both ranges are in bounds and distinct allocations.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr().add(off), dst.as_mut_ptr().add(1), n)
                };
                assert_eq!(&dst[1..=n], &src[off..off + n], "n={n} off={off}");
                assert_eq!(dst[0], 0xAA);
                assert!(dst[n + 1..].iter().all(|&b| b == 0xAA), "wrote past the end, n={n}");
            }
        }
    }

    #[test]
    fn overlapping_moves_in_both_directions_match_a_copy_through_a_temporary() {
        for &n in LENS {
            for shift in [1usize, 3, 8, 15, 16, 17, 31, 33, 100] {
                let base = pattern(n + shift);
                for forward in [true, false] {
                    let mut buf = base.clone();
                    let (from, to) = if forward { (shift, 0) } else { (0, shift) };
                    let expect: Vec<u8> = base[from..from + n].to_vec();
                    // SAFETY: both ranges lie inside `buf`.
                    unsafe { std::ptr::copy(buf.as_ptr().add(from), buf.as_mut_ptr().add(to), n) };
                    assert_eq!(&buf[to..to + n], &expect[..], "n={n} shift={shift} fwd={forward}");
                }
            }
        }
    }
}
