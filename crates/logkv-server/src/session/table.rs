//! The table of commands logkv serves, with Redis 7.0's arity, flags, key
//! positions, ACL categories and docs: `COMMAND`, `COMMAND COUNT`,
//! `COMMAND DOCS`, and the arity that tells a rejected command (refused
//! before it runs, which aborts a `MULTI` block) from one that fails when
//! it runs.

use crate::resp::command::Bytes;
use crate::resp::reply::Reply;

/// One command (or subcommand, named `container|sub`).
pub struct Spec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis's arity: exact when positive, a minimum when negative.
    pub arity: i32,
    /// Redis's command flags.
    pub flags: &'static [&'static str],
    /// First key argument, last (negative: from the end), step.
    pub keys: (i64, i64, i64),
    /// ACL categories, with their `@`.
    pub categories: &'static [&'static str],
    /// Redis's command group.
    pub group: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// The Redis version that introduced it.
    pub since: &'static str,
    /// Time complexity.
    pub complexity: &'static str,
}

const CONN: &[&str] = &["@fast", "@connection"];
const NO_AUTH: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"];
const TX: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
const READ_FAST: &[&str] = &["readonly", "fast"];
const WRITE_FAST: &[&str] = &["write", "denyoom", "fast"];
const STR_READ: &[&str] = &["@read", "@string", "@fast"];
const STR_WRITE_FAST: &[&str] = &["@write", "@string", "@fast"];
const WRITE_ONLY_FAST: &[&str] = &["write", "fast"];
const KEY_WRITE: &[&str] = &["@keyspace", "@write", "@fast"];
const KEY_READ: &[&str] = &["@keyspace", "@read", "@fast"];

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $cats:expr, $group:literal, $summary:literal, $since:literal, $cx:literal) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            categories: $cats,
            group: $group,
            summary: $summary,
            since: $since,
            complexity: $cx,
        }
    };
}

