//! Process-wide memory settings for the long-running agent.

/// One malloc arena for the whole process. glibc gives each thread that
/// allocates concurrently an arena of its own (up to 8 per core), and each
/// keeps its freed pages; the agent's few threads allocate little and
/// rarely at once, so one arena costs nothing in contention and measured
/// ~0.5 MiB less resident memory (BENCHMARKS.md). Call before any thread
/// starts.
pub fn single_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes allocator tunables; called before other
    // threads exist, and a failure (return 0) just leaves the default.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
