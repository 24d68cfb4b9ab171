//! Giving freed heap memory back to the operating system: glibc keeps freed pages in
//! its arenas, so without this the resident size stays at its peak (after the start-up
//! rebuild of the audience index, after a burst of request bodies).

use flywheel_api::body::BodyBudget;
use flywheel_workers::Shutdown;

/// Hands the memory freed so far back to the operating system (glibc; a no-op elsewhere).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; it takes no pointer from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Gives the memory of request bodies back once a burst of them is over, until
/// `shutdown`: checked every 2 s; trims when more than 8 MiB of bodies were held since
/// the last check and less than a quarter of that is held now.
pub fn spawn_body_memory_release(bodies: BodyBudget, shutdown: Shutdown) {
    const WORTH_IT: usize = 8 << 20;
    tokio::spawn(async move {
        let mut burst = 0usize;
        while shutdown.sleep(std::time::Duration::from_secs(2)).await {
            burst = burst.max(bodies.take_peak());
            if burst > WORTH_IT && bodies.in_use() < burst / 4 {
                burst = 0;
                let _ = tokio::task::spawn_blocking(release_freed_memory).await;
            }
        }
    });
}
