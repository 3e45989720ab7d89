//! The registry of live RESP connections, which `CLIENT LIST`, `CLIENT
//! INFO` and `CLIENT KILL` read and act on. A connection is registered
//! once accepted and leaves when its session ends, so the registry holds
//! at most `max_connections` entries.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use parking_lot::Mutex;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::resp::command::{ClientFilter, ClientMode, LibAttribute};

/// Where a connection comes from, as the listener knows it.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The client's address (`ip:port`).
    pub addr: String,
    /// The local address it connected to.
    pub laddr: String,
    /// The socket's file descriptor, when there is one.
    pub fd: Option<i32>,
}

/// What a connection's line in `CLIENT LIST` shows that changes as it runs.
struct Activity {
    name: Option<Vec<u8>>,
    lib_name: Option<Vec<u8>>,
    lib_ver: Option<Vec<u8>>,
    user: String,
    /// The last command run, by its full name (`client|list`).
    cmd: &'static str,
    last: Instant,
    /// Commands queued in an open `MULTI` block.
    multi: Option<usize>,
    resp: u8,
    /// The selected database.
    db: u32,
    no_evict: bool,
    no_touch: bool,
}

/// One live connection.
pub struct Client {
    pub id: u64,
    peer: Peer,
    created: Instant,
    activity: Mutex<Activity>,
    /// Cancelled by `CLIENT KILL`: the connection closes.
    killed: CancellationToken,
}

impl Client {
    /// The token that `CLIENT KILL` cancels.
    pub fn killed(&self) -> &CancellationToken {
        &self.killed
    }

    /// Records a command about to run (`cmd`, `idle`, `multi` of `CLIENT LIST`).
    pub fn ran(&self, cmd: &'static str, multi: Option<usize>) {
        let mut a = self.activity.lock();
        a.cmd = cmd;
        a.last = Instant::now();
        a.multi = multi;
    }

    /// The name of `CLIENT SETNAME` / `HELLO ... SETNAME`.
    pub fn name(&self) -> Option<Vec<u8>> {
        self.activity.lock().name.clone()
    }

    /// Sets the name; an empty one clears it.
    pub fn set_name(&self, name: &[u8]) {
        self.activity.lock().name = (!name.is_empty()).then(|| name.to_vec());
    }

    /// `CLIENT SETINFO`: an empty value clears the attribute.
    pub fn set_lib(&self, attribute: LibAttribute, value: &[u8]) {
        let value = (!value.is_empty()).then(|| value.to_vec());
        let mut a = self.activity.lock();
        match attribute {
            LibAttribute::Name => a.lib_name = value,
            LibAttribute::Version => a.lib_ver = value,
        }
    }

    /// `CLIENT NO-EVICT` / `CLIENT NO-TOUCH`: shown as flags; neither
    /// changes what logkv does (it evicts nothing and keeps no access
    /// times).
    pub fn set_mode(&self, mode: ClientMode, on: bool) {
        let mut a = self.activity.lock();
        match mode {
            ClientMode::NoEvict => a.no_evict = on,
            ClientMode::NoTouch => a.no_touch = on,
        }
    }

    /// The user the connection authenticated as.
    pub fn set_user(&self, user: &str) {
        self.activity.lock().user = user.to_string();
    }

    /// The protocol version `HELLO` chose.
    pub fn set_resp(&self, resp: u8) {
        self.activity.lock().resp = resp;
    }

    /// Records the database the connection selected (`SELECT`).
    pub fn set_db(&self, db: u32) {
        self.activity.lock().db = db;
    }

    /// The connection's `CLIENT LIST` line, without the line break: the
    /// fields of Redis 7.2, in its order. Memory and buffer sizes are not
    /// kept per connection and print as 0 (clients' parsers require the
    /// fields).
    pub fn line(&self) -> String {
        let a = self.activity.lock();
        let text = |v: &Option<Vec<u8>>| {
            v.as_deref().map(|t| String::from_utf8_lossy(t).into_owned()).unwrap_or_default()
        };
        let mut flags = String::new();
        if a.multi.is_some() {
            flags.push('x');
        }
        if a.no_evict {
            flags.push('e');
        }
        if a.no_touch {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let mut line = String::new();
        let _ = write!(
            line,
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={flags} db={} sub=0 psub=0 ssub=0 \
             multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 \
             events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.peer.addr,
            self.peer.laddr,
            self.peer.fd.unwrap_or(-1),
            text(&a.name),
            self.created.elapsed().as_secs(),
            a.last.elapsed().as_secs(),
            a.db,
            a.multi.map_or(-1, |n| n as i64),
            a.cmd,
            a.user,
            a.resp,
            text(&a.lib_name),
            text(&a.lib_ver),
        );
        line
    }

    fn matches(&self, filter: &ClientFilter, me: u64) -> bool {
        let same =
            |want: &Option<bytes::Bytes>, have: &str| want.as_ref().is_none_or(|w| w == have.as_bytes());
        filter.normal
            && (filter.ids.is_empty() || filter.ids.contains(&self.id))
            && same(&filter.addr, &self.peer.addr)
            && same(&filter.laddr, &self.peer.laddr)
            && filter.user.as_ref().is_none_or(|u| u == self.activity.lock().user.as_bytes())
            && !(filter.skip_me && self.id == me)
    }
}

/// The live connections, by id (the order `CLIENT LIST` prints them in).
#[derive(Default)]
pub struct Clients {
    live: Mutex<BTreeMap<u64, Arc<Client>>>,
}

impl Clients {
    /// Registers a new connection as `user`.
    pub fn register(&self, id: u64, peer: Peer, user: &str) -> Arc<Client> {
        let now = Instant::now();
        let client = Arc::new(Client {
            id,
            peer,
            created: now,
            activity: Mutex::new(Activity {
                name: None,
                lib_name: None,
                lib_ver: None,
                user: user.to_string(),
                cmd: "NULL",
                last: now,
                multi: None,
                resp: 2,
                db: 0,
                no_evict: false,
                no_touch: false,
            }),
            killed: CancellationToken::new(),
        });
        self.live.lock().insert(id, client.clone());
        client
    }

    /// Removes a connection whose session ended.
    pub fn remove(&self, id: u64) {
        self.live.lock().remove(&id);
    }

    /// How many connections are live.
    pub fn len(&self) -> usize {
        self.live.lock().len()
    }

    /// Whether no connection is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn matching(&self, filter: &ClientFilter, me: u64) -> Vec<Arc<Client>> {
        self.live.lock().values().filter(|c| c.matches(filter, me)).cloned().collect()
    }

    /// `CLIENT LIST`: a line per matching connection, each ending in `\n`.
    pub fn list(&self, filter: &ClientFilter, me: u64) -> String {
        self.matching(filter, me).iter().map(|c| c.line() + "\n").collect()
    }

    /// `CLIENT KILL`: closes the matching connections (each after the
    /// replies it is writing) and drops them from the registry; how many.
    pub fn kill(&self, filter: &ClientFilter, me: u64) -> usize {
        let mut live = self.live.lock();
        let doomed: Vec<u64> = live.values().filter(|c| c.matches(filter, me)).map(|c| c.id).collect();
        for id in &doomed {
            // Gone from the list at once, as in Redis, though its task
            // closes the socket a moment later.
            if let Some(client) = live.remove(id) {
                client.killed.cancel();
            }
        }
        doomed.len()
    }
}
