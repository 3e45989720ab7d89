//! [`Reports`]: the digest reports nodes publish on a stream's digest
//! subject ([`crate::Subjects::digests`]), as they arrive.

use async_nats::Subscriber;
use futures::StreamExt;
use logkv_runtime::divergence::DigestReport;
use logkv_runtime::shared_log::DigestReports;

/// A subscription to a stream's digest subject.
#[derive(Debug)]
pub struct Reports {
    subscriber: Subscriber,
}

impl Reports {
    pub(crate) fn new(subscriber: Subscriber) -> Self {
        Reports { subscriber }
    }
}

impl DigestReports for Reports {
    /// Skips, with a warning, a message that is not a report: anyone
    /// allowed to publish on the subject can send one.
    async fn next(&mut self) -> Option<DigestReport> {
        loop {
            let message = self.subscriber.next().await?;
            match DigestReport::decode(&message.payload) {
                Ok(report) => return Some(report),
                Err(e) => tracing::warn!(subject = %message.subject, error = %e, "digest report skipped"),
            }
        }
    }
}
