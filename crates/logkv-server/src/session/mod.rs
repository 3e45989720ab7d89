//! One RESP connection's session: its protocol version, name, user and
//! transaction state, and the execution of its requests against the node.
//!
//! A batch of pipelined requests runs in order. Consecutive writes are
//! handed to the node together, as transactions of one entry, so a
//! pipeline of writes costs one group commit rather than one each; a read
//! that follows them waits for them, so a pipeline reads its own writes.
//!
//! Each request goes through Redis's checks in Redis's order: an unknown
//! command or a wrong argument count is rejected (and aborts a `MULTI`
//! block), then authentication, then queueing inside `MULTI`, then the
//! command runs — where its other argument errors show.
//!
//! | module | job |
//! |---|---|
//! | `writes` | write commands as native transactions, replies from apply's answers |
//! | `rmw` | commands that read, decide and commit if unchanged (`SETRANGE`, `RENAME`, `PFADD`...) |
//! | `strings`, `bits`, `hll`, `dump` | what string, bit, HyperLogLog and `DUMP` commands compute from a value |
//! | `view` | reads, as of a version |
//! | `multi` | `WATCH`, `MULTI`, `EXEC`, `DISCARD`, `UNWATCH` |
//! | `auth` | the users file, `AUTH`, `HELLO ... AUTH` |
//! | `keyspace` | `SCAN` (and its cursor table), `KEYS`, `DBSIZE` |
//! | `collections` | hash, set, sorted-set and list commands: ops for apply, reads of elements |
//! | `databases` | databases as streams: `SELECT`, `FLUSHALL`, `MOVE`, `COPY … DB` |
//! | `glob` | Redis's glob patterns |
//! | `info` | `INFO`, `CONFIG GET/SET/RESETSTAT`, `ROLE`, `maxmemory` |
//! | `clients` | the registry of live connections: `CLIENT LIST/INFO/KILL` |
//! | `pause` | `CLIENT PAUSE/UNPAUSE`: holding commands until a deadline |
//! | `table` | the command table: `COMMAND`, arities, key positions |

pub mod auth;
mod bits;
pub mod clients;
pub mod collections;
pub mod databases;
mod dump;
pub mod glob;
mod hll;
pub mod info;
pub mod keyspace;
mod multi;
pub mod pause;
mod rmw;
mod strings;
pub mod table;
pub mod view;
pub mod writes;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use logkv_runtime::apply::TxResult;
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;

use crate::config::ServeConfig;
use crate::resp::collection::{SetAlgebra, ZRangeBy};
use crate::resp::command::{
    self, Bytes, ClientFilter, CollCommand, Command, CommandQuery, Credentials, ReplyMode,
};
use crate::resp::frame::Request;
use crate::resp::reply::{encode, Protocol, Reply};
use crate::resp::CommandError;
use crate::shared::Shared;
use auth::{Users, UsersError};
use clients::{Client, Clients, Peer};
use view::View;
use writes::Planned;

/// The Redis version logkv reports (`HELLO`, `INFO`): the release whose
/// command replies it reproduces and is compared with byte for byte
/// (tests/differential.rs). Clients gate features on it, so it must not
/// claim a release whose replies logkv does not give; the few later
/// commands served (`CLIENT SETINFO`, `CLIENT NO-TOUCH`) are extras that
/// clients send without looking at the version.
pub const REDIS_VERSION: &str = "7.0.15";

/// What all RESP sessions of a server share.
pub struct ServerState {
    /// The users of the users file; `None` without one (no `AUTH` needed).
    pub users: Option<Users>,
    /// Open `SCAN` cursors.
    pub cursors: keyspace::Cursors,
    /// When the server started (`INFO`'s uptime).
    pub started: Instant,
    /// Connections accepted since start.
    pub connections_received: AtomicU64,
    /// Commands run since start.
    pub commands_processed: AtomicU64,
    /// The live connections.
    pub clients: Clients,
    /// `maxmemory` in bytes (0: no limit); `CONFIG SET` changes it.
    pub maxmemory: AtomicU64,
    /// `idle_timeout_secs` (Redis's `timeout`; 0: never); `CONFIG SET`
    /// changes it, for every connection's next wait.
    pub idle_timeout_secs: AtomicU64,
    /// `CLIENT PAUSE`, which every connection's commands wait out.
    pub pause: pause::Pause,
}

