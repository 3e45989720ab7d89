//! A request's arguments as a typed command: name looked up without regard
//! to case, arity and options checked, integers read, with Redis's exact
//! error texts (see [`CommandError`]).

pub use super::collection::CollCommand;
use super::command_error::{printable, unknown_command};
use super::number::{parse_i64, parse_u64};
use super::reply::Protocol;
use super::string_args::{
    self, parse_float, BitFieldOp, BitOperation, BitPosRange, BitRange, Float, ObjectQuery,
};
use super::CommandError;

/// A key, value, name or pattern: raw bytes, a slice of the request they
/// came in (cloning one is a reference count, not a copy).
pub use bytes::Bytes;
/// The condition of `EXPIRE` and its kin (`NX`, `XX`, `GT`, `LT`), as the log holds it.
pub use logkv_runtime::codec::ExpireCond;

/// How `SET` treats an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCondition {
    /// Always set (no `NX` or `XX`).
    Always,
    /// `NX`: only if the key does not exist.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// When a key is to expire, as a command gives it: relative to the
/// receiving node's time (`EX`, `PX`, `EXPIRE`), or absolute (`EXAT`,
/// `PXAT`, `EXPIREAT`). Milliseconds, checked against overflow when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// This many milliseconds from now (may be negative for `EXPIRE`).
    In(i64),
    /// At this Unix time in milliseconds (may be in the past).
    At(i64),
}

impl Deadline {
    /// The Unix time in milliseconds, `now` being the node's; a time before
    /// 1970 is 0, already past.
    pub fn at(self, now_ms: u64) -> u64 {
        let at = match self {
            Deadline::In(ms) => (now_ms as i64).saturating_add(ms),
            Deadline::At(ms) => ms,
        };
        at.max(0) as u64
    }
}

/// The expiry `SET` leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetExpiry {
    /// None (plain `SET`): any expiry the key had is cleared.
    Never,
    /// `KEEPTTL`: the key's expiry stays.
    Keep,
    /// `EX`, `PX`, `EXAT`, `PXAT`, and `SETEX`/`PSETEX`.
    At(Deadline),
}

/// What `TTL`, `PTTL`, `EXPIRETIME` and `PEXPIRETIME` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlQuery {
    /// In milliseconds rather than seconds.
    pub millis: bool,
    /// The Unix time of the expiry rather than the time left.
    pub absolute: bool,
}

/// A user name and password given to `AUTH` or `HELLO ... AUTH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `None` for the one-argument `AUTH password` (the `default` user).
    pub username: Option<Bytes>,
    pub password: Bytes,
}

/// What `COMMAND` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandQuery {
    /// `COMMAND`: details of every command.
    List,
    /// `COMMAND COUNT`.
    Count,
    /// `COMMAND DOCS [name ...]`: docs of the named commands, or of all.
    Docs { names: Vec<Bytes> },
    /// `COMMAND INFO [name ...]`: details of the named commands, or of all.
    Info { names: Vec<Bytes> },
    /// `COMMAND GETKEYS command [arg ...]`: the keys of that request.
    GetKeys { request: Vec<Bytes> },
    /// `COMMAND GETKEYSANDFLAGS command [arg ...]`: its keys, each with
    /// its key-spec flags.
    GetKeysAndFlags { request: Vec<Bytes> },
    /// `COMMAND LIST [FILTERBY ...]`: command names.
    Names { filter: Option<ListFilter> },
}

/// `COMMAND LIST FILTERBY ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFilter {
    /// `MODULE name`: logkv has no modules, so nothing.
    Module,
    /// `ACLCAT category`, without the `@`.
    AclCategory(Bytes),
    /// `PATTERN glob`.
    Pattern(Bytes),
}

/// Which connections `CLIENT LIST` and `CLIENT KILL` mean: those that
/// match every filter given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFilter {
    /// `ID`: one of these (empty: any).
    pub ids: Vec<u64>,
    /// `ADDR ip:port`: the peer's address.
    pub addr: Option<Bytes>,
    /// `LADDR ip:port`: the local address it connected to.
    pub laddr: Option<Bytes>,
    /// `USER name`.
    pub user: Option<Bytes>,
    /// `TYPE`: every logkv connection is `normal`, so any other type
    /// matches none.
    pub normal: bool,
    /// `SKIPME yes` (the default of the filter form): not the caller.
    pub skip_me: bool,
}

impl Default for ClientFilter {
    fn default() -> ClientFilter {
        ClientFilter { ids: Vec::new(), addr: None, laddr: None, user: None, normal: true, skip_me: true }
    }
}

/// A switch of `CLIENT NO-EVICT` / `CLIENT NO-TOUCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    NoEvict,
    NoTouch,
}

/// What `CLIENT REPLY` asks of the replies that follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Reply to every command (the default).
    On,
    /// Reply to nothing, this command included.
    Off,
    /// Reply neither to this command nor to the next one.
    Skip,
}

/// The library attribute `CLIENT SETINFO` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibAttribute {
    Name,
    Version,
}

