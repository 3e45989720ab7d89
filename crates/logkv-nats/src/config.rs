//! Where the shared log is: the servers and the stream.

use std::time::Duration;

use crate::credentials::{Credentials, Tls};

/// How to reach and create the JetStream stream used as the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// Server URLs (`nats://host:port` or `tls://host:port`); the client
    /// connects to one and fails over to the others.
    pub servers: Vec<String>,
    /// The stream's name; its subjects are `NAME.>`.
    pub stream: String,
    /// Replicas when the stream is created (1 to 5; JetStream's Raft
    /// group). An existing stream keeps its own; a different one asked for
    /// is an error rather than a silent surprise.
    pub replicas: usize,
    /// How long an append is retried (through leader elections and
    /// reconnections) before it fails. Retries are idempotent for as long
    /// as the stream's duplicate window, which is set above this.
    pub append_deadline: Duration,
    /// TLS towards the servers; required with `tls://` URLs.
    pub tls: Tls,
    /// What the client presents to the servers.
    pub credentials: Credentials,
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The `--log` value is not a `nats://` or `tls://` URL list.
    #[error("bad log URL {url:?}: {why}")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Stream names are subject tokens: letters, digits, `-` and `_`.
    #[error("bad stream name {0:?}: use letters, digits, '-' and '_' (at most 64)")]
    BadStreamName(String),
    /// JetStream replicates a stream 1 to 5 times.
    #[error("replicas must be 1 to 5, not {0}")]
    BadReplicas(usize),
}

impl NatsConfig {
    /// A configuration from `--log nats://HOST:PORT[,HOST:PORT...]`, or
    /// `tls://...` to require TLS (later entries may omit the scheme, not
    /// change it), the stream name and replicas; no TLS files and no
    /// credentials.
    pub fn new(log: &str, stream: &str, replicas: usize) -> Result<NatsConfig, ConfigError> {
        let bad = |why| ConfigError::BadUrl { url: log.to_string(), why };
        let (scheme, rest) = ["nats://", "tls://"]
            .into_iter()
            .find_map(|scheme| Some((scheme, log.strip_prefix(scheme)?)))
            .ok_or(bad("it must start with nats:// or tls://"))?;
        let servers = rest
            .split(',')
            .map(|s| {
                let s = s.trim().strip_prefix(scheme).unwrap_or(s.trim());
                if s.contains('@') {
                    // In the URL, they would show wherever the servers do.
                    return Err(bad("credentials go in the nats_* settings, not in the URL"));
                }
                match s.rsplit_once(':') {
                    Some((host, port))
                        if !host.is_empty() && !host.contains("://") && port.parse::<u16>().is_ok() =>
                    {
                        Ok(format!("{scheme}{s}"))
                    }
                    _ => Err(bad("each server is HOST:PORT, all with the first one's scheme")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let name_ok = !stream.is_empty()
            && stream.len() <= 64
            && stream.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(ConfigError::BadStreamName(stream.to_string()));
        }
        if !(1..=5).contains(&replicas) {
            return Err(ConfigError::BadReplicas(replicas));
        }
        Ok(NatsConfig {
            servers,
            stream: stream.to_string(),
            replicas,
            append_deadline: Duration::from_secs(60),
            tls: Tls { required: scheme == "tls://", ..Tls::default() },
            credentials: Credentials::None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_names_and_replicas_are_checked() {
        let c = NatsConfig::new("nats://127.0.0.1:4222,127.0.0.1:4223, nats://h:1", "kv_1", 3).unwrap();
        assert_eq!(c.servers, ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://h:1"]);
        assert!(matches!(NatsConfig::new("http://h:1", "kv", 1), Err(ConfigError::BadUrl { .. })));
        assert!(matches!(NatsConfig::new("nats://h", "kv", 1), Err(ConfigError::BadUrl { .. })));
        assert!(matches!(NatsConfig::new("nats://h:1,", "kv", 1), Err(ConfigError::BadUrl { .. })));
        assert!(matches!(NatsConfig::new("nats://h:1", "a.b", 1), Err(ConfigError::BadStreamName(_))));
        assert!(matches!(NatsConfig::new("nats://h:1", "", 1), Err(ConfigError::BadStreamName(_))));
        assert_eq!(NatsConfig::new("nats://h:1", "kv", 0), Err(ConfigError::BadReplicas(0)));
        assert_eq!(NatsConfig::new("nats://h:1", "kv", 6), Err(ConfigError::BadReplicas(6)));
    }

    #[test]
    fn tls_urls_require_tls_and_credentials_stay_out_of_urls() {
        let c = NatsConfig::new("tls://127.0.0.1:4222,tls://h:2,h:3", "kv", 1).unwrap();
        assert_eq!(c.servers, ["tls://127.0.0.1:4222", "tls://h:2", "tls://h:3"]);
        assert!(c.tls.required);
        assert!(!NatsConfig::new("nats://h:1", "kv", 1).unwrap().tls.required);
        for mixed in ["tls://h:1,nats://h:2", "nats://h:1,tls://h:2"] {
            assert!(matches!(NatsConfig::new(mixed, "kv", 1), Err(ConfigError::BadUrl { .. })), "{mixed}");
        }
        let e = NatsConfig::new("nats://alice:pw@h:1", "kv", 1).unwrap_err();
        assert!(e.to_string().contains("nats_* settings"), "{e}");
    }
}