impl ServerState {
    /// The state for `config`, with its users file loaded and checked.
    pub fn load(config: &ServeConfig) -> Result<ServerState, UsersError> {
        let users = config.users_file.as_deref().map(Users::load).transpose()?;
        Ok(ServerState {
            users,
            cursors: keyspace::Cursors::default(),
            started: Instant::now(),
            connections_received: AtomicU64::new(0),
            commands_processed: AtomicU64::new(0),
            clients: Clients::default(),
            maxmemory: AtomicU64::new(config.maxmemory),
            idle_timeout_secs: AtomicU64::new(config.idle_timeout_secs),
            pause: pause::Pause::default(),
        })
    }

    /// How long a connection may idle now; `None`: forever.
    pub fn idle_timeout(&self) -> Option<Duration> {
        let secs = self.idle_timeout_secs.load(Relaxed);
        (secs > 0).then(|| Duration::from_secs(secs))
    }
}

/// A connection's state.
pub struct Session {
    shared: Arc<Shared>,
    id: u64,
    protocol: Protocol,
    /// This connection's entry in the registry of live connections.
    client: Arc<Client>,
    signer: Signer,
    /// The selected database, and its stream.
    db: u32,
    stream: StreamId,
    authenticated: bool,
    multi: multi::State,
    replies: Replies,
}

/// Which replies a connection gets (`CLIENT REPLY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replies {
    All,
    None,
    /// The next this many are dropped, then all are sent again.
    Skip(u8),
}

/// What running a batch of requests asks of the connection afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep reading.
    Continue,
    /// Close once the replies are written (`QUIT`).
    Close,
}

/// A request as checked before it runs.
struct Checked {
    /// The parsed command, or the error it answers when it runs.
    command: Result<Command, CommandError>,
    /// Redis's name for metrics.
    name: &'static str,
}

impl Session {
    /// A new connection's session, writing as the node's identity (until
    /// `AUTH` names a user, when there is a users file); registered among
    /// the live connections until it is dropped.
    pub fn new(shared: Arc<Shared>, id: u64, peer: Peer) -> Session {
        shared.resp.connections_received.fetch_add(1, Relaxed);
        let signer = shared.identity.clone();
        let stream = shared.config.stream;
        let authenticated = shared.resp.users.is_none();
        let user = String::from_utf8_lossy(auth::DEFAULT_USER);
        let client = shared.resp.clients.register(id, peer, &user);
        Session {
            shared,
            id,
            protocol: Protocol::default(),
            client,
            signer,
            db: 0,
            stream,
            authenticated,
            multi: multi::State::default(),
            replies: Replies::All,
        }
    }

    /// Cancelled when `CLIENT KILL` closes this connection.
    pub fn killed(&self) -> CancellationToken {
        self.client.killed().clone()
    }