/// One command logkv serves over RESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ping {
        message: Option<Bytes>,
    },
    Echo {
        message: Bytes,
    },
    Hello {
        protocol: Option<Protocol>,
        auth: Option<Credentials>,
        client_name: Option<Bytes>,
    },
    Auth(Credentials),
    Select {
        db: i64,
    },
    Quit,
    Get {
        key: Bytes,
    },
    Set {
        key: Bytes,
        value: Bytes,
        condition: SetCondition,
        /// `GET`: reply with the old value.
        get: bool,
        /// The expiry it leaves (`SETEX` and `PSETEX` are `SET`s with one).
        expiry: SetExpiry,
    },
    /// `GETEX`: the value, and a new expiry (`None`: `PERSIST`).
    GetEx {
        key: Bytes,
        expiry: Option<Deadline>,
    },
    GetDel {
        key: Bytes,
    },
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT` and `PEXPIREAT`.
    Expire {
        key: Bytes,
        deadline: Deadline,
        condition: ExpireCond,
    },
    Persist {
        key: Bytes,
    },
    /// `TTL`, `PTTL`, `EXPIRETIME` and `PEXPIRETIME`.
    Ttl {
        key: Bytes,
        query: TtlQuery,
    },
    SetNx {
        key: Bytes,
        value: Bytes,
    },
    GetSet {
        key: Bytes,
        value: Bytes,
    },
    /// `DEL` and `UNLINK`, which are the same for logkv.
    Del {
        keys: Vec<Bytes>,
    },
    Exists {
        keys: Vec<Bytes>,
    },
    MGet {
        keys: Vec<Bytes>,
    },
    MSet {
        pairs: Vec<(Bytes, Bytes)>,
    },
    StrLen {
        key: Bytes,
    },
    Append {
        key: Bytes,
        value: Bytes,
    },
    /// `INCR`, `INCRBY`, `DECR` and `DECRBY`, as the signed amount added.
    IncrBy {
        key: Bytes,
        delta: i64,
    },
    Scan {
        cursor: u64,
        pattern: Option<Bytes>,
        count: Option<u64>,
        /// `TYPE`: only keys holding this kind (`string`, `hash`, `set`).
        kind: Option<Bytes>,
    },
    Keys {
        pattern: Bytes,
    },
    DbSize,
    /// `FLUSHDB [ASYNC|SYNC]`: both modes are one O(1) flush.
    FlushDb,
    /// `FLUSHALL [ASYNC|SYNC]`.
    FlushAll,
    Move {
        key: Bytes,
        db: i64,
    },
    SwapDb,
    Type {
        key: Bytes,
    },
    Info {
        sections: Vec<Bytes>,
    },
    Command(CommandQuery),
    ClientSetName {
        name: Bytes,
    },
    ClientGetName,
    ClientId,
    ClientInfo,
    /// (The filters are boxed: they are rare and would make every
    /// command larger.)
    ClientList {
        filter: Box<ClientFilter>,
    },
    /// `CLIENT KILL`: `legacy` is the old `CLIENT KILL ip:port` form,
    /// answered `+OK` or an error rather than a count.
    ClientKill {
        filter: Box<ClientFilter>,
        legacy: bool,
    },
    ClientSetInfo {
        attribute: LibAttribute,
        value: Bytes,
    },
    ClientMode {
        mode: ClientMode,
        on: bool,
    },
    /// `CLIENT PAUSE timeout [WRITE|ALL]`.
    ClientPause {
        millis: u64,
        writes_only: bool,
    },
    ClientUnpause,
    ClientReply {
        mode: ReplyMode,
    },
    /// `CLIENT UNBLOCK id [TIMEOUT|ERROR]` (the reason changes nothing:
    /// no connection is ever blocked).
    ClientUnblock {
        id: i64,
    },
    ClientGetRedir,
    ClientTrackingInfo,
    Reset,
    Lolwut,
    ConfigGet {
        patterns: Vec<Bytes>,
    },
    ConfigSet {
        pairs: Vec<(Bytes, Bytes)>,
    },
    ConfigResetStat,
    Time,
    Role,
    Watch {
        keys: Vec<Bytes>,
    },
    Multi,
    Exec,
    Discard,
    Unwatch,
    /// `RENAME` and (`nx`) `RENAMENX`.
    Rename {
        from: Bytes,
        to: Bytes,
        nx: bool,
    },
    Copy {
        from: Bytes,
        to: Bytes,
        replace: bool,
        /// `DB n`: the database to copy into (the session checks it).
        db: Option<i64>,
    },
    IncrByFloat {
        key: Bytes,
        delta: Float,
    },
    /// `GETRANGE` and `SUBSTR`.
    GetRange {
        key: Bytes,
        start: i64,
        end: i64,
    },
    SetRange {
        key: Bytes,
        offset: u64,
        value: Bytes,
    },
    MSetNx {
        pairs: Vec<(Bytes, Bytes)>,
    },
    Touch {
        keys: Vec<Bytes>,
    },
    Object {
        query: ObjectQuery,
        key: Bytes,
    },
    ObjectHelp,
    RandomKey,
    Dump {
        key: Bytes,
    },
    /// `RESTORE`: the TTL is read when the command runs (after the
    /// `BUSYKEY` check, as in Redis).
    Restore {
        key: Bytes,
        ttl: Bytes,
        payload: Bytes,
        replace: bool,
        absolute: bool,
    },
    SetBit {
        key: Bytes,
        offset: u64,
        bit: bool,
    },
    GetBit {
        key: Bytes,
        offset: u64,
    },
    /// `BITCOUNT`: the range, or the error it answers once the key exists.
    BitCount {
        key: Bytes,
        range: Result<Option<BitRange>, CommandError>,
    },
    /// `BITPOS`: the range, or the error it answers once the key exists.
    BitPos {
        key: Bytes,
        bit: bool,
        range: Result<Option<BitPosRange>, CommandError>,
    },
    BitOp {
        op: BitOperation,
        dest: Bytes,
        keys: Vec<Bytes>,
    },
    /// `BITFIELD` and (`read_only`) `BITFIELD_RO`, which has only `GET`s.
    BitField {
        key: Bytes,
        ops: Vec<BitFieldOp>,
        read_only: bool,
    },
    PfAdd {
        key: Bytes,
        elements: Vec<Bytes>,
    },
    PfCount {
        keys: Vec<Bytes>,
    },
    PfMerge {
        dest: Bytes,
        sources: Vec<Bytes>,
    },
    /// A hash or set command.
    Coll(CollCommand),
}

impl Command {
    /// The command's name in lower case, as metrics and `COMMAND` know it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ping { .. } => "ping",
            Command::Echo { .. } => "echo",
            Command::Hello { .. } => "hello",
            Command::Auth(_) => "auth",
            Command::Select { .. } => "select",
            Command::Quit => "quit",
            Command::Get { .. } => "get",
            Command::Set { .. } => "set",
            Command::GetEx { .. } => "getex",
            Command::GetDel { .. } => "getdel",
            Command::Expire { .. } => "expire",
            Command::Persist { .. } => "persist",
            Command::Ttl { .. } => "ttl",
            Command::SetNx { .. } => "setnx",
            Command::GetSet { .. } => "getset",
            Command::Del { .. } => "del",
            Command::Exists { .. } => "exists",
            Command::MGet { .. } => "mget",
            Command::MSet { .. } => "mset",
            Command::StrLen { .. } => "strlen",
            Command::Append { .. } => "append",
            Command::IncrBy { .. } => "incrby",
            Command::Scan { .. } => "scan",
            Command::Keys { .. } => "keys",
            Command::DbSize => "dbsize",
            Command::FlushDb => "flushdb",
            Command::FlushAll => "flushall",
            Command::Move { .. } => "move",
            Command::SwapDb => "swapdb",
            Command::Type { .. } => "type",
            Command::Info { .. } => "info",
            Command::Command(_) => "command",
            Command::ClientSetName { .. } => "client|setname",
            Command::ClientGetName => "client|getname",
            Command::ClientId => "client|id",
            Command::ClientInfo => "client|info",
            Command::ClientList { .. } => "client|list",
            Command::ClientKill { .. } => "client|kill",
            Command::ClientSetInfo { .. } => "client|setinfo",
            Command::ClientMode { mode: ClientMode::NoEvict, .. } => "client|no-evict",
            Command::ClientMode { mode: ClientMode::NoTouch, .. } => "client|no-touch",
            Command::ClientPause { .. } => "client|pause",
            Command::ClientUnpause => "client|unpause",
            Command::ClientReply { .. } => "client|reply",
            Command::ClientUnblock { .. } => "client|unblock",
            Command::ClientGetRedir => "client|getredir",
            Command::ClientTrackingInfo => "client|trackinginfo",
            Command::Reset => "reset",
            Command::Lolwut => "lolwut",
            Command::ConfigGet { .. } => "config|get",
            Command::ConfigSet { .. } => "config|set",
            Command::ConfigResetStat => "config|resetstat",
            Command::Time => "time",
            Command::Role => "role",
            Command::Watch { .. } => "watch",
            Command::Multi => "multi",
            Command::Exec => "exec",
            Command::Discard => "discard",
            Command::Unwatch => "unwatch",
            Command::Rename { nx: false, .. } => "rename",
            Command::Rename { nx: true, .. } => "renamenx",
            Command::Copy { .. } => "copy",
            Command::IncrByFloat { .. } => "incrbyfloat",
            Command::GetRange { .. } => "getrange",
            Command::SetRange { .. } => "setrange",
            Command::MSetNx { .. } => "msetnx",
            Command::Touch { .. } => "touch",
            Command::Object { query: ObjectQuery::Encoding, .. } => "object|encoding",
            Command::Object { query: ObjectQuery::Freq, .. } => "object|freq",
            Command::Object { query: ObjectQuery::IdleTime, .. } => "object|idletime",
            Command::Object { query: ObjectQuery::RefCount, .. } => "object|refcount",
            Command::ObjectHelp => "object|help",
            Command::RandomKey => "randomkey",
            Command::Dump { .. } => "dump",
            Command::Restore { .. } => "restore",
            Command::SetBit { .. } => "setbit",
            Command::GetBit { .. } => "getbit",
            Command::BitCount { .. } => "bitcount",
            Command::BitPos { .. } => "bitpos",
            Command::BitOp { .. } => "bitop",
            Command::BitField { read_only: false, .. } => "bitfield",
            Command::BitField { read_only: true, .. } => "bitfield_ro",
            Command::PfAdd { .. } => "pfadd",
            Command::PfCount { .. } => "pfcount",
            Command::PfMerge { .. } => "pfmerge",
            Command::Coll(c) => c.name(),
        }
    }
}

/// Redis's arity: exactly `n` arguments (with the name) when positive, at
/// least `-n` when negative.
pub(super) fn check_arity(args: &[Bytes], arity: i32, command: &'static str) -> Result<(), CommandError> {
    let count = args.len();
    let fits = match usize::try_from(arity) {
        Ok(exact) => count == exact,
        Err(_) => count >= arity.unsigned_abs() as usize,
    };
    if fits {
        Ok(())
    } else {
        Err(CommandError::WrongArity { command })
    }
}

fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    parse_i64(arg).ok_or(CommandError::NotInteger)
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Parses a request's arguments (`args[0]` is the name) into a command.
pub fn parse(args: &[Bytes]) -> Result<Command, CommandError> {
    let Some(name) = args.first() else {
        return Err(CommandError::Empty);
    };
    let name = name.to_ascii_lowercase();
    let arity = |arity, command| check_arity(args, arity, command);
    let one = |i: usize| args[i].clone();
    let rest = |from: usize| args[from..].to_vec();
    let command = match name.as_slice() {
        b"ping" => {
            arity(-1, "ping")?;
            if args.len() > 2 {
                return Err(CommandError::WrongArity { command: "ping" });
            }
            Command::Ping { message: args.get(1).cloned() }
        }
        b"echo" => {
            arity(2, "echo")?;
            Command::Echo { message: one(1) }
        }
        b"hello" => parse_hello(args)?,
        b"auth" => {
            arity(-2, "auth")?;
            match args {
                [_, password] => Command::Auth(Credentials { username: None, password: password.clone() }),
                [_, username, password] => Command::Auth(Credentials {
                    username: Some(username.clone()),
                    password: password.clone(),
                }),
                _ => return Err(CommandError::Syntax),
            }
        }
        b"select" => {
            arity(2, "select")?;
            Command::Select { db: integer(&args[1])? }
        }
        b"quit" => {
            arity(-1, "quit")?;
            Command::Quit
        }
        b"get" => {
            arity(2, "get")?;
            Command::Get { key: one(1) }
        }
        b"set" => parse_set(args)?,
        b"setex" | b"psetex" => {
            let (command, unit) = if name == b"setex" { ("setex", 1000) } else { ("psetex", 1) };
            arity(4, command)?;
            let deadline = positive_deadline(&args[2], unit, false, command)?;
            let expiry = SetExpiry::At(deadline);
            Command::Set { key: one(1), value: one(3), condition: SetCondition::Always, get: false, expiry }
        }
        b"getex" => parse_getex(args)?,
        b"getdel" => {
            arity(2, "getdel")?;
            Command::GetDel { key: one(1) }
        }
        b"expire" | b"pexpire" | b"expireat" | b"pexpireat" => parse_expire(args, &name)?,
        b"persist" => {
            arity(2, "persist")?;
            Command::Persist { key: one(1) }
        }
        b"ttl" | b"pttl" | b"expiretime" | b"pexpiretime" => {
            let (command, millis, absolute) = match name.as_slice() {
                b"ttl" => ("ttl", false, false),
                b"pttl" => ("pttl", true, false),
                b"expiretime" => ("expiretime", false, true),
                _ => ("pexpiretime", true, true),
            };
            arity(2, command)?;
            Command::Ttl { key: one(1), query: TtlQuery { millis, absolute } }
        }
        b"setnx" => {
            arity(3, "setnx")?;
            Command::SetNx { key: one(1), value: one(2) }
        }
        b"getset" => {
            arity(3, "getset")?;
            Command::GetSet { key: one(1), value: one(2) }
        }
        b"del" => {
            arity(-2, "del")?;
            Command::Del { keys: rest(1) }
        }
        b"unlink" => {
            arity(-2, "unlink")?;
            Command::Del { keys: rest(1) }
        }
        b"exists" => {
            arity(-2, "exists")?;
            Command::Exists { keys: rest(1) }
        }
        b"mget" => {
            arity(-2, "mget")?;
            Command::MGet { keys: rest(1) }
        }
        b"mset" => {
            arity(-3, "mset")?;
            if args.len().is_multiple_of(2) {
                return Err(CommandError::WrongArity { command: "mset" });
            }
            Command::MSet {
                pairs: args[1..].chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect(),
            }
        }
        b"strlen" => {
            arity(2, "strlen")?;
            Command::StrLen { key: one(1) }
        }
        b"append" => {
            arity(3, "append")?;
            Command::Append { key: one(1), value: one(2) }
        }
        b"incr" => {
            arity(2, "incr")?;
            Command::IncrBy { key: one(1), delta: 1 }
        }
        b"decr" => {
            arity(2, "decr")?;
            Command::IncrBy { key: one(1), delta: -1 }
        }
        b"incrby" => {
            arity(3, "incrby")?;
            Command::IncrBy { key: one(1), delta: integer(&args[2])? }
        }
        b"decrby" => {
            arity(3, "decrby")?;
            let decrement = integer(&args[2])?;
            Command::IncrBy {
                key: one(1),
                delta: decrement.checked_neg().ok_or(CommandError::DecrementOverflow)?,
            }
        }
        b"scan" => parse_scan(args)?,
        b"keys" => {
            arity(2, "keys")?;
            Command::Keys { pattern: one(1) }
        }
        b"dbsize" => {
            arity(1, "dbsize")?;
            Command::DbSize
        }
        b"flushdb" | b"flushall" => {
            let command = if name == b"flushdb" { "flushdb" } else { "flushall" };
            arity(-1, command)?;
            match &args[1..] {
                [] => {}
                [mode] if is(mode, "async") || is(mode, "sync") => {}
                _ => return Err(CommandError::Syntax),
            }
            if command == "flushdb" {
                Command::FlushDb
            } else {
                Command::FlushAll
            }
        }
        b"move" => {
            arity(3, "move")?;
            Command::Move { key: one(1), db: integer(&args[2])? }
        }
        b"swapdb" => {
            arity(3, "swapdb")?;
            Command::SwapDb
        }
        b"type" => {
            arity(2, "type")?;
            Command::Type { key: one(1) }
        }
        b"info" => {
            arity(-1, "info")?;
            Command::Info { sections: rest(1) }
        }
        b"command" => parse_command_query(args)?,
        b"client" => parse_client(args)?,
        b"config" => parse_config(args)?,
        b"time" => {
            arity(1, "time")?;
            Command::Time
        }
        b"role" => {
            arity(1, "role")?;
            Command::Role
        }
        b"reset" => {
            arity(1, "reset")?;
            Command::Reset
        }
        b"lolwut" => {
            // `VERSION v` must be an integer; whatever follows (the art's
            // size) is for art logkv does not draw.
            if let [_, version, v, ..] = args {
                if is(version, "version") {
                    parse_i64(v).ok_or(CommandError::NotInteger)?;
                }
            }
            Command::Lolwut
        }
        b"watch" => {
            arity(-2, "watch")?;
            Command::Watch { keys: rest(1) }
        }
        b"multi" => {
            arity(1, "multi")?;
            Command::Multi
        }
        b"exec" => {
            arity(1, "exec")?;
            Command::Exec
        }
        b"discard" => {
            arity(1, "discard")?;
            Command::Discard
        }
        b"unwatch" => {
            arity(1, "unwatch")?;
            Command::Unwatch
        }
        b"rename" | b"renamenx" => {
            let nx = name == b"renamenx";
            arity(3, if nx { "renamenx" } else { "rename" })?;
            Command::Rename { from: one(1), to: one(2), nx }
        }
        b"copy" => {
            arity(-3, "copy")?;
            string_args::copy(args)?
        }
        b"incrbyfloat" => {
            arity(3, "incrbyfloat")?;
            let delta = parse_float(&args[2]).ok_or(CommandError::NotFloat)?;
            Command::IncrByFloat { key: one(1), delta: Float(delta) }
        }
        b"getrange" | b"substr" => {
            arity(4, if name == b"substr" { "substr" } else { "getrange" })?;
            Command::GetRange { key: one(1), start: integer(&args[2])?, end: integer(&args[3])? }
        }
        b"setrange" => {
            arity(4, "setrange")?;
            let offset = u64::try_from(integer(&args[2])?).map_err(|_| CommandError::OffsetOutOfRange)?;
            Command::SetRange { key: one(1), offset, value: one(3) }
        }
        b"msetnx" => {
            arity(-3, "msetnx")?;
            if args.len().is_multiple_of(2) {
                return Err(CommandError::WrongArity { command: "msetnx" });
            }
            Command::MSetNx {
                pairs: args[1..].chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect(),
            }
        }
        b"touch" => {
            arity(-2, "touch")?;
            Command::Touch { keys: rest(1) }
        }
        b"object" => {
            arity(-2, "object")?;
            string_args::object(args)?
        }
        b"randomkey" => {
            arity(1, "randomkey")?;
            Command::RandomKey
        }
        b"dump" => {
            arity(2, "dump")?;
            Command::Dump { key: one(1) }
        }
        b"restore" => {
            arity(-4, "restore")?;
            string_args::restore(args)?
        }
        b"setbit" => {
            arity(4, "setbit")?;
            string_args::setbit(args)?
        }
        b"getbit" => {
            arity(3, "getbit")?;
            Command::GetBit { key: one(1), offset: string_args::bit_offset(&args[2], None)? }
        }
        b"bitcount" => {
            arity(-2, "bitcount")?;
            string_args::bitcount(args)
        }
        b"bitpos" => {
            arity(-3, "bitpos")?;
            string_args::bitpos(args)?
        }
        b"bitop" => {
            arity(-4, "bitop")?;
            string_args::bitop(args)?
        }
        b"bitfield" | b"bitfield_ro" => {
            let read_only = name == b"bitfield_ro";
            arity(-2, if read_only { "bitfield_ro" } else { "bitfield" })?;
            string_args::bitfield(args, read_only)?
        }
        b"pfadd" => {
            arity(-2, "pfadd")?;
            Command::PfAdd { key: one(1), elements: rest(2) }
        }
        b"pfcount" => {
            arity(-2, "pfcount")?;
            Command::PfCount { keys: rest(1) }
        }
        b"pfmerge" => {
            arity(-2, "pfmerge")?;
            Command::PfMerge { dest: one(1), sources: rest(2) }
        }
        other => match super::collection::parse(other, args) {
            Some(c) => Command::Coll(c?),
            None => return Err(unknown_command(args)),
        },
    };
    Ok(command)
}

fn unknown_subcommand(command: &'static str, subcommand: &[u8]) -> CommandError {
    CommandError::UnknownSubcommand {
        command,
        subcommand: printable(&subcommand[..subcommand.len().min(128)]),
    }
}

/// The expiry option at `args[i]` (`EX`, `PX`, `EXAT`, `PXAT`), if it
/// is one: its unit in milliseconds and whether it is absolute.
fn expiry_option(option: &[u8]) -> Option<(i64, bool)> {
    [("ex", 1000, false), ("px", 1, false), ("exat", 1000, true), ("pxat", 1, true)]
        .into_iter()
        .find(|(word, ..)| is(option, word))
        .map(|(_, unit, absolute)| (unit, absolute))
}

/// A `SET`/`SETEX`/`GETEX` expiry: a positive integer of `unit`
/// milliseconds, as Redis checks it (`invalid expire time in '<command>'`
/// for zero, a negative or an overflowing one).
fn positive_deadline(
    arg: &[u8],
    unit: i64,
    absolute: bool,
    command: &'static str,
) -> Result<Deadline, CommandError> {
    let n = integer(arg)?;
    let ms = n.checked_mul(unit).filter(|_| n > 0).ok_or(CommandError::InvalidExpireTime { command })?;
    Ok(if absolute { Deadline::At(ms) } else { Deadline::In(ms) })
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
fn parse_set(args: &[Bytes]) -> Result<Command, CommandError> {
    check_arity(args, -3, "set")?;
    let mut condition = SetCondition::Always;
    let mut get = false;
    let mut expiry = None;
    let mut keep = false;
    let mut i = 3;
    while let Some(option) = args.get(i) {
        if is(option, "nx") && condition != SetCondition::IfPresent {
            condition = SetCondition::IfAbsent;
        } else if is(option, "xx") && condition != SetCondition::IfAbsent {
            condition = SetCondition::IfPresent;
        } else if is(option, "get") {
            get = true;
        } else if is(option, "keepttl") && expiry.is_none() {
            keep = true;
        } else if let Some(unit) = expiry_option(option).filter(|_| expiry.is_none() && !keep) {
            let value = args.get(i + 1).ok_or(CommandError::Syntax)?;
            expiry = Some((unit, value));
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    let expiry = match expiry {
        Some(((unit, absolute), value)) => SetExpiry::At(positive_deadline(value, unit, absolute, "set")?),
        None if keep => SetExpiry::Keep,
        None => SetExpiry::Never,
    };
    Ok(Command::Set { key: args[1].clone(), value: args[2].clone(), condition, get, expiry })
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`; without an option it
/// is a `GET`.
fn parse_getex(args: &[Bytes]) -> Result<Command, CommandError> {
    check_arity(args, -2, "getex")?;
    let key = args[1].clone();
    match &args[2..] {
        [] => Ok(Command::Get { key }),
        [option] if is(option, "persist") => Ok(Command::GetEx { key, expiry: None }),
        [option, value] => match expiry_option(option) {
            Some((unit, absolute)) => {
                Ok(Command::GetEx { key, expiry: Some(positive_deadline(value, unit, absolute, "getex")?) })
            }
            None => Err(CommandError::Syntax),
        },
        _ => Err(CommandError::Syntax),
    }
}

