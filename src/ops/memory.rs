//! Keeping the process's memory close to what it holds.
//!
//! With glibc's allocator, a multi-threaded process gets one heap arena per thread that ever
//! contended, and freed memory stays mapped until trimmed; after a large initial list a process
//! holds noticeably more resident memory than its live data. One arena is
//! plenty for an I/O-bound operator, large buffers are mapped apart from the heap, and trims
//! after bursts return the rest.

/// Tunes glibc's allocator for a long-lived, I/O-bound process. Call first thing in `main`,
/// before any thread exists.
///
/// - One heap arena: threads then share free memory instead of each keeping its own
///   (contention does not matter for a process that mostly waits).
/// - A fixed 256 KiB mmap threshold: a list's body or a growing table above that is mapped on
///   its own and unmapped when freed. Left dynamic, glibc raises the threshold after the first
///   such buffer is freed and later ones come from the heap, leaving holes between the cached
///   objects allocated while they were decoded.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
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

/// Freed heap the allocator may keep before [`keep_trimmed`] gives it back.
const KEEP_FREE: u64 = 4 << 20;

/// Gives freed heap back to the operating system whenever the allocator holds more than
/// [`KEEP_FREE`] of it, and more than after the previous trim (checked every 10 s). Bursts of
/// work (the start-up comparison of every object, a sweep, a cold start) free memory that glibc
/// otherwise keeps, more the larger the fleet.
pub async fn keep_trimmed() {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(10));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The least free memory seen since the last trim: pages given back still count as free
    // chunks, so only growth beyond this is memory worth another trim.
    let mut floor = 0;
    loop {
        ticks.tick().await;
        let Some(now) = heap() else {
            return;
        };
        floor = floor.min(now.free);
        if now.free > KEEP_FREE && now.free > floor + KEEP_FREE / 4 {
            trim();
            floor = heap().map_or(0, |after| after.free);
        }
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
