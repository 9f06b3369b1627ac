//! Tuning the process to the system it runs on: glibc's allocator settings, made once at start,
//! and giving free memory back to the system where a stage has just dropped a large buffer.
//! Elsewhere (another libc or OS) both do nothing.

/// Two settings of glibc's allocator, to be made before any thread starts.
///
/// - One arena. glibc gives threads that allocate at the same time arenas of their own and keeps
///   each arena's high-water mark, so the fetching threads' peak and the writer thread's add up
///   in the resident set although they never hold much at once. One arena keeps the peak to what
///   is live, at the same CPU time (the threads allocate in large blocks, rarely enough not to
///   contend).
/// - No trimming behind the program's back, and a fixed mmap threshold. By default glibc hands
///   the top of the heap back to the system as soon as 128 KiB or more of it is free, and maps
///   each block past a threshold that moves, so the buffers of every batch and page were faulted
///   in (and zeroed by the kernel) again and again; these settings remove most of those page
///   faults at the same peak (docs/measurements.md). The exporter gives memory back
///   itself where it matters, with [`release_free_memory`] after each partition and each page
///   handed over.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "glibc's `mallopt`; see SAFETY below")]
pub fn tune_allocator() {
    // SAFETY: `mallopt` only sets allocator parameters; `main` calls this before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        // The largest threshold glibc accepts (half its 64 MiB heap size).
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}

/// Gives the allocator's free pages back to the system once a partition's or a page's buffers
/// are dropped, so that the next ones do not land beside them: the peak stays what is live at once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "glibc's `malloc_trim`; see SAFETY below")]
pub fn release_free_memory() {
    // SAFETY: `malloc_trim` only returns free memory to the system; it touches no live block.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}