/// `EXPIRE key seconds [NX|XX|GT|LT]` and its kin: `name` says the unit
/// and whether the time is absolute. Options are checked first, then the
/// time, as Redis does; a time in the past is allowed (it deletes the key).
fn parse_expire(args: &[Bytes], name: &[u8]) -> Result<Command, CommandError> {
    let (command, unit, absolute) = match name {
        b"expire" => ("expire", 1000, false),
        b"pexpire" => ("pexpire", 1, false),
        b"expireat" => ("expireat", 1000, true),
        _ => ("pexpireat", 1, true),
    };
    check_arity(args, -3, command)?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &args[3..] {
        let flag = [("nx", &mut nx), ("xx", &mut xx), ("gt", &mut gt), ("lt", &mut lt)]
            .into_iter()
            .find(|(word, _)| is(option, word))
            .map(|(_, flag)| flag)
            .ok_or_else(|| CommandError::UnsupportedOption { option: printable(option) })?;
        *flag = true;
    }
    if nx && (xx || gt || lt) {
        return Err(CommandError::ExpireNxWithOthers);
    }
    if gt && lt {
        return Err(CommandError::ExpireGtWithLt);
    }
    let condition = match (nx, xx, gt, lt) {
        (true, ..) => ExpireCond::IfNone,
        (_, _, true, _) => ExpireCond::IfLater,
        (_, true, _, true) => ExpireCond::IfSomeAndEarlier,
        (_, _, _, true) => ExpireCond::IfEarlier,
        (_, true, ..) => ExpireCond::IfSome,
        _ => ExpireCond::Always,
    };
    let ms = integer(&args[2])?.checked_mul(unit).ok_or(CommandError::InvalidExpireTime { command })?;
    let deadline = if absolute { Deadline::At(ms) } else { Deadline::In(ms) };
    Ok(Command::Expire { key: args[1].clone(), deadline, condition })
}

