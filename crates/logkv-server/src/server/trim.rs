//! Giving freed memory back to the system. glibc's malloc keeps what a
//! burst of small allocations freed in its per-thread arenas, so a server
//! that held hundreds of megabytes for slow clients keeps them resident
//! after the clients left. When a connection that may have held much ends,
//! [`soon`] asks for a `malloc_trim` a moment later; the ends of many
//! connections within that moment share one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a trim waits for more connections to end.
const GATHER: Duration = Duration::from_millis(200);

static SCHEDULED: AtomicBool = AtomicBool::new(false);

/// Trims the allocator's free memory shortly (on the blocking pool),
/// unless a trim is already on its way.
pub fn soon() {
    if SCHEDULED.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async {
        tokio::time::sleep(GATHER).await;
        SCHEDULED.store(false, Ordering::Release);
        // SAFETY: malloc_trim only walks the allocator's own free lists.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    });
}