    /// Runs `requests` in order and appends their encoded replies to `out`.
    pub async fn run(&mut self, requests: Vec<Request>, out: &mut Vec<u8>) -> After {
        let mut pending = requests.into_iter().peekable();
        while let Some(request) = pending.next() {
            // Killed (by another connection, or by its own `CLIENT KILL`):
            // the rest of the pipeline does not run.
            if self.client.killed().is_cancelled() {
                return After::Close;
            }
            let started = Instant::now();
            self.shared.resp.commands_processed.fetch_add(1, Relaxed);
            let checked = match self.check(&request.args) {
                Ok(checked) => checked,
                Err((name, reply)) => {
                    self.client.ran(name, self.multi.queued());
                    self.shared.metrics.resp(name, started.elapsed(), true);
                    self.reply(&reply, out);
                    continue;
                }
            };
            self.client.ran(checked.name, self.multi.queued());
            // (Whether it may write is looked up only under a pause.)
            let pause = &self.shared.resp.pause;
            if pause.holds(true) {
                let closing = [self.client.killed(), &self.shared.shutdown];
                if !pause.wait(table::may_write(checked.name), closing).await {
                    return After::Close;
                }
            }
            if self.multi.in_multi() && !multi::runs_inside(&checked.command) {
                self.multi.queue(checked.command);
                self.shared.metrics.resp(checked.name, started.elapsed(), false);
                self.reply(&Reply::Simple("QUEUED".into()), out);
                continue;
            }
            let command = match checked.command {
                Ok(c) => c,
                Err(e) => {
                    self.shared.metrics.resp(checked.name, started.elapsed(), true);
                    self.reply(&Reply::from(&e), out);
                    continue;
                }
            };
            if writes::is_write(&command) {
                let now = self.shared.node.read_time_ms(None);
                let plan = writes::plan(command, now).expect("a write plans");
                let mut run = vec![(checked.name, plan, started)];
                while let Some(next) = pending.peek() {
                    match command::parse(&next.args) {
                        // (Under a pause, each write waits on its own.)
                        Ok(c)
                            if writes::is_write(&c)
                                && !self.out_of_memory(c.name())
                                && !self.shared.resp.pause.holds(true) =>
                        {
                            self.shared.resp.commands_processed.fetch_add(1, Relaxed);
                            let name = c.name();
                            self.client.ran(name, None);
                            run.push((name, writes::plan(c, now).expect("a write plans"), Instant::now()));
                            pending.next();
                        }
                        _ => break,
                    }
                }
                for (name, reply, started) in self.write(run).await {
                    self.shared.metrics.resp(name, started.elapsed(), matches!(reply, Reply::Error(_)));
                    self.reply(&reply, out);
                }
                continue;
            }
            let (reply, after) = self.execute(command).await;
            self.shared.metrics.resp(checked.name, started.elapsed(), matches!(reply, Reply::Error(_)));
            self.reply(&reply, out);
            if after == After::Close {
                return After::Close;
            }
        }
        After::Continue
    }

    /// Redis's checks before a command runs: an unknown command or wrong
    /// argument count is rejected (aborting a `MULTI` block), then a
    /// client that must authenticate may only `AUTH`, `HELLO` and `QUIT`.
    fn check(&mut self, args: &[Bytes]) -> Result<Checked, (&'static str, Reply)> {
        let parsed = command::parse(args);
        if let Err(e) = &parsed {
            if !table::accepted(args) {
                self.multi.abort();
                return Err(("unknown", Reply::from(e)));
            }
        }
        let name = match &parsed {
            Ok(c) => c.name(),
            Err(_) => table_name(args),
        };
        if !self.authenticated && !matches!(name, "auth" | "hello" | "quit" | "reset") {
            self.multi.abort();
            return Err((name, Reply::Error(auth::NOAUTH.into())));
        }
        let container = name.split('|').next().unwrap_or(name);
        let about_the_server =
            ["auth", "hello", "quit", "reset", "ping", "info", "client", "command", "config", "time", "role"];
        if !about_the_server.contains(&container) {
            if let Some(why) = self.shared.not_serving() {
                self.multi.abort();
                return Err((name, Reply::Error(format!("LOADING {why}"))));
            }
        }
        if self.out_of_memory(name) {
            self.multi.abort();
            return Err((name, Reply::Error(info::OOM.into())));
        }
        Ok(Checked { command: parsed, name })
    }

    /// Whether `maxmemory` refuses the command `name`: one that may add
    /// data (`denyoom` in the table) while the index is over the limit.
    /// (The limit is looked at first: without one, a single load.)
    fn out_of_memory(&self, name: &str) -> bool {
        info::over_maxmemory(&self.shared) && table::may_add_data(name)
    }