fn parse_scan(args: &[Bytes]) -> Result<Command, CommandError> {
    check_arity(args, -2, "scan")?;
    let cursor = parse_u64(&args[1]).ok_or(CommandError::InvalidCursor)?;
    let mut pattern = None;
    let mut count = None;
    let mut kind = None;
    for option in args[2..].chunks(2) {
        let [name, value] = option else {
            return Err(CommandError::Syntax);
        };
        if is(name, "match") {
            pattern = Some(value.clone());
        } else if is(name, "type") {
            kind = Some(value.clone());
        } else if is(name, "count") {
            let n = integer(value)?;
            count = Some(u64::try_from(n).ok().filter(|n| *n >= 1).ok_or(CommandError::Syntax)?);
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(Command::Scan { cursor, pattern, count, kind })
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
fn parse_hello(args: &[Bytes]) -> Result<Command, CommandError> {
    check_arity(args, -1, "hello")?;
    let protocol = match args.get(1) {
        None => None,
        Some(version) => match parse_i64(version) {
            None => return Err(CommandError::ProtocolVersionNotInteger),
            Some(2) => Some(Protocol::Resp2),
            Some(3) => Some(Protocol::Resp3),
            Some(_) => return Err(CommandError::UnsupportedProtocol),
        },
    };
    let mut auth = None;
    let mut client_name = None;
    let mut i = 2;
    while let Some(option) = args.get(i) {
        let more = args.len() - 1 - i;
        if is(option, "auth") && more >= 2 {
            auth = Some(Credentials { username: Some(args[i + 1].clone()), password: args[i + 2].clone() });
            i += 3;
        } else if is(option, "setname") && more >= 1 {
            let name = &args[i + 1];
            check_client_name(name)?;
            client_name = Some(name.clone());
            i += 2;
        } else {
            return Err(CommandError::HelloOption { option: printable(&option[..option.len().min(128)]) });
        }
    }
    Ok(Command::Hello { protocol, auth, client_name })
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND DOCS [name ...]`.
fn parse_command_query(args: &[Bytes]) -> Result<Command, CommandError> {
    check_arity(args, -1, "command")?;
    let Some(subcommand) = args.get(1) else {
        return Ok(Command::Command(CommandQuery::List));
    };
    let query = if is(subcommand, "count") {
        check_arity(args, 2, "command|count")?;
        CommandQuery::Count
    } else if is(subcommand, "docs") {
        CommandQuery::Docs { names: args[2..].to_vec() }
    } else if is(subcommand, "info") {
        CommandQuery::Info { names: args[2..].to_vec() }
    } else if is(subcommand, "getkeys") {
        check_arity(args, -4, "command|getkeys")?;
        CommandQuery::GetKeys { request: args[2..].to_vec() }
    } else if is(subcommand, "getkeysandflags") {
        check_arity(args, -4, "command|getkeysandflags")?;
        CommandQuery::GetKeysAndFlags { request: args[2..].to_vec() }
    } else if is(subcommand, "list") {
        let filter = match &args[2..] {
            [] => None,
            [by, kind, value] if is(by, "filterby") => Some(if is(kind, "module") {
                ListFilter::Module
            } else if is(kind, "aclcat") {
                ListFilter::AclCategory(value.clone())
            } else if is(kind, "pattern") {
                ListFilter::Pattern(value.clone())
            } else {
                return Err(CommandError::Syntax);
            }),
            _ => return Err(CommandError::Syntax),
        };
        CommandQuery::Names { filter }
    } else {
        return Err(unknown_subcommand("COMMAND", subcommand));
    };
    Ok(Command::Command(query))
}

/// `CONFIG GET pattern ...`, `CONFIG SET name value ...`, `CONFIG RESETSTAT`.
fn parse_config(args: &[Bytes]) -> Result<Command, CommandError> {
    check_arity(args, -2, "config")?;
    let subcommand = &args[1];
    if is(subcommand, "get") {
        check_arity(args, -3, "config|get")?;
        Ok(Command::ConfigGet { patterns: args[2..].to_vec() })
    } else if is(subcommand, "set") {
        check_arity(args, -4, "config|set")?;
        if !args.len().is_multiple_of(2) {
            return Err(CommandError::Syntax);
        }
        let pairs = args[2..].chunks_exact(2).map(|p| (p[0].clone(), p[1].clone())).collect();
        Ok(Command::ConfigSet { pairs })
    } else if is(subcommand, "resetstat") {
        check_arity(args, 2, "config|resetstat")?;
        Ok(Command::ConfigResetStat)
    } else {
        Err(unknown_subcommand("CONFIG", subcommand))
    }
}

fn on_off(arg: &[u8]) -> Result<bool, CommandError> {
    if is(arg, "on") {
        Ok(true)
    } else if is(arg, "off") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

/// `TYPE`'s value: whether it names `normal` connections (the only kind
/// logkv has), or an error for a type Redis does not know.
fn client_type(name: &[u8]) -> Result<bool, CommandError> {
    if is(name, "normal") {
        Ok(true)
    } else if ["master", "slave", "replica", "pubsub"].iter().any(|t| is(name, t)) {
        Ok(false)
    } else {
        Err(CommandError::UnknownClientType { name: printable(name) })
    }
}

/// `CLIENT LIST [TYPE type] [ID id ...]`.
fn parse_client_list(args: &[Bytes]) -> Result<Command, CommandError> {
    let mut filter = ClientFilter { skip_me: false, ..ClientFilter::default() };
    match &args[2..] {
        [] => {}
        [kind, name] if is(kind, "type") => filter.normal = client_type(name)?,
        [id, ids @ ..] if is(id, "id") && !ids.is_empty() => {
            for id in ids {
                // Ids start at 1: 0 and negative ids are valid and match none.
                let id = parse_i64(id).ok_or(CommandError::InvalidClientId)?;
                filter.ids.push(u64::try_from(id).unwrap_or(0));
            }
        }
        _ => return Err(CommandError::Syntax),
    }
    Ok(Command::ClientList { filter: Box::new(filter) })
}

/// `CLIENT KILL ip:port`, or `CLIENT KILL <filter> <value> ...`.
fn parse_client_kill(args: &[Bytes]) -> Result<Command, CommandError> {
    if args.len() == 3 {
        let filter = ClientFilter { addr: Some(args[2].clone()), skip_me: false, ..ClientFilter::default() };
        return Ok(Command::ClientKill { filter: Box::new(filter), legacy: true });
    }
    let mut filter = ClientFilter::default();
    for pair in args[2..].chunks(2) {
        let [name, value] = pair else {
            return Err(CommandError::Syntax);
        };
        if is(name, "id") {
            let id = parse_i64(value).and_then(|id| u64::try_from(id).ok()).filter(|id| *id > 0);
            filter.ids = vec![id.ok_or(CommandError::ClientIdNotPositive)?];
        } else if is(name, "addr") {
            filter.addr = Some(value.clone());
        } else if is(name, "laddr") {
            filter.laddr = Some(value.clone());
        } else if is(name, "user") {
            filter.user = Some(value.clone());
        } else if is(name, "type") {
            filter.normal = client_type(value)?;
        } else if is(name, "skipme") {
            filter.skip_me = yes_no(value)?;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(Command::ClientKill { filter: Box::new(filter), legacy: false })
}

fn yes_no(arg: &[u8]) -> Result<bool, CommandError> {
    if is(arg, "yes") {
        Ok(true)
    } else if is(arg, "no") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

/// `CLIENT SETINFO LIB-NAME|LIB-VER value`.
fn parse_client_setinfo(args: &[Bytes]) -> Result<Command, CommandError> {
    let (option, value) = (&args[2], &args[3]);
    let attribute = if is(option, "lib-name") {
        LibAttribute::Name
    } else if is(option, "lib-ver") {
        LibAttribute::Version
    } else {
        return Err(CommandError::UnknownClientAttribute { option: printable(option) });
    };
    if !value.iter().all(|b| (b'!'..=b'~').contains(b)) {
        return Err(CommandError::InvalidClientAttribute { attribute: printable(option) });
    }
    Ok(Command::ClientSetInfo { attribute, value: value.clone() })
}

/// `CLIENT ...`: the connection's own settings and the server's list of
/// connections.
fn parse_client(args: &[Bytes]) -> Result<Command, CommandError> {
    check_arity(args, -2, "client")?;
    let subcommand = &args[1];
    if is(subcommand, "info") {
        check_arity(args, 2, "client|info")?;
        Ok(Command::ClientInfo)
    } else if is(subcommand, "list") {
        check_arity(args, -2, "client|list")?;
        parse_client_list(args)
    } else if is(subcommand, "kill") {
        check_arity(args, -3, "client|kill")?;
        parse_client_kill(args)
    } else if is(subcommand, "setinfo") {
        check_arity(args, 4, "client|setinfo")?;
        parse_client_setinfo(args)
    } else if is(subcommand, "no-evict") {
        check_arity(args, 3, "client|no-evict")?;
        Ok(Command::ClientMode { mode: ClientMode::NoEvict, on: on_off(&args[2])? })
    } else if is(subcommand, "no-touch") {
        check_arity(args, 3, "client|no-touch")?;
        Ok(Command::ClientMode { mode: ClientMode::NoTouch, on: on_off(&args[2])? })
    } else if is(subcommand, "setname") {
        check_arity(args, 3, "client|setname")?;
        check_client_name(&args[2])?;
        Ok(Command::ClientSetName { name: args[2].clone() })
    } else if is(subcommand, "getname") {
        check_arity(args, 2, "client|getname")?;
        Ok(Command::ClientGetName)
    } else if is(subcommand, "id") {
        check_arity(args, 2, "client|id")?;
        Ok(Command::ClientId)
    } else if is(subcommand, "pause") {
        check_arity(args, -3, "client|pause")?;
        parse_client_pause(args)
    } else if is(subcommand, "unpause") {
        check_arity(args, 2, "client|unpause")?;
        Ok(Command::ClientUnpause)
    } else if is(subcommand, "reply") {
        check_arity(args, 3, "client|reply")?;
        let mode = [("on", ReplyMode::On), ("off", ReplyMode::Off), ("skip", ReplyMode::Skip)]
            .into_iter()
            .find(|(word, _)| is(&args[2], word))
            .ok_or(CommandError::Syntax)?
            .1;
        Ok(Command::ClientReply { mode })
    } else if is(subcommand, "unblock") {
        check_arity(args, -3, "client|unblock")?;
        parse_client_unblock(args)
    } else if is(subcommand, "getredir") {
        check_arity(args, 2, "client|getredir")?;
        Ok(Command::ClientGetRedir)
    } else if is(subcommand, "trackinginfo") {
        check_arity(args, 2, "client|trackinginfo")?;
        Ok(Command::ClientTrackingInfo)
    } else {
        Err(unknown_subcommand("CLIENT", subcommand))
    }
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`: the timeout in milliseconds.
fn parse_client_pause(args: &[Bytes]) -> Result<Command, CommandError> {
    let millis = parse_i64(&args[2]).ok_or(CommandError::PauseTimeoutNotInteger)?;
    let millis = u64::try_from(millis).map_err(|_| CommandError::PauseTimeoutNegative)?;
    let writes_only = match &args[3..] {
        [] => false,
        [mode] if is(mode, "write") => true,
        [mode] if is(mode, "all") => false,
        [_] => return Err(CommandError::PauseMode),
        _ => return Err(CommandError::SubcommandArguments { command: "CLIENT", subcommand: "PAUSE" }),
    };
    Ok(Command::ClientPause { millis, writes_only })
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`.
fn parse_client_unblock(args: &[Bytes]) -> Result<Command, CommandError> {
    let id = parse_i64(&args[2]).ok_or(CommandError::NotInteger)?;
    match &args[3..] {
        [] => {}
        [reason] if is(reason, "timeout") || is(reason, "error") => {}
        [_] => return Err(CommandError::UnblockReason),
        _ => return Err(CommandError::SubcommandArguments { command: "CLIENT", subcommand: "UNBLOCK" }),
    }
    Ok(Command::ClientUnblock { id })
}

/// Client names are printable ASCII without spaces (`!` to `~`), as in Redis.
fn check_client_name(name: &[u8]) -> Result<(), CommandError> {
    if name.iter().all(|b| (b'!'..=b'~').contains(b)) {
        Ok(())
    } else {
        Err(CommandError::InvalidClientName)
    }
}
