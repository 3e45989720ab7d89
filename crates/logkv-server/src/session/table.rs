//! The table of commands logkv serves, with Redis 7.0's arity, flags, key
//! positions and key specs, ACL categories, tips and docs: `COMMAND` and
//! its `COUNT`, `DOCS`, `INFO`, `LIST` and `GETKEYS`, the `denyoom` flag
//! that `maxmemory` refuses, and the arity that tells a rejected command (refused
//! before it runs, which aborts a `MULTI` block) from one that fails when
//! it runs.

use super::glob;
use crate::resp::command::{Bytes, ListFilter};
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
    /// Time complexity (empty for a command Redis gives none, `LOLWUT`).
    pub complexity: &'static str,
    /// The flags of its key spec (`RO`, `access`, ...): empty for a
    /// command without keys. Every keyed command logkv serves has one
    /// spec, a range from `keys`.
    pub key_flags: &'static [&'static str],
    /// Redis's command tips.
    pub tips: &'static [&'static str],
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
const READ_ONLY: &[&str] = &["readonly"];
const WRITE_DENYOOM: &[&str] = &["write", "denyoom"];
const HASH_READ_FAST: &[&str] = &["@read", "@hash", "@fast"];
const HASH_READ_SLOW: &[&str] = &["@read", "@hash", "@slow"];
const HASH_WRITE_FAST: &[&str] = &["@write", "@hash", "@fast"];
const SET_READ_FAST: &[&str] = &["@read", "@set", "@fast"];
const SET_READ_SLOW: &[&str] = &["@read", "@set", "@slow"];
const SET_WRITE_FAST: &[&str] = &["@write", "@set", "@fast"];
const SET_WRITE_SLOW: &[&str] = &["@write", "@set", "@slow"];
const ZSET_READ_FAST: &[&str] = &["@read", "@sortedset", "@fast"];
const ZSET_READ_SLOW: &[&str] = &["@read", "@sortedset", "@slow"];
const ZSET_WRITE_FAST: &[&str] = &["@write", "@sortedset", "@fast"];
const ZSET_WRITE_SLOW: &[&str] = &["@write", "@sortedset", "@slow"];
const WRITE_ONLY: &[&str] = &["write"];
const LIST_READ_FAST: &[&str] = &["@read", "@list", "@fast"];
const LIST_READ_SLOW: &[&str] = &["@read", "@list", "@slow"];
const LIST_WRITE_FAST: &[&str] = &["@write", "@list", "@fast"];
const LIST_WRITE_SLOW: &[&str] = &["@write", "@list", "@slow"];

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $cats:expr, $group:literal, $summary:literal, $since:literal, $cx:literal, $key_flags:expr, $tips:expr) => {
        Spec {
            key_flags: $key_flags,
            tips: $tips,
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
    spec!(
        "ping",
        -1,
        &["fast"],
        (0, 0, 0),
        CONN,
        "connection",
        "Ping the server",
        "1.0.0",
        "O(1)",
        &[],
        &["request_policy:all_shards", "response_policy:all_succeeded"]
    ),
    spec!(
        "echo",
        2,
        &["fast"],
        (0, 0, 0),
        CONN,
        "connection",
        "Echo the given string",
        "1.0.0",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "hello",
        -1,
        NO_AUTH,
        (0, 0, 0),
        CONN,
        "connection",
        "Handshake with Redis",
        "6.0.0",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "auth",
        -2,
        NO_AUTH,
        (0, 0, 0),
        CONN,
        "connection",
        "Authenticate to the server",
        "1.0.0",
        "O(N) where N is the number of passwords defined for the user",
        &[],
        &[]
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
        "O(1)",
        &[],
        &[]
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
        "O(1)",
        &[],
        &[]
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
        "Depends on subcommand.",
        &[],
        &[]
    ),
    spec!(
        "get",
        2,
        READ_FAST,
        (1, 1, 1),
        STR_READ,
        "string",
        "Get the value of a key",
        "1.0.0",
        "O(1)",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "set",
        -3,
        &["write", "denyoom"],
        (1, 1, 1),
        &["@write", "@string", "@slow"],
        "string",
        "Set the string value of a key",
        "1.0.0",
        "O(1)",
        &["RW", "access", "update", "variable_flags"],
        &[]
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
        "O(1)",
        &["OW", "insert"],
        &[]
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
        "O(1)",
        &["RW", "access", "update"],
        &[]
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
        "O(N) where N is the number of keys to retrieve.",
        &["RO", "access"],
        &["request_policy:multi_shard"]
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
        "O(N) where N is the number of keys to set.",
        &["OW", "update"],
        &["request_policy:multi_shard", "response_policy:all_succeeded"]
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
        "O(1)",
        &["RO"],
        &[]
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
        "O(1)",
        &["RW", "insert"],
        &[]
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
        "O(1)",
        &["OW", "update"],
        &[]
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
        "O(1)",
        &["OW", "update"],
        &[]
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
        "O(1)",
        &["RW", "access", "update"],
        &[]
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
        "O(1)",
        &["RW", "access", "delete"],
        &[]
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
        "O(1)",
        &["RW", "update"],
        &[]
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
        "O(1)",
        &["RW", "update"],
        &[]
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
        "O(1)",
        &["RW", "update"],
        &[]
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
        "O(1)",
        &["RW", "update"],
        &[]
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
        "O(1)",
        &["RW", "update"],
        &[]
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
        "O(1)",
        &["RO", "access"],
        &["nondeterministic_output"]
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
        "O(1)",
        &["RO", "access"],
        &["nondeterministic_output"]
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
        "O(1)",
        &["RO", "access"],
        &[]
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
        "O(1)",
        &["RO", "access"],
        &[]
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
        "O(1)",
        &["RW", "access", "update"],
        &[]
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
        "O(1)",
        &["RW", "access", "update"],
        &[]
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
        "O(1)",
        &["RW", "access", "update"],
        &[]
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
        "O(1)",
        &["RW", "access", "update"],
        &[]
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
        "O(N) where N is the number of keys that will be removed.",
        &["RM", "delete"],
        &["request_policy:multi_shard", "response_policy:agg_sum"]
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
        "O(1) for each key removed regardless of its size.",
        &["RM", "delete"],
        &["request_policy:multi_shard", "response_policy:agg_sum"]
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
        "O(N) where N is the number of keys to check.",
        &["RO"],
        &["request_policy:multi_shard", "response_policy:agg_sum"]
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
        "O(1)",
        &["RO"],
        &[]
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
        "O(1) for every call. O(N) for a complete iteration.",
        &[],
        &["nondeterministic_output", "request_policy:special"]
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
        "O(N) with N being the number of keys in the database",
        &[],
        &["request_policy:all_shards", "nondeterministic_output_order"]
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
        "O(N) in logkv (a count of the live keys)",
        &[],
        &["request_policy:all_shards", "response_policy:agg_sum"]
    ),
    spec!(
        "flushdb",
        -1,
        &["write"],
        (0, 0, 0),
        &["@keyspace", "@write", "@slow", "@dangerous"],
        "server",
        "Remove all keys from the current database",
        "1.0.0",
        "O(1) in logkv (one flush op; compaction reclaims the records)",
        &[],
        &["request_policy:all_shards", "response_policy:all_succeeded"]
    ),
    spec!(
        "flushall",
        -1,
        &["write"],
        (0, 0, 0),
        &["@keyspace", "@write", "@slow", "@dangerous"],
        "server",
        "Remove all keys from all databases",
        "1.0.0",
        "O(D) in logkv, D the number of databases (one flush op each, in one entry)",
        &[],
        &["request_policy:all_shards", "response_policy:all_succeeded"]
    ),
    spec!(
        "move",
        3,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        KEY_WRITE,
        "generic",
        "Move a key to another database",
        "1.0.0",
        "O(1)",
        &["RW", "access", "update"],
        &[]
    ),
    spec!(
        "swapdb",
        3,
        WRITE_ONLY_FAST,
        (0, 0, 0),
        &["@keyspace", "@write", "@fast", "@dangerous"],
        "server",
        "Swaps two Redis databases (refused by logkv)",
        "4.0.0",
        "O(N) where N is the count of clients watching or blocking on keys from both databases",
        &[],
        &[]
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
        "O(N) where N is the number of keys (for the keyspace section)",
        &[],
        &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]
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
        "O(N) where N is the total number of Redis commands",
        &[],
        &["nondeterministic_output_order"]
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
        "Depends on subcommand.",
        &[],
        &[]
    ),
    spec!(
        "time",
        1,
        &["loading", "stale", "fast"],
        (0, 0, 0),
        &["@fast"],
        "server",
        "Return the current server time",
        "2.6.0",
        "O(1)",
        &[],
        &["nondeterministic_output"]
    ),
    spec!(
        "reset",
        1,
        NO_AUTH,
        (0, 0, 0),
        CONN,
        "connection",
        "Reset the connection",
        "6.2.0",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "lolwut",
        -1,
        READ_FAST,
        (0, 0, 0),
        &["@read", "@fast"],
        "server",
        "Display some computer art and the Redis version",
        "5.0.0",
        "",
        &[],
        &[]
    ),
    spec!(
        "role",
        1,
        &["noscript", "loading", "stale", "fast"],
        (0, 0, 0),
        &["@admin", "@fast", "@dangerous"],
        "server",
        "Return the role of the instance in the context of replication",
        "2.8.12",
        "O(1)",
        &[],
        &[]
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
        "O(1) for every key.",
        &["RO"],
        &[]
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
        "O(1)",
        &[],
        &[]
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
        "O(1)",
        &[],
        &[]
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
        "Depends on commands in the transaction",
        &[],
        &[]
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
        "O(N), when N is the number of queued commands",
        &[],
        &[]
    ),    spec!(
        "hset",
        -4,
        WRITE_FAST,
        (1, 1, 1),
        HASH_WRITE_FAST,
        "hash",
        "Set the string value of a hash field",
        "2.0.0",
        "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.",
        &["RW", "update", "insert"],
        &[]
    ),
    spec!(
        "hmset",
        -4,
        WRITE_FAST,
        (1, 1, 1),
        HASH_WRITE_FAST,
        "hash",
        "Set multiple hash fields to multiple values",
        "2.0.0",
        "O(N) where N is the number of fields being set.",
        &["RW", "update"],
        &[]
    ),
    spec!(
        "hsetnx",
        4,
        WRITE_FAST,
        (1, 1, 1),
        HASH_WRITE_FAST,
        "hash",
        "Set the value of a hash field, only if the field does not exist",
        "2.0.0",
        "O(1)",
        &["RW", "insert"],
        &[]
    ),
    spec!(
        "hdel",
        -3,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        HASH_WRITE_FAST,
        "hash",
        "Delete one or more hash fields",
        "2.0.0",
        "O(N) where N is the number of fields to be removed.",
        &["RW", "delete"],
        &[]
    ),
    spec!(
        "hincrby",
        4,
        WRITE_FAST,
        (1, 1, 1),
        HASH_WRITE_FAST,
        "hash",
        "Increment the integer value of a hash field by the given number",
        "2.0.0",
        "O(1)",
        &["RW", "access", "update"],
        &[]
    ),
    spec!(
        "hincrbyfloat",
        4,
        WRITE_FAST,
        (1, 1, 1),
        HASH_WRITE_FAST,
        "hash",
        "Increment the float value of a hash field by the given amount",
        "2.6.0",
        "O(1)",
        &["RW", "access", "update"],
        &[]
    ),
    spec!(
        "hget",
        3,
        READ_FAST,
        (1, 1, 1),
        HASH_READ_FAST,
        "hash",
        "Get the value of a hash field",
        "2.0.0",
        "O(1)",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "hmget",
        -3,
        READ_FAST,
        (1, 1, 1),
        HASH_READ_FAST,
        "hash",
        "Get the values of all the given hash fields",
        "2.0.0",
        "O(N) where N is the number of fields being requested.",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "hgetall",
        2,
        READ_ONLY,
        (1, 1, 1),
        HASH_READ_SLOW,
        "hash",
        "Get all the fields and values in a hash",
        "2.0.0",
        "O(N) where N is the size of the hash.",
        &["RO", "access"],
        &["nondeterministic_output_order"]
    ),
    spec!(
        "hkeys",
        2,
        READ_ONLY,
        (1, 1, 1),
        HASH_READ_SLOW,
        "hash",
        "Get all the fields in a hash",
        "2.0.0",
        "O(N) where N is the size of the hash.",
        &["RO"],
        &["nondeterministic_output_order"]
    ),
    spec!(
        "hvals",
        2,
        READ_ONLY,
        (1, 1, 1),
        HASH_READ_SLOW,
        "hash",
        "Get all the values in a hash",
        "2.0.0",
        "O(N) where N is the size of the hash.",
        &["RO", "access"],
        &["nondeterministic_output_order"]
    ),
    spec!(
        "hlen",
        2,
        READ_FAST,
        (1, 1, 1),
        HASH_READ_FAST,
        "hash",
        "Get the number of fields in a hash",
        "2.0.0",
        "O(1)",
        &["RO"],
        &[]
    ),
    spec!(
        "hexists",
        3,
        READ_FAST,
        (1, 1, 1),
        HASH_READ_FAST,
        "hash",
        "Determine if a hash field exists",
        "2.0.0",
        "O(1)",
        &["RO"],
        &[]
    ),
    spec!(
        "hstrlen",
        3,
        READ_FAST,
        (1, 1, 1),
        HASH_READ_FAST,
        "hash",
        "Get the length of the value of a hash field",
        "3.2.0",
        "O(1)",
        &["RO"],
        &[]
    ),
    spec!(
        "hrandfield",
        -2,
        READ_ONLY,
        (1, 1, 1),
        HASH_READ_SLOW,
        "hash",
        "Get one or multiple random fields from a hash",
        "6.2.0",
        "O(N) where N is the number of fields returned",
        &["RO", "access"],
        &["nondeterministic_output"]
    ),
    spec!(
        "hscan",
        -3,
        READ_ONLY,
        (1, 1, 1),
        HASH_READ_SLOW,
        "hash",
        "Incrementally iterate hash fields and associated values",
        "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
        &["RO", "access"],
        &["nondeterministic_output"]
    ),
    spec!(
        "sadd",
        -3,
        WRITE_FAST,
        (1, 1, 1),
        SET_WRITE_FAST,
        "set",
        "Add one or more members to a set",
        "1.0.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        &["RW", "insert"],
        &[]
    ),
    spec!(
        "srem",
        -3,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        SET_WRITE_FAST,
        "set",
        "Remove one or more members from a set",
        "1.0.0",
        "O(N) where N is the number of members to be removed.",
        &["RW", "delete"],
        &[]
    ),
    spec!(
        "smove",
        4,
        WRITE_ONLY_FAST,
        (1, 2, 1),
        SET_WRITE_FAST,
        "set",
        "Move a member from one set to another",
        "1.0.0",
        "O(1)",
        &["RW", "access", "delete"],
        &[]
    ),
    spec!(
        "spop",
        -2,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        SET_WRITE_FAST,
        "set",
        "Remove and return one or multiple random members from a set",
        "1.0.0",
        "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.",
        &["RW", "access", "delete"],
        &["nondeterministic_output"]
    ),
    spec!(
        "smembers",
        2,
        READ_ONLY,
        (1, 1, 1),
        SET_READ_SLOW,
        "set",
        "Get all the members in a set",
        "1.0.0",
        "O(N) where N is the set cardinality.",
        &["RO", "access"],
        &["nondeterministic_output_order"]
    ),
    spec!(
        "sismember",
        3,
        READ_FAST,
        (1, 1, 1),
        SET_READ_FAST,
        "set",
        "Determine if a given value is a member of a set",
        "1.0.0",
        "O(1)",
        &["RO"],
        &[]
    ),
    spec!(
        "smismember",
        -3,
        READ_FAST,
        (1, 1, 1),
        SET_READ_FAST,
        "set",
        "Returns the membership associated with the given elements for a set",
        "6.2.0",
        "O(N) where N is the number of elements being checked for membership",
        &["RO"],
        &[]
    ),
    spec!(
        "scard",
        2,
        READ_FAST,
        (1, 1, 1),
        SET_READ_FAST,
        "set",
        "Get the number of members in a set",
        "1.0.0",
        "O(1)",
        &["RO"],
        &[]
    ),
    spec!(
        "srandmember",
        -2,
        READ_ONLY,
        (1, 1, 1),
        SET_READ_SLOW,
        "set",
        "Get one or multiple random members from a set",
        "1.0.0",
        "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.",
        &["RO", "access"],
        &["nondeterministic_output"]
    ),
    spec!(
        "sinter",
        -2,
        READ_ONLY,
        (1, -1, 1),
        SET_READ_SLOW,
        "set",
        "Intersect multiple sets",
        "1.0.0",
        "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        &["RO", "access"],
        &["nondeterministic_output_order"]
    ),
    spec!(
        "sunion",
        -2,
        READ_ONLY,
        (1, -1, 1),
        SET_READ_SLOW,
        "set",
        "Add multiple sets",
        "1.0.0",
        "O(N) where N is the total number of elements in all given sets.",
        &["RO", "access"],
        &["nondeterministic_output_order"]
    ),
    spec!(
        "sdiff",
        -2,
        READ_ONLY,
        (1, -1, 1),
        SET_READ_SLOW,
        "set",
        "Subtract multiple sets",
        "1.0.0",
        "O(N) where N is the total number of elements in all given sets.",
        &["RO", "access"],
        &["nondeterministic_output_order"]
    ),
    spec!(
        "sinterstore",
        -3,
        WRITE_DENYOOM,
        (1, -1, 1),
        SET_WRITE_SLOW,
        "set",
        "Intersect multiple sets and store the resulting set in a key",
        "1.0.0",
        "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        &["OW", "update"],
        &[]
    ),
    spec!(
        "sunionstore",
        -3,
        WRITE_DENYOOM,
        (1, -1, 1),
        SET_WRITE_SLOW,
        "set",
        "Add multiple sets and store the resulting set in a key",
        "1.0.0",
        "O(N) where N is the total number of elements in all given sets.",
        &["OW", "update"],
        &[]
    ),
    spec!(
        "sdiffstore",
        -3,
        WRITE_DENYOOM,
        (1, -1, 1),
        SET_WRITE_SLOW,
        "set",
        "Subtract multiple sets and store the resulting set in a key",
        "1.0.0",
        "O(N) where N is the total number of elements in all given sets.",
        &["OW", "update"],
        &[]
    ),
    spec!(
        "sintercard",
        -3,
        &["readonly", "movablekeys"],
        (0, 0, 0),
        SET_READ_SLOW,
        "set",
        "Intersect multiple sets and return the cardinality of the result",
        "7.0.0",
        "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        &[],
        &[]
    ),
    spec!(
        "zadd",
        -4,
        WRITE_FAST,
        (1, 1, 1),
        ZSET_WRITE_FAST,
        "sorted-set",
        "Add one or more members to a sorted set, or update its score if it already exists",
        "1.2.0",
        "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
        &["RW", "update"],
        &[]
    ),
    spec!(
        "zincrby",
        4,
        WRITE_FAST,
        (1, 1, 1),
        ZSET_WRITE_FAST,
        "sorted-set",
        "Increment the score of a member in a sorted set",
        "1.2.0",
        "O(log(N)) where N is the number of elements in the sorted set.",
        &["RW", "access", "update"],
        &[]
    ),
    spec!(
        "zrem",
        -3,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        ZSET_WRITE_FAST,
        "sorted-set",
        "Remove one or more members from a sorted set",
        "1.2.0",
        "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.",
        &["RW", "delete"],
        &[]
    ),
    spec!(
        "zscore",
        3,
        READ_FAST,
        (1, 1, 1),
        ZSET_READ_FAST,
        "sorted-set",
        "Get the score associated with the given member in a sorted set",
        "1.2.0",
        "O(1)",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "zmscore",
        -3,
        READ_FAST,
        (1, 1, 1),
        ZSET_READ_FAST,
        "sorted-set",
        "Get the score associated with the given members in a sorted set",
        "6.2.0",
        "O(N) where N is the number of members being requested.",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "zcard",
        2,
        READ_FAST,
        (1, 1, 1),
        ZSET_READ_FAST,
        "sorted-set",
        "Get the number of members in a sorted set",
        "1.2.0",
        "O(1)",
        &["RO"],
        &[]
    ),
    spec!(
        "zcount",
        4,
        READ_FAST,
        (1, 1, 1),
        ZSET_READ_FAST,
        "sorted-set",
        "Count the members in a sorted set with scores within the given values",
        "2.0.0",
        "O(log(N)) with N being the number of elements in the sorted set.",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "zrange",
        -4,
        READ_ONLY,
        (1, 1, 1),
        ZSET_READ_SLOW,
        "sorted-set",
        "Return a range of members in a sorted set",
        "1.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "zrangebyscore",
        -4,
        READ_ONLY,
        (1, 1, 1),
        ZSET_READ_SLOW,
        "sorted-set",
        "Return a range of members in a sorted set, by score",
        "1.0.5",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "zrevrangebyscore",
        -4,
        READ_ONLY,
        (1, 1, 1),
        ZSET_READ_SLOW,
        "sorted-set",
        "Return a range of members in a sorted set, by score, with scores ordered from high to low",
        "2.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "zrevrange",
        -4,
        READ_ONLY,
        (1, 1, 1),
        ZSET_READ_SLOW,
        "sorted-set",
        "Return a range of members in a sorted set, by index, with scores ordered from high to low",
        "1.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "zrank",
        3,
        READ_FAST,
        (1, 1, 1),
        ZSET_READ_FAST,
        "sorted-set",
        "Determine the index of a member in a sorted set",
        "2.0.0",
        "O(log(N))",
        &["RO"],
        &[]
    ),
    spec!(
        "zrevrank",
        3,
        READ_FAST,
        (1, 1, 1),
        ZSET_READ_FAST,
        "sorted-set",
        "Determine the index of a member in a sorted set, with scores ordered from high to low",
        "2.0.0",
        "O(log(N))",
        &["RO"],
        &[]
    ),
    spec!(
        "zpopmin",
        -2,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        ZSET_WRITE_FAST,
        "sorted-set",
        "Remove and return members with the lowest scores in a sorted set",
        "5.0.0",
        "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.",
        &["RW", "access", "delete"],
        &[]
    ),
    spec!(
        "zpopmax",
        -2,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        ZSET_WRITE_FAST,
        "sorted-set",
        "Remove and return members with the highest scores in a sorted set",
        "5.0.0",
        "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.",
        &["RW", "access", "delete"],
        &[]
    ),
    spec!(
        "lpush",
        -3,
        WRITE_FAST,
        (1, 1, 1),
        LIST_WRITE_FAST,
        "list",
        "Prepend one or multiple elements to a list",
        "1.0.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        &["RW", "insert"],
        &[]
    ),
    spec!(
        "rpush",
        -3,
        WRITE_FAST,
        (1, 1, 1),
        LIST_WRITE_FAST,
        "list",
        "Append one or multiple elements to a list",
        "1.0.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        &["RW", "insert"],
        &[]
    ),
    spec!(
        "lpushx",
        -3,
        WRITE_FAST,
        (1, 1, 1),
        LIST_WRITE_FAST,
        "list",
        "Prepend an element to a list, only if the list exists",
        "2.2.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        &["RW", "insert"],
        &[]
    ),
    spec!(
        "rpushx",
        -3,
        WRITE_FAST,
        (1, 1, 1),
        LIST_WRITE_FAST,
        "list",
        "Append an element to a list, only if the list exists",
        "2.2.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        &["RW", "insert"],
        &[]
    ),
    spec!(
        "lpop",
        -2,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        LIST_WRITE_FAST,
        "list",
        "Remove and get the first elements in a list",
        "1.0.0",
        "O(N) where N is the number of elements returned",
        &["RW", "access", "delete"],
        &[]
    ),
    spec!(
        "rpop",
        -2,
        WRITE_ONLY_FAST,
        (1, 1, 1),
        LIST_WRITE_FAST,
        "list",
        "Remove and get the last elements in a list",
        "1.0.0",
        "O(N) where N is the number of elements returned",
        &["RW", "access", "delete"],
        &[]
    ),
    spec!(
        "llen",
        2,
        READ_FAST,
        (1, 1, 1),
        LIST_READ_FAST,
        "list",
        "Get the length of a list",
        "1.0.0",
        "O(1)",
        &["RO"],
        &[]
    ),
    spec!(
        "lindex",
        3,
        READ_ONLY,
        (1, 1, 1),
        LIST_READ_SLOW,
        "list",
        "Get an element from a list by its index",
        "1.0.0",
        "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "lrange",
        4,
        READ_ONLY,
        (1, 1, 1),
        LIST_READ_SLOW,
        "list",
        "Get a range of elements from a list",
        "1.0.0",
        "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "lset",
        4,
        WRITE_DENYOOM,
        (1, 1, 1),
        LIST_WRITE_SLOW,
        "list",
        "Set the value of an element in a list by its index",
        "1.0.0",
        "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).",
        &["RW", "update"],
        &[]
    ),
    spec!(
        "zremrangebyscore",
        4,
        WRITE_ONLY,
        (1, 1, 1),
        ZSET_WRITE_SLOW,
        "sorted-set",
        "Remove all members in a sorted set within the given scores",
        "1.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
        &["RW", "delete"],
        &[]
    ),
    spec!(
        "zremrangebyrank",
        4,
        WRITE_ONLY,
        (1, 1, 1),
        ZSET_WRITE_SLOW,
        "sorted-set",
        "Remove all members in a sorted set within the given indexes",
        "2.0.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
        &["RW", "delete"],
        &[]
    ),
    spec!(
        "ltrim",
        4,
        WRITE_ONLY,
        (1, 1, 1),
        LIST_WRITE_SLOW,
        "list",
        "Trim a list to the specified range",
        "1.0.0",
        "O(N) where N is the number of elements to be removed by the operation.",
        &["RW", "delete"],
        &[]
    ),
    spec!(
        "lmove",
        5,
        WRITE_DENYOOM,
        (1, 2, 1),
        LIST_WRITE_SLOW,
        "list",
        "Pop an element from a list, push it to another list and return it",
        "6.2.0",
        "O(1)",
        &["RW", "access", "delete"],
        &[]
    ),
    spec!(
        "rpoplpush",
        3,
        WRITE_DENYOOM,
        (1, 2, 1),
        LIST_WRITE_SLOW,
        "list",
        "Remove the last element in a list, prepend it to another list and return it",
        "1.2.0",
        "O(1)",
        &["RW", "access", "delete"],
        &[]
    ),
    spec!(
        "zrandmember",
        -2,
        READ_ONLY,
        (1, 1, 1),
        ZSET_READ_SLOW,
        "sorted-set",
        "Get one or multiple random elements from a sorted set",
        "6.2.0",
        "O(N) where N is the number of elements returned",
        &["RO", "access"],
        &["nondeterministic_output"]
    ),
    spec!(
        "zscan",
        -3,
        READ_ONLY,
        (1, 1, 1),
        ZSET_READ_SLOW,
        "sorted-set",
        "Incrementally iterate sorted sets elements and associated scores",
        "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
        &["RO", "access"],
        &["nondeterministic_output"]
    ),
    spec!(
        "lrem",
        4,
        WRITE_ONLY,
        (1, 1, 1),
        LIST_WRITE_SLOW,
        "list",
        "Remove elements from a list",
        "1.0.0",
        "O(N+M) where N is the length of the list and M is the number of elements removed.",
        &["RW", "delete"],
        &[]
    ),
    spec!(
        "linsert",
        5,
        WRITE_DENYOOM,
        (1, 1, 1),
        LIST_WRITE_SLOW,
        "list",
        "Insert an element before or after another element in a list",
        "2.2.0",
        "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).",
        &["RW", "insert"],
        &[]
    ),
    spec!(
        "lpos",
        -3,
        READ_ONLY,
        (1, 1, 1),
        LIST_READ_SLOW,
        "list",
        "Return the index of matching elements on a list",
        "6.0.6",
        "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.",
        &["RO"],
        &[]
    ),
    spec!(
        "zrangebylex",
        -4,
        READ_ONLY,
        (1, 1, 1),
        ZSET_READ_SLOW,
        "sorted-set",
        "Return a range of members in a sorted set, by lexicographical range",
        "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "zrevrangebylex",
        -4,
        READ_ONLY,
        (1, 1, 1),
        ZSET_READ_SLOW,
        "sorted-set",
        "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.",
        "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "zlexcount",
        4,
        READ_FAST,
        (1, 1, 1),
        ZSET_READ_FAST,
        "sorted-set",
        "Count the number of members in a sorted set between a given lexicographical range",
        "2.8.9",
        "O(log(N)) with N being the number of elements in the sorted set.",
        &["RO"],
        &[]
    ),
    spec!(
        "zremrangebylex",
        4,
        WRITE_ONLY,
        (1, 1, 1),
        ZSET_WRITE_SLOW,
        "sorted-set",
        "Remove all members in a sorted set between the given lexicographical range",
        "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
        &["RW", "delete"],
        &[]
    ),
    spec!(
        "zunionstore",
        -4,
        &["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        ZSET_WRITE_SLOW,
        "sorted-set",
        "Add multiple sorted sets and store the resulting sorted set in a new key",
        "2.0.0",
        "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
        &["OW", "update"],
        &[]
    ),
    spec!(
        "zinterstore",
        -4,
        &["write", "denyoom", "movablekeys"],
        (1, 1, 1),
        ZSET_WRITE_SLOW,
        "sorted-set",
        "Intersect multiple sorted sets and store the resulting sorted set in a new key",
        "2.0.0",
        "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
        &["OW", "update"],
        &[]
    ),
    spec!(
        "sscan",
        -3,
        READ_ONLY,
        (1, 1, 1),
        SET_READ_SLOW,
        "set",
        "Incrementally iterate Set elements",
        "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..",
        &["RO", "access"],
        &["nondeterministic_output"]
    ),
    spec!(
        "rename",
        3,
        &["write"],
        (1, 2, 1),
        &["@keyspace", "@write", "@slow"],
        "generic",
        "Rename a key",
        "1.0.0",
        "O(1)",
        &["RW", "access", "delete"],
        &[]
    ),
    spec!(
        "renamenx",
        3,
        &["write", "fast"],
        (1, 2, 1),
        &["@keyspace", "@write", "@fast"],
        "generic",
        "Rename a key, only if the new key does not exist",
        "1.0.0",
        "O(1)",
        &["RW", "access", "delete"],
        &[]
    ),
    spec!(
        "copy",
        -3,
        &["write", "denyoom"],
        (1, 2, 1),
        &["@keyspace", "@write", "@slow"],
        "generic",
        "Copy a key",
        "6.2.0",
        "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "incrbyfloat",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        &["@write", "@string", "@fast"],
        "string",
        "Increment the float value of a key by the given amount",
        "2.6.0",
        "O(1)",
        &["RW", "access", "update"],
        &[]
    ),
    spec!(
        "getrange",
        4,
        &["readonly"],
        (1, 1, 1),
        &["@read", "@string", "@slow"],
        "string",
        "Get a substring of the string stored at a key",
        "2.4.0",
        "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "substr",
        4,
        &["readonly"],
        (1, 1, 1),
        &["@read", "@string", "@slow"],
        "string",
        "Get a substring of the string stored at a key",
        "1.0.0",
        "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "setrange",
        4,
        &["write", "denyoom"],
        (1, 1, 1),
        &["@write", "@string", "@slow"],
        "string",
        "Overwrite part of a string at key starting at the specified offset",
        "2.2.0",
        "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.",
        &["RW", "update"],
        &[]
    ),
    spec!(
        "msetnx",
        -3,
        &["write", "denyoom"],
        (1, -1, 2),
        &["@write", "@string", "@slow"],
        "string",
        "Set multiple keys to multiple values, only if none of the keys exist",
        "1.0.1",
        "O(N) where N is the number of keys to set.",
        &["OW", "insert"],
        &["request_policy:multi_shard", "response_policy:agg_min"]
    ),
    spec!(
        "touch",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        &["@keyspace", "@read", "@fast"],
        "generic",
        "Alters the last access time of a key(s). Returns the number of existing keys specified.",
        "3.2.1",
        "O(N) where N is the number of keys that will be touched.",
        &["RO"],
        &["request_policy:multi_shard", "response_policy:agg_sum"]
    ),
    spec!(
        "object",
        -2,
        &[],
        (0, 0, 0),
        &["@slow"],
        "generic",
        "A container for object introspection commands",
        "2.2.3",
        "Depends on subcommand.",
        &[],
        &[]
    ),
    spec!(
        "randomkey",
        1,
        &["readonly"],
        (0, 0, 0),
        &["@keyspace", "@read", "@slow"],
        "generic",
        "Return a random key from the keyspace",
        "1.0.0",
        "O(1)",
        &[],
        &["request_policy:all_shards", "nondeterministic_output"]
    ),
    spec!(
        "dump",
        2,
        &["readonly"],
        (1, 1, 1),
        &["@keyspace", "@read", "@slow"],
        "generic",
        "Return a serialized version of the value stored at the specified key.",
        "2.6.0",
        "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).",
        &["RO", "access"],
        &["nondeterministic_output"]
    ),
    spec!(
        "restore",
        -4,
        &["write", "denyoom"],
        (1, 1, 1),
        &["@keyspace", "@write", "@slow", "@dangerous"],
        "generic",
        "Create a key using the provided serialized value, previously obtained using DUMP.",
        "2.6.0",
        "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).",
        &["OW", "update"],
        &[]
    ),
    spec!(
        "setbit",
        4,
        &["write", "denyoom"],
        (1, 1, 1),
        &["@write", "@bitmap", "@slow"],
        "bitmap",
        "Sets or clears the bit at offset in the string value stored at key",
        "2.2.0",
        "O(1)",
        &["RW", "access", "update"],
        &[]
    ),
    spec!(
        "getbit",
        3,
        &["readonly", "fast"],
        (1, 1, 1),
        &["@read", "@bitmap", "@fast"],
        "bitmap",
        "Returns the bit value at offset in the string value stored at key",
        "2.2.0",
        "O(1)",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "bitcount",
        -2,
        &["readonly"],
        (1, 1, 1),
        &["@read", "@bitmap", "@slow"],
        "bitmap",
        "Count set bits in a string",
        "2.6.0",
        "O(N)",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "bitpos",
        -3,
        &["readonly"],
        (1, 1, 1),
        &["@read", "@bitmap", "@slow"],
        "bitmap",
        "Find first bit set or clear in a string",
        "2.8.7",
        "O(N)",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "bitop",
        -4,
        &["write", "denyoom"],
        (2, -1, 1),
        &["@write", "@bitmap", "@slow"],
        "bitmap",
        "Perform bitwise operations between strings",
        "2.6.0",
        "O(N)",
        &["OW", "update"],
        &[]
    ),
    spec!(
        "bitfield",
        -2,
        &["write", "denyoom"],
        (1, 1, 1),
        &["@write", "@bitmap", "@slow"],
        "bitmap",
        "Perform arbitrary bitfield integer operations on strings",
        "3.2.0",
        "O(1) for each subcommand specified",
        &["RW", "access", "update", "variable_flags"],
        &[]
    ),
    spec!(
        "bitfield_ro",
        -2,
        &["readonly", "fast"],
        (1, 1, 1),
        &["@read", "@bitmap", "@fast"],
        "bitmap",
        "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
        "6.0.0",
        "O(1) for each subcommand specified",
        &["RO", "access"],
        &[]
    ),
    spec!(
        "pfadd",
        -2,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        &["@write", "@hyperloglog", "@fast"],
        "hyperloglog",
        "Adds the specified elements to the specified HyperLogLog.",
        "2.8.9",
        "O(1) to add every element.",
        &["RW", "insert"],
        &[]
    ),
    spec!(
        "pfcount",
        -2,
        &["readonly"],
        (1, -1, 1),
        &["@read", "@hyperloglog", "@slow"],
        "hyperloglog",
        "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
        "2.8.9",
        "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.",
        &["RW", "access"],
        &[]
    ),
    spec!(
        "pfmerge",
        -2,
        &["write", "denyoom"],
        (1, -1, 1),
        &["@write", "@hyperloglog", "@slow"],
        "hyperloglog",
        "Merge N different HyperLogLogs into a single one.",
        "2.8.9",
        "O(N) to merge N HyperLogLogs, but with high constant times.",
        &["RW", "access", "insert"],
        &[]
    ),

];

const CLIENT_FLAGS: &[&str] = &["noscript", "loading", "stale"];
const ADMIN_FLAGS: &[&str] = &["admin", "noscript", "loading", "stale"];
const CLIENT_CATS: &[&str] = &["@slow", "@connection"];
const CLIENT_ADMIN_CATS: &[&str] = &["@admin", "@slow", "@dangerous", "@connection"];
const CONFIG_CATS: &[&str] = &["@admin", "@slow", "@dangerous"];

/// Subcommands of the container commands.
pub const SUBCOMMANDS: &[Spec] = &[
    spec!(
        "client|info",
        2,
        CLIENT_FLAGS,
        (0, 0, 0),
        CLIENT_CATS,
        "connection",
        "Returns information about the current client connection.",
        "6.2.0",
        "O(1)",
        &[],
        &["nondeterministic_output"]
    ),
    spec!(
        "client|list",
        -2,
        ADMIN_FLAGS,
        (0, 0, 0),
        CLIENT_ADMIN_CATS,
        "connection",
        "Get the list of client connections",
        "2.4.0",
        "O(N) where N is the number of client connections",
        &[],
        &["nondeterministic_output"]
    ),
    spec!(
        "client|kill",
        -3,
        ADMIN_FLAGS,
        (0, 0, 0),
        CLIENT_ADMIN_CATS,
        "connection",
        "Kill the connection of a client",
        "2.4.0",
        "O(N) where N is the number of client connections",
        &[],
        &[]
    ),
    spec!(
        "client|no-evict",
        3,
        ADMIN_FLAGS,
        (0, 0, 0),
        CLIENT_ADMIN_CATS,
        "connection",
        "Set client eviction mode for the current connection",
        "7.0.0",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "client|no-touch",
        3,
        CLIENT_FLAGS,
        (0, 0, 0),
        CLIENT_CATS,
        "connection",
        "Controls whether commands sent by the client will alter the LRU/LFU of the keys they access.",
        "7.2.0",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "client|setinfo",
        4,
        CLIENT_FLAGS,
        (0, 0, 0),
        CLIENT_CATS,
        "connection",
        "Set client or connection specific info",
        "7.2.0",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "config|set",
        -4,
        ADMIN_FLAGS,
        (0, 0, 0),
        CONFIG_CATS,
        "server",
        "Set configuration parameters to the given values",
        "2.0.0",
        "O(N) when N is the number of configuration parameters provided",
        &[],
        &["request_policy:all_nodes", "response_policy:all_succeeded"]
    ),
    spec!(
        "config|resetstat",
        2,
        ADMIN_FLAGS,
        (0, 0, 0),
        CONFIG_CATS,
        "server",
        "Reset the stats returned by INFO",
        "2.0.0",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "command|info",
        -2,
        &["loading", "stale"],
        (0, 0, 0),
        CLIENT_CATS,
        "server",
        "Get array of specific Redis command details, or all when no argument is given.",
        "2.8.13",
        "O(N) where N is the number of commands to look up",
        &[],
        &["nondeterministic_output_order"]
    ),
    spec!(
        "command|getkeys",
        -4,
        &["loading", "stale"],
        (0, 0, 0),
        CLIENT_CATS,
        "server",
        "Extract keys given a full Redis command",
        "2.8.13",
        "O(N) where N is the number of arguments to the command",
        &[],
        &[]
    ),
    spec!(
        "command|list",
        -2,
        &["loading", "stale"],
        (0, 0, 0),
        CLIENT_CATS,
        "server",
        "Get an array of Redis command names",
        "7.0.0",
        "O(N) where N is the total number of Redis commands",
        &[],
        &["nondeterministic_output_order"]
    ),
    spec!(
        "command|getkeysandflags",
        -4,
        &["loading", "stale"],
        (0, 0, 0),
        CLIENT_CATS,
        "server",
        "Extract keys and access flags given a full Redis command",
        "7.0.0",
        "O(N) where N is the number of arguments to the command",
        &[],
        &[]
    ),
    spec!(
        "client|pause",
        -3,
        ADMIN_FLAGS,
        (0, 0, 0),
        CLIENT_ADMIN_CATS,
        "connection",
        "Stop processing commands from clients for some time",
        "2.9.50",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "client|unpause",
        2,
        ADMIN_FLAGS,
        (0, 0, 0),
        CLIENT_ADMIN_CATS,
        "connection",
        "Resume processing of clients that were paused",
        "6.2.0",
        "O(N) Where N is the number of paused clients",
        &[],
        &[]
    ),
    spec!(
        "client|reply",
        3,
        CLIENT_FLAGS,
        (0, 0, 0),
        CLIENT_CATS,
        "connection",
        "Instruct the server whether to reply to commands",
        "3.2.0",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "client|unblock",
        -3,
        ADMIN_FLAGS,
        (0, 0, 0),
        CLIENT_ADMIN_CATS,
        "connection",
        "Unblock a client blocked in a blocking command from a different connection",
        "5.0.0",
        "O(log N) where N is the number of client connections",
        &[],
        &[]
    ),
    spec!(
        "client|getredir",
        2,
        CLIENT_FLAGS,
        (0, 0, 0),
        CLIENT_CATS,
        "connection",
        "Get tracking notifications redirection client ID if any",
        "6.0.0",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "client|trackinginfo",
        2,
        CLIENT_FLAGS,
        (0, 0, 0),
        CLIENT_CATS,
        "connection",
        "Return information about server assisted client side caching for the current connection",
        "6.2.0",
        "O(1)",
        &[],
        &[]
    ),
    spec!(
        "client|id",
        2,
        &["noscript", "loading", "stale"],
        (0, 0, 0),
        &["@slow", "@connection"],
        "connection",
        "Returns the client ID for the current connection",
        "5.0.0",
        "O(1)",
        &[],
        &[]
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
        "O(1)",
        &[],
        &[]
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
        "O(1)",
        &[],
        &[]
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
        "O(N) when N is the number of configuration parameters provided",
        &[],
        &[]
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
        "O(1)",
        &[],
        &[]
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
        "O(N) where N is the number of commands to look up",
        &[],
        &["nondeterministic_output_order"]
    ),
    spec!(
        "object|encoding",
        3,
        &["readonly"],
        (2, 2, 1),
        &["@keyspace", "@read", "@slow"],
        "generic",
        "Inspect the internal encoding of a Redis object",
        "2.2.3",
        "O(1)",
        &["RO"],
        &["nondeterministic_output"]
    ),
    spec!(
        "object|freq",
        3,
        &["readonly"],
        (2, 2, 1),
        &["@keyspace", "@read", "@slow"],
        "generic",
        "Get the logarithmic access frequency counter of a Redis object",
        "4.0.0",
        "O(1)",
        &["RO"],
        &["nondeterministic_output"]
    ),
    spec!(
        "object|idletime",
        3,
        &["readonly"],
        (2, 2, 1),
        &["@keyspace", "@read", "@slow"],
        "generic",
        "Get the time since a Redis object was last accessed",
        "2.2.3",
        "O(1)",
        &["RO"],
        &["nondeterministic_output"]
    ),
    spec!(
        "object|refcount",
        3,
        &["readonly"],
        (2, 2, 1),
        &["@keyspace", "@read", "@slow"],
        "generic",
        "Get the number of references to the value of the key",
        "2.2.3",
        "O(1)",
        &["RO"],
        &["nondeterministic_output"]
    ),
    spec!(
        "object|help",
        2,
        &["loading", "stale"],
        (0, 0, 0),
        &["@keyspace", "@slow"],
        "generic",
        "Show helpful text about the different subcommands",
        "6.2.0",
        "O(1)",
        &[],
        &[]
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

/// A command's key spec in Redis's shape: a key at `first`, then every
/// `step`th argument through `last` (negative: counted from the end).
fn key_specs(spec: &Spec) -> Reply {
    if spec.key_flags.is_empty() {
        return Reply::Set(Vec::new());
    }
    let (first, last, step) = spec.keys;
    let map = |pairs: Vec<(&str, Reply)>| Reply::Map(pairs.into_iter().map(|(k, v)| (bulk(k), v)).collect());
    Reply::Set(vec![map(vec![
        ("flags", status_set(spec.key_flags)),
        (
            "begin_search",
            map(vec![("type", bulk("index")), ("spec", map(vec![("index", Reply::Integer(first))]))]),
        ),
        (
            "find_keys",
            map(vec![
                ("type", bulk("range")),
                (
                    "spec",
                    map(vec![
                        ("lastkey", Reply::Integer(if last < 0 { last } else { last - first })),
                        ("keystep", Reply::Integer(step)),
                        ("limit", Reply::Integer(0)),
                    ]),
                ),
            ]),
        ),
    ])])
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
        Reply::Set(spec.tips.iter().map(|t| bulk(t)).collect()),
        key_specs(spec),
        Reply::Set(subs),
    ])
}

/// `COMMAND INFO [name ...]`: details of the named commands (`client|list`
/// names a subcommand; an unknown name is a null), or of every command.
pub fn info_of(names: &[Bytes]) -> Reply {
    if names.is_empty() {
        return list();
    }
    Reply::Array(names.iter().map(|n| lookup(n).map_or(Reply::Null, info)).collect())
}

/// The spec a request runs under: its command's, or its subcommand's for
/// a container.
fn resolve(request: &[Bytes]) -> Option<&'static Spec> {
    let spec = lookup(request.first()?)?;
    let mut subs = subcommands(spec.name).peekable();
    if subs.peek().is_none() {
        return Some(spec);
    }
    let wanted = request.get(1)?.to_ascii_lowercase();
    subs.find(|s| s.name.split('|').nth(1).map(str::as_bytes) == Some(&wanted[..]))
}