    /// Encodes `reply` into `out`, unless `CLIENT REPLY` drops it.
    fn reply(&mut self, reply: &Reply, out: &mut Vec<u8>) {
        match self.replies {
            Replies::All => encode(reply, self.protocol, out),
            Replies::None => {}
            Replies::Skip(left) => {
                self.replies = if left > 1 { Replies::Skip(left - 1) } else { Replies::All }
            }
        }
    }

    /// Runs write commands as the transactions of one entry; a reply each,
    /// built from apply's answers.
    async fn write(
        &mut self,
        run: Vec<(&'static str, Planned, Instant)>,
    ) -> Vec<(&'static str, Reply, Instant)> {
        let config = &self.shared.config;
        let mut done = Vec::with_capacity(run.len());
        let mut txs = Vec::with_capacity(run.len());
        let mut recipes = Vec::with_capacity(run.len());
        for (i, (name, plan, started)) in run.into_iter().enumerate() {
            let refused =
                writes::check_limits(&plan.ops, config.store.max_key_bytes, config.store.max_value_bytes);
            if refused.is_none() {
                txs.push(writes::transaction(self.stream, plan.ops, Vec::new(), 0));
                recipes.push((i, plan.answer));
            }
            done.push((name, refused, started));
        }
        if !txs.is_empty() {
            match self.shared.append(self.signer.clone(), txs).await {
                Err(e) => recipes.iter().for_each(|(i, _)| done[*i].1 = Some(writes::node_error(&e))),
                Ok(applied) => {
                    let results = match &applied.outcome {
                        EntryOutcome::Applied(results) => results.as_slice(),
                        _ => &[],
                    };
                    for (k, (i, answer)) in recipes.into_iter().enumerate() {
                        done[i].1 = Some(match results.get(k) {
                            Some(Some(TxResult::Commit)) => writes::reply(answer, &applied.answers[k]),
                            other => writes::not_committed(other.and_then(Option::as_ref)),
                        });
                    }
                }
            }
        }
        done.into_iter().map(|(name, r, started)| (name, r.expect("every write answered"), started)).collect()
    }

    /// `SPOP`: members picked here, removed by a logged op.
    async fn pop(&mut self, key: Bytes, count: Option<u64>) -> Reply {
        let node = self.shared.node.clone();
        let planned = collections::plan_pop(&View::new(&node, self.stream, None), key, count);
        self.write_planned("spop", planned).await
    }

    /// `SINTERSTORE` and kin: the result computed here, stored by logged ops.
    async fn store(&mut self, op: SetAlgebra, destination: Bytes, keys: Vec<Bytes>) -> Reply {
        let node = self.shared.node.clone();
        let planned = collections::plan_store(&View::new(&node, self.stream, None), op, destination, &keys);
        let name =
            Command::Coll(CollCommand::SAlgebraStore { op, destination: Bytes::new(), keys: Vec::new() })
                .name();
        self.write_planned(name, planned).await
    }

    /// Writes what a command planned after reading, or answers without writing.
    async fn write_planned(
        &mut self,
        name: &'static str,
        planned: Result<Result<Planned, Reply>, logkv_runtime::node::NodeError>,
    ) -> Reply {
        match planned {
            Err(e) => writes::node_error(&e),
            Ok(Err(reply)) => reply,
            Ok(Ok(plan)) => {
                let mut done = self.write(vec![(name, plan, Instant::now())]).await;
                done.pop().map_or(Reply::Null, |(_, reply, _)| reply)
            }
        }
    }

    /// Runs one command that does not write (or `EXEC`, which may).
    async fn execute(&mut self, command: Command) -> (Reply, After) {
        let reply = match command {
            Command::Quit => return (Reply::ok(), After::Close),
            Command::Watch { keys } => self.multi.watch(&self.shared.node, self.stream, keys),
            Command::Unwatch => self.multi.unwatch(),
            Command::Multi => self.multi.begin(),
            Command::Discard => self.multi.discard(),
            Command::Exec => self.exec().await,
            Command::FlushAll => self.flush_all().await,
            Command::Move { key, db } => self.move_key(key, db).await,
            other if rmw::is_rmw(&other) => match self.copy_across(&other).await {
                Some(reply) => reply,
                None => self.read_modify_write(other).await,
            },
            Command::Coll(CollCommand::SPop { key, count }) => self.pop(key, count).await,
            Command::Coll(CollCommand::ZStore { union, destination, keys, weights, aggregate }) => {
                let node = self.shared.node.clone();
                let view = View::new(&node, self.stream, None);
                let planned = collections::plan_zstore(&view, union, destination, &keys, &weights, aggregate);
                self.write_planned(if union { "zunionstore" } else { "zinterstore" }, planned).await
            }
            Command::Coll(CollCommand::ZRemRange { key, by }) => {
                let node = self.shared.node.clone();
                let name = match by {
                    ZRangeBy::Score(..) => "zremrangebyscore",
                    ZRangeBy::Rank(..) => "zremrangebyrank",
                    ZRangeBy::Lex(..) => "zremrangebylex",
                };
                let planned = collections::plan_zremrange(&View::new(&node, self.stream, None), key, by);
                self.write_planned(name, planned).await
            }
            Command::Coll(CollCommand::ZPop { key, max, count }) => {
                let node = self.shared.node.clone();
                let planned = collections::plan_zpop(&View::new(&node, self.stream, None), key, max, count);
                self.write_planned(if max { "zpopmax" } else { "zpopmin" }, planned).await
            }
            Command::Coll(CollCommand::SAlgebraStore { op, destination, keys }) => {
                self.store(op, destination, keys).await
            }
            other => {
                let node = self.shared.node.clone();
                self.run_in(&View::new(&node, self.stream, None), &other)
            }
        };
        (reply, After::Continue)
    }

    /// Runs a command that reads through `view` (the newest state, or
    /// what a `MULTI` block's transaction saw) or touches only the session.
    fn run_in(&mut self, view: &View<'_>, command: &Command) -> Reply {
        let shared = self.shared.clone();
        let data = match command {
            Command::Scan { cursor, pattern, count, kind } => keyspace::scan(
                view,
                &shared.resp.cursors,
                *cursor,
                pattern.as_deref(),
                *count,
                kind.as_deref(),
            ),
            Command::Keys { pattern } => keyspace::keys(view, pattern),
            Command::DbSize => keyspace::dbsize(view),
            Command::RandomKey => keyspace::random_key(view),
            Command::Object { query, key } => view.object(key, *query),
            Command::Ttl { key, query } => view.ttl(key, *query),
            Command::Info { sections } => info::info(&shared, sections),
            Command::Coll(c) => match collections::read(view, c, &shared.resp.cursors) {
                Some(read) => read,
                None => return self.session_command(command),
            },
            other => match view.read(other) {
                Some(read) => read,
                None => return self.session_command(command),
            },
        };
        data.unwrap_or_else(|e| writes::node_error(&e))
    }

    /// Commands about the connection and the server, not the data.
    fn session_command(&mut self, command: &Command) -> Reply {
        match command {
            Command::Ping { message: None } => Reply::Simple("PONG".into()),
            Command::Ping { message: Some(m) } | Command::Echo { message: m } => Reply::Bulk(m.to_vec()),
            Command::Select { db } => self.select(*db),
            Command::SwapDb => Reply::Error(databases::SWAPDB_REFUSED.into()),
            // Outside a block these run in `execute`; queued, they reach here.
            Command::FlushAll | Command::Move { .. } => Reply::Error(format!(
                "ERR {} inside MULTI is not supported: it is a transaction of its own",
                command.name().to_uppercase()
            )),
            Command::ClientId => Reply::Integer(self.id as i64),
            Command::ClientSetName { name } => {
                self.client.set_name(name);
                Reply::ok()
            }
            Command::ClientGetName => self.client.name().map_or(Reply::Null, Reply::Bulk),
            Command::ClientInfo => Reply::Verbatim(self.client.line() + "\n"),
            Command::ClientList { filter } => Reply::Verbatim(self.shared.resp.clients.list(filter, self.id)),
            Command::ClientKill { filter, legacy } => self.kill(filter, *legacy),
            Command::ClientSetInfo { attribute, value } => {
                self.client.set_lib(*attribute, value);
                Reply::ok()
            }
            Command::ClientMode { mode, on } => {
                self.client.set_mode(*mode, *on);
                Reply::ok()
            }
            Command::ClientPause { millis, writes_only } => {
                self.shared.resp.pause.pause(*millis, *writes_only);
                Reply::ok()
            }
            Command::ClientUnpause => {
                self.shared.resp.pause.unpause();
                Reply::ok()
            }
            Command::ClientReply { mode } => {
                // `OFF` and `SKIP` drop their own reply too.
                self.replies = match mode {
                    ReplyMode::On => Replies::All,
                    ReplyMode::Off => Replies::None,
                    ReplyMode::Skip => Replies::Skip(2),
                };
                Reply::ok()
            }
            // No command blocks a connection (blocking pops are not
            // served), so there is never one to unblock.
            Command::ClientUnblock { .. } => Reply::Integer(0),
            // Client-side caching (`CLIENT TRACKING`) is not served: it is
            // always off, with no redirection.
            Command::ClientGetRedir => Reply::Integer(-1),
            Command::ClientTrackingInfo => {
                let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
                Reply::Map(vec![
                    (bulk("flags"), Reply::Set(vec![bulk("off")])),
                    (bulk("redirect"), Reply::Integer(-1)),
                    (bulk("prefixes"), Reply::Array(Vec::new())),
                ])
            }
            Command::Reset => self.reset(),
            // Redis 7.0 draws no art for its own version either: this is
            // its answer, whatever the arguments.
            Command::Lolwut => Reply::Verbatim(format!("Redis ver. {REDIS_VERSION}\n")),
            Command::Time => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                let bulk = |n: u64| Reply::Bulk(n.to_string().into_bytes());
                Reply::Array(vec![bulk(now.as_secs()), bulk(now.subsec_micros().into())])
            }
            Command::Role => info::role(&self.shared),
            Command::ConfigSet { pairs } => info::config_set(&self.shared, pairs),
            Command::ConfigResetStat => info::reset_stats(&self.shared),
            Command::Command(CommandQuery::Info { names }) => table::info_of(names),
            Command::Command(CommandQuery::GetKeys { request }) => table::get_keys(request),
            Command::Command(CommandQuery::GetKeysAndFlags { request }) => table::get_keys_and_flags(request),
            Command::Command(CommandQuery::Names { filter }) => table::names(filter.as_ref()),
            Command::Auth(credentials) => match self.authenticate(credentials) {
                Ok(()) => Reply::ok(),
                Err(reply) => reply,
            },
            Command::Hello { protocol, auth, client_name } => {
                self.hello(*protocol, auth.as_ref(), client_name.as_ref())
            }
            Command::Command(CommandQuery::List) => table::list(),
            Command::Command(CommandQuery::Count) => table::count(),
            Command::Command(CommandQuery::Docs { names }) => table::docs(names),
            Command::ConfigGet { patterns } => info::config_get(&self.shared, patterns),
            Command::Unwatch => self.multi.unwatch(),
            Command::ObjectHelp => object_help(),
            other => Reply::Error(format!("ERR '{}' cannot run here", other.name())),
        }
    }