/// Every top-level command logkv serves.
pub const COMMANDS: &[Spec] = &[
    spec!("ping", -1, &["fast"], (0, 0, 0), CONN, "connection", "Ping the server", "1.0.0", "O(1)"),
    spec!("echo", 2, &["fast"], (0, 0, 0), CONN, "connection", "Echo the given string", "1.0.0", "O(1)"),
    spec!("hello", -1, NO_AUTH, (0, 0, 0), CONN, "connection", "Handshake with Redis", "6.0.0", "O(1)"),
    spec!(
        "auth",
        -2,
        NO_AUTH,
        (0, 0, 0),
        CONN,
        "connection",
        "Authenticate to the server",
        "1.0.0",
        "O(N) where N is the number of passwords defined for the user"
    ),
    spec!(
        "select",
        2,
        &["loading", "stale", "fast"],
        (0, 0, 0),
        CONN,
        "connection",
        "Change the selected database for the current connection",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "quit",
        -1,
        &["allow_busy", "noscript", "loading", "stale", "fast", "no_auth"],
        (0, 0, 0),
        CONN,
        "connection",
        "Close the connection",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "client",
        -2,
        &[],
        (0, 0, 0),
        &["@slow"],
        "connection",
        "A container for client connection commands",
        "2.4.0",
        "Depends on subcommand."
    ),
    spec!("get", 2, READ_FAST, (1, 1, 1), STR_READ, "string", "Get the value of a key", "1.0.0", "O(1)"),
    spec!(
        "set",
        -3,
        &["write", "denyoom"],
        (1, 1, 1),
        &["@write", "@string", "@slow"],
        "string",
        "Set the string value of a key",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "setnx",
        3,
        WRITE_FAST,
        (1, 1, 1),
        STR_WRITE_FAST,
        "string",
        "Set the value of a key, only if the key does not exist",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "getset",
        3,
        WRITE_FAST,
        (1, 1, 1),
        STR_WRITE_FAST,
        "string",
        "Set the string value of a key and return its old value",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "mget",
        -2,
        READ_FAST,
        (1, -1, 1),
        STR_READ,
        "string",
        "Get the values of all the given keys",
        "1.0.0",
        "O(N) where N is the number of keys to retrieve."
    ),
    spec!(
        "mset",
        -3,
        &["write", "denyoom"],
        (1, -1, 2),
        &["@write", "@string", "@slow"],
        "string",
        "Set multiple keys to multiple values",
        "1.0.1",
        "O(N) where N is the number of keys to set."
    ),
    spec!(
        "strlen",
        2,
        READ_FAST,
        (1, 1, 1),
        STR_READ,
        "string",
        "Get the length of the value stored in a key",
        "2.2.0",
        "O(1)"
    ),
    spec!(
        "append",
        3,
        WRITE_FAST,
        (1, 1, 1),
        STR_WRITE_FAST,
        "string",
        "Append a value to a key",
        "2.0.0",
        "O(1)"
    ),
    spec!(
        "setex",
        4,
        &["write", "denyoom"],
        (1, 1, 1),
        &["@write", "@string", "@slow"],
        "string",
        "Set the value and expiration of a key",
        "2.0.0",
        "O(1)"
    ),
    spec!(
        "psetex",
        4,
        &["write", "denyoom"],
        (1, 1, 1),
        &["@write", "@string", "@slow"],
        "string",
        "Set the value and expiration in milliseconds of a key",
        "2.6.0",
        "O(1)"
    ),
    spec!(
        "getex",
        -2,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        STR_WRITE_FAST,
        "string",
        "Get the value of a key and optionally set its expiration",
        "6.2.0",
        "O(1)"
    ),
    spec!(
        "getdel",
        2,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        STR_WRITE_FAST,
        "string",
        "Get the value of a key and delete the key",
        "6.2.0",
        "O(1)"
    ),
    spec!(
        "expire",
        -3,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        KEY_WRITE,
        "generic",
        "Set a key's time to live in seconds",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "pexpire",
        -3,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        KEY_WRITE,
        "generic",
        "Set a key's time to live in milliseconds",
        "2.6.0",
        "O(1)"
    ),
    spec!(
        "expireat",
        -3,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        KEY_WRITE,
        "generic",
        "Set the expiration for a key as a UNIX timestamp",
        "1.2.0",
        "O(1)"
    ),
    spec!(
        "pexpireat",
        -3,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        KEY_WRITE,
        "generic",
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
        "2.6.0",
        "O(1)"
    ),
    spec!(
        "persist",
        2,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        KEY_WRITE,
        "generic",
        "Remove the expiration from a key",
        "2.2.0",
        "O(1)"
    ),
    spec!(
        "ttl",
        2,
        READ_FAST,
        (1, 1, 1),
        KEY_READ,
        "generic",
        "Get the time to live for a key in seconds",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "pttl",
        2,
        READ_FAST,
        (1, 1, 1),
        KEY_READ,
        "generic",
        "Get the time to live for a key in milliseconds",
        "2.6.0",
        "O(1)"
    ),
    spec!(
        "expiretime",
        2,
        READ_FAST,
        (1, 1, 1),
        KEY_READ,
        "generic",
        "Get the expiration Unix timestamp for a key",
        "7.0.0",
        "O(1)"
    ),
    spec!(
        "pexpiretime",
        2,
        READ_FAST,
        (1, 1, 1),
        KEY_READ,
        "generic",
        "Get the expiration Unix timestamp for a key in milliseconds",
        "7.0.0",
        "O(1)"
    ),
    spec!(
        "incr",
        2,
        WRITE_FAST,
        (1, 1, 1),
        STR_WRITE_FAST,
        "string",
        "Increment the integer value of a key by one",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "incrby",
        3,
        WRITE_FAST,
        (1, 1, 1),
        STR_WRITE_FAST,
        "string",
        "Increment the integer value of a key by the given amount",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "decr",
        2,
        WRITE_FAST,
        (1, 1, 1),
        STR_WRITE_FAST,
        "string",
        "Decrement the integer value of a key by one",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "decrby",
        3,
        WRITE_FAST,
        (1, 1, 1),
        STR_WRITE_FAST,
        "string",
        "Decrement the integer value of a key by the given number",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "del",
        -2,
        &["write"],
        (1, -1, 1),
        &["@keyspace", "@write", "@slow"],
        "generic",
        "Delete a key",
        "1.0.0",
        "O(N) where N is the number of keys that will be removed."
    ),
    spec!(
        "unlink",
        -2,
        &["write", "fast"],
        (1, -1, 1),
        &["@keyspace", "@write", "@fast"],
        "generic",
        "Delete a key (the same as DEL in logkv)",
        "4.0.0",
        "O(1) for each key removed regardless of its size."
    ),
    spec!(
        "exists",
        -2,
        READ_FAST,
        (1, -1, 1),
        &["@keyspace", "@read", "@fast"],
        "generic",
        "Determine if a key exists",
        "1.0.0",
        "O(N) where N is the number of keys to check."
    ),
    spec!(
        "type",
        2,
        READ_FAST,
        (1, 1, 1),
        &["@keyspace", "@read", "@fast"],
        "generic",
        "Determine the type stored at key",
        "1.0.0",
        "O(1)"
    ),
    spec!(
        "scan",
        -2,
        &["readonly"],
        (0, 0, 0),
        &["@keyspace", "@read", "@slow"],
        "generic",
        "Incrementally iterate the keys space",
        "2.8.0",
        "O(1) for every call. O(N) for a complete iteration."
    ),
    spec!(
        "keys",
        2,
        &["readonly"],
        (0, 0, 0),
        &["@keyspace", "@read", "@slow", "@dangerous"],
        "generic",
        "Find all keys matching the given pattern",
        "1.0.0",
        "O(N) with N being the number of keys in the database"
    ),
    spec!(
        "dbsize",
        1,
        READ_FAST,
        (0, 0, 0),
        &["@keyspace", "@read", "@fast"],
        "server",
        "Return the number of keys in the selected database",
        "1.0.0",
        "O(N) in logkv (a count of the live keys)"
    ),
    spec!(
        "info",
        -1,
        &["loading", "stale"],
        (0, 0, 0),
        &["@slow", "@dangerous"],
        "server",
        "Get information and statistics about the server",
        "1.0.0",
        "O(N) where N is the number of keys (for the keyspace section)"
    ),
    spec!(
        "command",
        -1,
        &["loading", "stale"],
        (0, 0, 0),
        &["@slow", "@connection"],
        "server",
        "Get array of Redis command details",
        "2.8.13",
        "O(N) where N is the total number of Redis commands"
    ),
    spec!(
        "config",
        -2,
        &[],
        (0, 0, 0),
        &["@slow"],
        "server",
        "A container for server configuration commands",
        "2.0.0",
        "Depends on subcommand."
    ),
    spec!(
        "watch",
        -2,
        TX,
        (1, -1, 1),
        &["@fast", "@transaction"],
        "transactions",
        "Watch the given keys to determine execution of the MULTI/EXEC block",
        "2.2.0",
        "O(1) for every key."
    ),
    spec!(
        "unwatch",
        1,
        TX,
        (0, 0, 0),
        &["@fast", "@transaction"],
        "transactions",
        "Forget about all watched keys",
        "2.2.0",
        "O(1)"
    ),
    spec!(
        "multi",
        1,
        TX,
        (0, 0, 0),
        &["@fast", "@transaction"],
        "transactions",
        "Mark the start of a transaction block",
        "1.2.0",
        "O(1)"
    ),
    spec!(
        "exec",
        1,
        &["noscript", "loading", "stale", "skip_slowlog"],
        (0, 0, 0),
        &["@slow", "@transaction"],
        "transactions",
        "Execute all commands issued after MULTI",
        "1.2.0",
        "Depends on commands in the transaction"
    ),
    spec!(
        "discard",
        1,
        TX,
        (0, 0, 0),
        &["@fast", "@transaction"],
        "transactions",
        "Discard all commands issued after MULTI",
        "2.0.0",
        "O(N), when N is the number of queued commands"
    ),
];

