//! Ticks: an empty entry this node appends when the log has been idle for
//! `expiry_tick_ms`, while some key has an expiry, so log time — what apply
//! judges expiry by — advances without writes and the expiry sweep at the
//! start of each entry deletes expired keys on time (docs/expiry.md,
//! "Ticks"). An empty entry changes no access-control fact or result, and
//! no value but those the sweep deletes, as any entry would; several nodes
//! ticking at once are harmless. Ticks stop once no key has an expiry.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::shared::Shared;

/// Ticks until shutdown; returns at once if ticks are off.
pub async fn run(shared: Arc<Shared>) {
    let idle_ms = shared.config.expiry_tick_ms;
    if idle_ms == 0 {
        return;
    }
    let every = Duration::from_millis(idle_ms);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shared.shutdown.cancelled() => return,
        }
        let node = &shared.node;
        let idle = now_ms().saturating_sub(node.applied_log_time_ms()) >= idle_ms;
        if !idle || !node.has_queued_expiries() || shared.not_serving().is_some() {
            continue;
        }
        if let Err(e) = shared.append(shared.identity.clone(), Vec::new()).await {
            tracing::debug!(error = %e, "tick not appended");
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