    /// `CLIENT KILL`: closes the matching connections. The filter form
    /// answers how many; the old `CLIENT KILL ip:port` form answers `+OK`,
    /// or an error when no connection has that address.
    fn kill(&self, filter: &ClientFilter, legacy: bool) -> Reply {
        if let Some(user) = &filter.user {
            let known = match &self.shared.resp.users {
                Some(users) => users.contains(user),
                None => user[..] == *auth::DEFAULT_USER,
            };
            if !known {
                return Reply::Error(format!("ERR No such user '{}'", String::from_utf8_lossy(user)));
            }
        }
        let killed = self.shared.resp.clients.kill(filter, self.id);
        match (legacy, killed) {
            (false, n) => Reply::Integer(n as i64),
            (true, 0) => Reply::Error("ERR No such client".into()),
            (true, _) => Reply::ok(),
        }
    }

    /// `RESET`: the connection as it was when it connected — no
    /// transaction or watched keys, RESP2, no name, replies on, and the
    /// default user (unauthenticated if the users file requires a
    /// password). As in Redis 7.0, the `NO-EVICT`/`NO-TOUCH` modes and the
    /// library attributes stay.
    fn reset(&mut self) -> Reply {
        self.multi = multi::State::default();
        self.protocol = Protocol::default();
        self.replies = Replies::All;
        self.client.set_name(b"");
        self.client.set_resp(2);
        self.signer = self.shared.identity.clone();
        self.authenticated = self.shared.resp.users.is_none();
        self.client.set_user(&String::from_utf8_lossy(auth::DEFAULT_USER));
        Reply::Simple("RESET".into())
    }

