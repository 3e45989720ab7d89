//! [`DigestBoard`]: where the nodes of an in-process log ([`MemLog`],
//! [`FileEntryLog`]) publish their digest reports — in memory, since every
//! node of such a log is in the process that holds it.
//!
//! [`MemLog`]: super::MemLog
//! [`FileEntryLog`]: super::FileEntryLog

use tokio::sync::broadcast;

use super::DigestReports;
use crate::divergence::DigestReport;

/// Reports a slow reader may be behind before it misses some.
const BACKLOG: usize = 1024;

/// The reports published on one log.
#[derive(Debug)]
pub struct DigestBoard {
    sender: broadcast::Sender<DigestReport>,
}

impl Default for DigestBoard {
    fn default() -> Self {
        DigestBoard { sender: broadcast::channel(BACKLOG).0 }
    }
}

impl DigestBoard {
    /// Hands `report` to every reader there is now.
    pub fn publish(&self, report: &DigestReport) {
        // No reader is not an error: nobody is there to compare.
        let _ = self.sender.send(report.clone());
    }

    /// The reports published from now on.
    pub fn reports(&self) -> BoardReports {
        BoardReports(self.sender.subscribe())
    }
}

/// A reader of a [`DigestBoard`].
#[derive(Debug)]
pub struct BoardReports(broadcast::Receiver<DigestReport>);

impl DigestReports for BoardReports {
    async fn next(&mut self) -> Option<DigestReport> {
        loop {
            match self.0.recv().await {
                Ok(report) => return Some(report),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