/// The positions of a request's key arguments, from its spec.
fn key_positions(spec: &Spec, count: usize) -> Vec<usize> {
    let (first, last, step) = spec.keys;
    if first <= 0 || step <= 0 {
        return Vec::new();
    }
    let last = if last < 0 { count as i64 + last } else { last.min(count as i64 - 1) };
    (first..=last).step_by(step as usize).map(|i| i as usize).collect()
}

/// The spec and key positions of a request, found from the table, or
/// Redis's error for `COMMAND GETKEYS` / `GETKEYSANDFLAGS`.
fn request_keys(request: &[Bytes]) -> Result<(&'static Spec, Vec<usize>), Reply> {
    let Some(spec) = resolve(request) else {
        return Err(Reply::Error("ERR Invalid command specified".into()));
    };
    if !fits(spec.arity, request.len()) {
        return Err(Reply::Error("ERR Invalid number of arguments specified for command".into()));
    }
    let keys = key_positions(spec, request.len());
    if keys.is_empty() {
        return Err(Reply::Error("ERR The command has no key arguments".into()));
    }
    Ok((spec, keys))
}

/// `COMMAND GETKEYS command [arg ...]`: the request's keys.
pub fn get_keys(request: &[Bytes]) -> Reply {
    match request_keys(request) {
        Ok((_, keys)) => Reply::Array(keys.into_iter().map(|i| Reply::Bulk(request[i].to_vec())).collect()),
        Err(reply) => reply,
    }
}