    /// `AUTH [user] password`: becomes that user (writes are signed with
    /// the user's key). Without a users file, Redis's answers for a
    /// default user with no password.
    fn authenticate(&mut self, credentials: &Credentials) -> Result<(), Reply> {
        let shared = self.shared.clone();
        let Some(users) = &shared.resp.users else {
            return match &credentials.username {
                None => Err(Reply::Error(auth::NO_PASSWORD.into())),
                Some(name) if name == auth::DEFAULT_USER => Ok(()),
                Some(_) => Err(Reply::Error(auth::WRONGPASS.into())),
            };
        };
        let name = credentials.username.as_deref().unwrap_or(auth::DEFAULT_USER);
        match users.authenticate(name, &credentials.password) {
            Some(user) => {
                self.signer = user.signer.clone();
                self.authenticated = true;
                self.client.set_user(&user.name);
                Ok(())
            }
            None => Err(Reply::Error(auth::WRONGPASS.into())),
        }
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    fn hello(
        &mut self,
        protocol: Option<Protocol>,
        auth: Option<&Credentials>,
        name: Option<&Bytes>,
    ) -> Reply {
        if let Some(credentials) = auth {
            if let Err(reply) = self.authenticate(credentials) {
                return reply;
            }
        }
        if !self.authenticated {
            return Reply::Error(auth::NOAUTH_HELLO.into());
        }
        if let Some(name) = name {
            self.client.set_name(name);
        }
        if let Some(protocol) = protocol {
            self.protocol = protocol;
        }
        let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
        let proto = match self.protocol {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        };
        self.client.set_resp(proto as u8);
        Reply::Map(vec![
            (bulk("server"), bulk("redis")),
            (bulk("version"), bulk(REDIS_VERSION)),
            (bulk("proto"), Reply::Integer(proto)),
            (bulk("id"), Reply::Integer(self.id as i64)),
            (bulk("mode"), bulk("standalone")),
            (bulk("role"), bulk(info::ROLE)),
            (bulk("modules"), Reply::Array(Vec::new())),
        ])
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.resp.clients.remove(self.id);
    }
}

/// The metrics name of a request that did not parse but is a known
/// command (its error shows when it runs).
fn table_name(args: &[Bytes]) -> &'static str {
    let name = args.first().map(|n| n.to_ascii_lowercase()).unwrap_or_default();
    table::COMMANDS.iter().find(|s| s.name.as_bytes() == name).map_or("unknown", |s| s.name)
}

/// `OBJECT HELP`: what each subcommand answers on logkv.
fn object_help() -> Reply {
    let lines = [
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    The encoding Redis would give the string value of <key>: int, embstr or raw.",
        "FREQ <key>",
        "    Refused: logkv evicts nothing, so it keeps no access frequencies.",
        "IDLETIME <key>",
        "    Seconds since <key> was last written (logkv records no reads).",
        "REFCOUNT <key>",
        "    Always 1: logkv shares no values between keys.",
        "HELP",
        "    Print this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect())
}