/// Subcommands of the container commands.
pub const SUBCOMMANDS: &[Spec] = &[
    spec!(
        "client|id",
        2,
        &["noscript", "loading", "stale"],
        (0, 0, 0),
        &["@slow", "@connection"],
        "connection",
        "Returns the client ID for the current connection",
        "5.0.0",
        "O(1)"
    ),
    spec!(
        "client|setname",
        3,
        &["noscript", "loading", "stale"],
        (0, 0, 0),
        &["@slow", "@connection"],
        "connection",
        "Set the current connection name",
        "2.6.9",
        "O(1)"
    ),
    spec!(
        "client|getname",
        2,
        &["noscript", "loading", "stale"],
        (0, 0, 0),
        &["@slow", "@connection"],
        "connection",
        "Get the current connection name",
        "2.6.9",
        "O(1)"
    ),
    spec!(
        "config|get",
        -3,
        &["admin", "noscript", "loading", "stale"],
        (0, 0, 0),
        &["@admin", "@slow", "@dangerous"],
        "server",
        "Get the values of configuration parameters",
        "2.0.0",
        "O(N) when N is the number of configuration parameters provided"
    ),
    spec!(
        "command|count",
        2,
        &["loading", "stale"],
        (0, 0, 0),
        &["@slow", "@connection"],
        "server",
        "Get total number of Redis commands",
        "2.8.13",
        "O(1)"
    ),
    spec!(
        "command|docs",
        -2,
        &["loading", "stale"],
        (0, 0, 0),
        &["@slow", "@connection"],
        "server",
        "Get array of specific Redis command documentation",
        "7.0.0",
        "O(N) where N is the number of commands to look up"
    ),
];

