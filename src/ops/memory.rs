//! Keeping the process's memory close to what it holds.
//!
//! With glibc's allocator, a multi-threaded process gets one heap arena per thread that ever
//! contended, and freed memory stays mapped until trimmed; after the initial list of 10,000
//! objects a process holds noticeably more resident memory than its live data. Two arenas are
//! plenty for an I/O-bound operator, and a trim after bursts returns the rest.

/// Caps glibc's heap arenas. Call first thing in `main`, before any thread exists.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap memory to the operating system (after start-up and after sweeps).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the heap holds, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Heap {
    /// Live allocations.
    pub in_use: u64,
    /// Freed but still held by the allocator (fragmentation, or not trimmed yet).
    pub free: u64,
}

/// The heap's state, where the allocator tells (glibc).
pub fn heap() -> Option<Heap> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics (all arenas).
        let info = unsafe { libc::mallinfo2() };
        Some(Heap {
            in_use: (info.uordblks + info.hblkhd) as u64,
            free: info.fordblks as u64,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}
