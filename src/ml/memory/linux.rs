//! glibc Linux: the allocator's own statistics. Declared only for
//! `all(target_os = "linux", target_env = "gnu", not(feature = "portable"))`.

/// Bytes the process has allocated now: glibc's in-use heap (arenas plus
/// mmapped chunks), which, unlike RSS, goes down when a model is freed and
/// is not fooled by the allocator reusing freed pages.
pub(super) fn allocated_bytes() -> u64 {
    // SAFETY: mallinfo2 only reads allocator statistics.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as u64
}