fn lookup(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS.iter().chain(SUBCOMMANDS).find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

fn subcommands(container: &str) -> impl Iterator<Item = &'static Spec> + '_ {
    SUBCOMMANDS.iter().filter(move |s| s.name.split('|').next() == Some(container))
}

fn fits(arity: i32, count: usize) -> bool {
    match usize::try_from(arity) {
        Ok(exact) => count == exact,
        Err(_) => count >= arity.unsigned_abs() as usize,
    }
}

/// Whether Redis would accept a request of these arguments for running:
/// a known command (and subcommand) whose table arity the argument count
/// fits. A request that passes this but fails to parse fails when it runs
/// (inside `MULTI`: at `EXEC`); one that does not is rejected at once.
pub fn accepted(args: &[Bytes]) -> bool {
    let Some(spec) = args.first().and_then(|n| lookup(n)) else { return false };
    if !fits(spec.arity, args.len()) {
        return false;
    }
    let mut subs = subcommands(spec.name).peekable();
    if subs.peek().is_none() || (spec.name == "command" && args.len() == 1) {
        return true;
    }
    let wanted = args[1].to_ascii_lowercase();
    subs.find(|s| s.name.split('|').nth(1).map(str::as_bytes) == Some(&wanted[..]))
        .is_some_and(|s| fits(s.arity, args.len()))
}

fn status_set(items: &[&str]) -> Reply {
    Reply::Set(items.iter().map(|s| Reply::Simple((*s).into())).collect())
}

fn info(spec: &Spec) -> Reply {
    let subs: Vec<Reply> =
        if spec.name.contains('|') { Vec::new() } else { subcommands(spec.name).map(info).collect() };
    Reply::Array(vec![
        Reply::Bulk(spec.name.as_bytes().to_vec()),
        Reply::Integer(spec.arity.into()),
        status_set(spec.flags),
        Reply::Integer(spec.keys.0),
        Reply::Integer(spec.keys.1),
        Reply::Integer(spec.keys.2),
        status_set(spec.categories),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(subs),
    ])
}

/// `COMMAND`: every command's details.
pub fn list() -> Reply {
    Reply::Array(COMMANDS.iter().map(info).collect())
}

/// `COMMAND COUNT`.
pub fn count() -> Reply {
    Reply::Integer(COMMANDS.len() as i64)
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn doc(spec: &Spec) -> Reply {
    let mut fields = vec![
        (bulk("summary"), bulk(spec.summary)),
        (bulk("since"), bulk(spec.since)),
        (bulk("group"), bulk(spec.group)),
        (bulk("complexity"), bulk(spec.complexity)),
    ];
    if !spec.name.contains('|') {
        let subs: Vec<(Reply, Reply)> = subcommands(spec.name).map(|s| (bulk(s.name), doc(s))).collect();
        if !subs.is_empty() {
            fields.push((bulk("subcommands"), Reply::Map(subs)));
        }
    }
    Reply::Map(fields)
}

/// `COMMAND DOCS [name ...]`: docs of the named commands (unknown names
/// are left out, as in Redis), or of every command.
pub fn docs(names: &[Bytes]) -> Reply {
    let specs: Vec<&Spec> = if names.is_empty() {
        COMMANDS.iter().collect()
    } else {
        names
            .iter()
            .filter_map(|n| COMMANDS.iter().find(|s| s.name.as_bytes().eq_ignore_ascii_case(n)))
            .collect()
    };
    Reply::Map(specs.into_iter().map(|s| (bulk(s.name), doc(s))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::command::parse;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    #[test]
    fn every_command_of_the_parser_is_in_the_table() {
        for line in [
            "ping",
            "echo x",
            "hello",
            "auth p",
            "select 0",
            "quit",
            "get k",
            "set k v",
            "setnx k v",
            "getset k v",
            "del k",
            "unlink k",
            "exists k",
            "mget k",
            "mset k v",
            "strlen k",
            "append k v",
            "incr k",
            "decr k",
            "incrby k 1",
            "decrby k 1",
            "scan 0",
            "keys *",
            "dbsize",
            "type k",
            "info",
            "command",
            "command count",
            "command docs",
            "client id",
            "client setname n",
            "client getname",
            "config get x",
            "watch k",
            "multi",
            "exec",
            "discard",
            "unwatch",
        ] {
            assert!(parse(&args(line)).is_ok(), "{line}");
            assert!(accepted(&args(line)), "{line}");
        }
    }

    #[test]
    fn arity_tells_rejection_from_failure() {
        assert!(!accepted(&args("get")));
        assert!(!accepted(&args("get a b")));
        assert!(!accepted(&args("nosuch a")));
        assert!(!accepted(&args("client")));
        assert!(!accepted(&args("client nosuch")));
        assert!(!accepted(&args("command count x")));
        // These parse to errors, but only when they run, as in Redis.
        assert!(accepted(&args("mset a b c")));
        assert!(accepted(&args("ping a b")));
        assert!(accepted(&args("set k v nx xx")));
        assert!(accepted(&args("incrby k x")));
    }
}
