//! One RESP connection's session: its protocol version, name and identity,
//! and the execution of its requests against the node.
//!
//! A batch of pipelined requests runs in order. Consecutive writes are
//! handed to the node together, as transactions of one entry, so a
//! pipeline of writes costs one group commit rather than one each; a read
//! that follows them waits for them, so a pipeline reads its own writes.

pub mod writes;

use std::sync::Arc;
use std::time::Instant;

use logkv_runtime::apply::TxResult;
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;

use crate::resp::command::{self, Command};
use crate::resp::frame::Request;
use crate::resp::reply::{encode, Protocol, Reply};
use crate::shared::Shared;
use writes::Planned;

/// A connection's state.
pub struct Session {
    shared: Arc<Shared>,
    id: u64,
    protocol: Protocol,
    name: Option<Vec<u8>>,
    signer: Signer,
    stream: StreamId,
}

/// What running a batch of requests asks of the connection afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep reading.
    Continue,
    /// Close once the replies are written (`QUIT`).
    Close,
}

impl Session {
    /// A new connection's session, writing as the node's identity.
    pub fn new(shared: Arc<Shared>, id: u64) -> Session {
        let signer = shared.identity.clone();
        let stream = shared.config.stream;
        Session { shared, id, protocol: Protocol::default(), name: None, signer, stream }
    }

    /// Runs `requests` in order and appends their encoded replies to `out`.
    pub async fn run(&mut self, requests: Vec<Request>, out: &mut Vec<u8>) -> After {
        let parsed: Vec<_> = requests.iter().map(|r| command::parse(&r.args)).collect();
        let mut commands = parsed.into_iter().map(|c| (c, Instant::now())).peekable();
        while let Some((parsed, started)) = commands.next() {
            let command = match parsed {
                Ok(c) => c,
                Err(e) => {
                    self.reply(&Reply::Error(e.to_string()), out);
                    self.shared.metrics.resp("unknown", started.elapsed(), true);
                    continue;
                }
            };
            if let Some(plan) = writes::plan(&command) {
                let mut run = vec![(command.name(), plan)];
                while let Some((Ok(next), _)) = commands.peek() {
                    let Some(plan) = writes::plan(next) else { break };
                    run.push((next.name(), plan));
                    commands.next();
                }
                for (name, reply) in self.write(run).await {
                    self.shared.metrics.resp(name, started.elapsed(), matches!(reply, Reply::Error(_)));
                    self.reply(&reply, out);
                }
                continue;
            }
            let name = command.name();
            let (reply, after) = self.execute(command).await;
            self.shared.metrics.resp(name, started.elapsed(), matches!(reply, Reply::Error(_)));
            self.reply(&reply, out);
            if after == After::Close {
                return After::Close;
            }
        }
        After::Continue
    }

    fn reply(&self, reply: &Reply, out: &mut Vec<u8>) {
        encode(reply, self.protocol, out);
    }

    /// Runs write commands as the transactions of one entry; a reply each.
    async fn write(&mut self, run: Vec<(&'static str, Planned)>) -> Vec<(&'static str, Reply)> {
        let config = &self.shared.config;
        let mut replies: Vec<Option<Reply>> = run
            .iter()
            .map(|(_, p)| writes::check_limits(p, config.max_key_bytes, config.max_value_bytes))
            .collect();
        let txs: Vec<_> = run
            .iter()
            .zip(&replies)
            .filter(|(_, refused)| refused.is_none())
            .map(|((_, p), _)| writes::transaction(self.stream, p.ops.clone(), Vec::new(), 0))
            .collect();
        if !txs.is_empty() {
            let count = txs.len() as u64;
            let outcome = self.shared.append(self.signer.clone(), txs).await;
            let mut pending = run.iter().zip(replies.iter_mut()).filter(|(_, r)| r.is_none()).enumerate();
            match outcome {
                Err(e) => pending.for_each(|(_, (_, r))| *r = Some(writes::node_error(&e))),
                Ok(applied) => {
                    let first = applied.version + 1 - count;
                    let results = match &applied.outcome {
                        EntryOutcome::Applied(results) => results.clone(),
                        _ => Vec::new(),
                    };
                    for (i, ((_, plan), reply)) in pending.by_ref() {
                        let version = first + i as u64;
                        *reply = Some(match results.get(i) {
                            Some(Some(TxResult::Commit)) => {
                                writes::committed_reply(&self.shared.node, &self.stream, plan, version)
                                    .unwrap_or_else(|e| writes::node_error(&e))
                            }
                            other => writes::not_committed(other.and_then(Option::as_ref)),
                        });
                    }
                }
            }
        }
        run.iter()
            .map(|(name, _)| *name)
            .zip(replies.into_iter().map(|r| r.expect("every write answered")))
            .collect()
    }

    /// Runs one command that does not write.
    async fn execute(&mut self, command: Command) -> (Reply, After) {
        let node = &self.shared.node;
        let get = |key: &[u8]| node.get(&self.stream, key, None).map(|v| v.map(|(value, _)| value));
        let reply = match command {
            Command::Ping { message: None } => Reply::Simple("PONG".into()),
            Command::Ping { message: Some(m) } | Command::Echo { message: m } => Reply::Bulk(m),
            Command::Quit => return (Reply::ok(), After::Close),
            Command::Select { db: 0 } => Reply::ok(),
            Command::Select { .. } => Reply::Error("ERR DB index is out of range".into()),
            Command::Get { key } => match get(&key) {
                Ok(v) => v.map_or(Reply::Null, Reply::Bulk),
                Err(e) => writes::node_error(&e),
            },
            Command::MGet { keys } => {
                let values: Result<Vec<_>, _> = keys.iter().map(|k| get(k)).collect();
                match values {
                    Ok(vs) => {
                        Reply::Array(vs.into_iter().map(|v| v.map_or(Reply::Null, Reply::Bulk)).collect())
                    }
                    Err(e) => writes::node_error(&e),
                }
            }
            Command::Exists { keys } => {
                let found: Result<Vec<_>, _> = keys.iter().map(|k| get(k).map(|v| v.is_some())).collect();
                match found {
                    Ok(f) => Reply::Integer(f.into_iter().filter(|&b| b).count() as i64),
                    Err(e) => writes::node_error(&e),
                }
            }
            Command::StrLen { key } => match get(&key) {
                Ok(v) => Reply::Integer(v.map_or(0, |v| v.len() as i64)),
                Err(e) => writes::node_error(&e),
            },
            Command::Type { key } => match get(&key) {
                Ok(v) => Reply::Simple(if v.is_some() { "string" } else { "none" }.into()),
                Err(e) => writes::node_error(&e),
            },
            Command::ClientId => Reply::Integer(self.id as i64),
            Command::ClientSetName { name } => {
                self.name = Some(name);
                Reply::ok()
            }
            Command::ClientGetName => self.name.clone().map_or(Reply::Null, Reply::Bulk),
            other => Reply::Error(format!("ERR '{}' is not served yet", other.name())),
        };
        (reply, After::Continue)
    }
}