/// A request's key flags: its spec's, except for the commands whose flags
/// (`variable_flags`) Redis decides from the request: `SET` reads the old
/// value only with `GET` (else it only overwrites), `BITFIELD` writes only
/// with a `SET` or `INCRBY` (or an argument it cannot read).
fn request_key_flags(spec: &Spec, request: &[Bytes]) -> &'static [&'static str] {
    let is = |arg: &Bytes, word: &str| arg.eq_ignore_ascii_case(word.as_bytes());
    match spec.name {
        "set" if request.iter().skip(3).any(|a| is(a, "get")) => &["RW", "access", "update"],
        "set" => &["OW", "update"],
        "bitfield" => {
            let mut i = 2;
            while i < request.len() {
                let left = request.len() - i - 1;
                if is(&request[i], "get") && left >= 2 {
                    i += 3;
                } else if is(&request[i], "overflow") && left >= 1 {
                    i += 2;
                } else {
                    return &["RW", "access", "update"];
                }
            }
            &["RO", "access"]
        }
        _ => spec.key_flags,
    }
}

/// `COMMAND GETKEYSANDFLAGS command [arg ...]`: each of the request's
/// keys with its key-spec flags.
pub fn get_keys_and_flags(request: &[Bytes]) -> Reply {
    match request_keys(request) {
        Ok((spec, keys)) => {
            let flags = request_key_flags(spec, request);
            Reply::Array(
                keys.into_iter()
                    .map(|i| Reply::Array(vec![Reply::Bulk(request[i].to_vec()), status_set(flags)]))
                    .collect(),
            )
        }
        Err(reply) => reply,
    }
}

/// `COMMAND LIST [FILTERBY ...]`: the names of commands and subcommands.
pub fn names(filter: Option<&ListFilter>) -> Reply {
    let keep = |spec: &Spec| match filter {
        None => true,
        Some(ListFilter::Module) => false,
        Some(ListFilter::AclCategory(category)) => {
            spec.categories.iter().any(|c| c.as_bytes()[1..].eq_ignore_ascii_case(category))
        }
        Some(ListFilter::Pattern(pattern)) => {
            glob::matches(&pattern.to_ascii_lowercase(), spec.name.as_bytes())
        }
    };
    Reply::Array(COMMANDS.iter().chain(SUBCOMMANDS).filter(|s| keep(s)).map(|s| bulk(s.name)).collect())
}

/// Whether a command may add data (Redis's `denyoom` flag): what
/// `maxmemory` refuses once memory is over it.
pub fn may_add_data(name: &str) -> bool {
    lookup(name.as_bytes()).is_some_and(|s| s.flags.contains(&"denyoom"))
}

/// Whether a command waits out `CLIENT PAUSE WRITE`: one that may write
/// (Redis's `write` flag), or `EXEC`, which may run queued writes.
pub fn may_write(name: &str) -> bool {
    name == "exec" || lookup(name.as_bytes()).is_some_and(|s| s.flags.contains(&"write"))
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
    ];
    if !spec.complexity.is_empty() {
        fields.push((bulk("complexity"), bulk(spec.complexity)));
    }
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
            "flushdb",
            "flushdb async",
            "flushall sync",
            "move k 1",
            "swapdb 0 1",
            "type k",
            "info",
            "command",
            "command count",
            "command docs",
            "client id",
            "client setname n",
            "client getname",
            "config get x",
            "config set maxmemory 0",
            "config resetstat",
            "client info",
            "client list",
            "client list id 1 2",
            "client kill 1.2.3.4:5",
            "client kill id 3 skipme no",
            "client setinfo lib-name x",
            "client no-evict on",
            "client no-touch off",
            "command info get",
            "command getkeys get k",
            "command list",
            "command list filterby aclcat read",
            "time",
            "role",
            "reset",
            "lolwut",
            "lolwut version 5 1 2",
            "client pause 10",
            "client pause 10 write",
            "client unpause",
            "client reply skip",
            "client unblock 3 error",
            "client getredir",
            "client trackinginfo",
            "command getkeysandflags get k",
            "watch k",
            "multi",
            "exec",
            "discard",
            "unwatch",
            "rename a b",
            "renamenx a b",
            "copy a b replace",
            "incrbyfloat k 1.5",
            "getrange k 0 -1",
            "substr k 0 -1",
            "setrange k 1 v",
            "msetnx a 1 b 2",
            "touch a b",
            "object encoding k",
            "object freq k",
            "object idletime k",
            "object refcount k",
            "object help",
            "randomkey",
            "dump k",
            "restore k 0 p replace",
            "setbit k 7 1",
            "getbit k 7",
            "bitcount k 0 -1 bit",
            "bitpos k 1 0 -1 byte",
            "bitop and d a b",
            "bitfield k set u8 0 1 get i4 #1",
            "bitfield_ro k get u8 0",
            "pfadd k a b",
            "pfcount k",
            "pfmerge d a b",
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

    fn keys_of(line: &str) -> Reply {
        get_keys(&args(line))
    }

    #[test]
    fn getkeys_finds_keys_from_the_table() {
        let bulks = |keys: &[&str]| Reply::Array(keys.iter().map(|k| bulk(k)).collect());
        assert_eq!(keys_of("get k"), bulks(&["k"]));
        assert_eq!(keys_of("mset a 1 b 2"), bulks(&["a", "b"]));
        assert_eq!(keys_of("del a b c"), bulks(&["a", "b", "c"]));
        assert_eq!(keys_of("set k v nx"), bulks(&["k"]));
        assert_eq!(keys_of("watch x y"), bulks(&["x", "y"]));
        assert_eq!(keys_of("ping x"), Reply::Error("ERR The command has no key arguments".into()));
        assert_eq!(keys_of("client list"), Reply::Error("ERR The command has no key arguments".into()));
        assert_eq!(keys_of("nosuch k"), Reply::Error("ERR Invalid command specified".into()));
        assert_eq!(keys_of("client nosuch"), Reply::Error("ERR Invalid command specified".into()));
        assert_eq!(
            keys_of("get a b"),
            Reply::Error("ERR Invalid number of arguments specified for command".into())
        );
    }

    #[test]
    fn every_keyed_command_has_key_flags_and_only_those() {
        for spec in COMMANDS.iter().chain(SUBCOMMANDS) {
            assert_eq!(spec.keys.0 > 0, !spec.key_flags.is_empty(), "{}", spec.name);
        }
    }

    /// The shortest request a spec accepts, its arguments named `a1`, `a2`...
    fn shortest_request(spec: &Spec) -> Vec<Bytes> {
        let mut request: Vec<Bytes> =
            spec.name.split('|').map(|n| Bytes::copy_from_slice(n.as_bytes())).collect();
        while !fits(spec.arity, request.len()) {
            request.push(Bytes::from(format!("a{}", request.len())));
        }
        request
    }

    #[test]
    fn getkeys_and_flags_cover_every_keyed_command() {
        for spec in COMMANDS.iter().chain(SUBCOMMANDS).filter(|s| s.keys.0 > 0) {
            let request = shortest_request(spec);
            let first_key = Reply::Bulk(request[spec.keys.0 as usize].to_vec());
            let Reply::Array(keys) = get_keys(&request) else { panic!("{}: no keys", spec.name) };
            assert_eq!(keys.first(), Some(&first_key), "{}", spec.name);
            let Reply::Array(pairs) = get_keys_and_flags(&request) else { panic!("{}: no keys", spec.name) };
            assert_eq!(pairs.len(), keys.len(), "{}", spec.name);
            let flags = status_set(request_key_flags(spec, &request));
            assert_eq!(pairs[0], Reply::Array(vec![first_key, flags]), "{}", spec.name);
        }
    }

    #[test]
    fn every_command_has_docs() {
        for spec in COMMANDS.iter().chain(SUBCOMMANDS) {
            assert!(!spec.summary.is_empty() && !spec.group.is_empty(), "{}", spec.name);
            assert!(spec.since.split('.').all(|n| n.parse::<u32>().is_ok()), "{}", spec.name);
            // Redis gives every command a complexity but LOLWUT.
            assert_eq!(spec.complexity.is_empty(), spec.name == "lolwut", "{}", spec.name);
        }
    }

    #[test]
    fn only_commands_that_add_data_are_refused_over_maxmemory() {
        assert!(may_add_data("set") && may_add_data("incrby") && may_add_data("append"));
        assert!(!may_add_data("del") && !may_add_data("get") && !may_add_data("client|list"));
    }
}
