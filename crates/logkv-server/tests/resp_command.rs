//! Request arguments become typed commands, with Redis's arity, option,
//! integer and unknown-command errors.

use logkv_server::resp::command::{
    parse, Bytes, Command, CommandQuery, Credentials, Deadline, ExpireCond, ReplyMode, SetCondition,
    SetExpiry, TtlQuery,
};
use logkv_server::resp::reply::Protocol;
use logkv_server::resp::CommandError;
use proptest::strategy::Strategy;

fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
}

fn cmd(line: &str) -> Command {
    parse(&args(line)).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn err(line: &str) -> String {
    parse(&args(line)).unwrap_err().to_string()
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn command_names_are_case_insensitive() {
    assert_eq!(cmd("get k"), Command::Get { key: b("k") });
    assert_eq!(cmd("GET k"), Command::Get { key: b("k") });
    assert_eq!(cmd("gEt k"), Command::Get { key: b("k") });
    assert_eq!(cmd("Client GetName"), Command::ClientGetName);
}

#[test]
fn empty_request_is_an_error() {
    assert_eq!(parse(&[]), Err(CommandError::Empty));
}

#[test]
fn unknown_command_quotes_its_first_args_like_redis() {
    assert_eq!(err("foo a b"), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
    assert_eq!(err("foo"), "ERR unknown command 'foo', with args beginning with: ");
}

#[test]
fn unknown_command_text_is_bounded_and_single_line() {
    let long = Bytes::from(vec![b'x'; 300]);
    let text = parse(&[long.clone(), long.clone(), long]).unwrap_err().to_string();
    let expected = format!(
        "ERR unknown command '{}', with args beginning with: '{}' ",
        "x".repeat(128),
        "x".repeat(128)
    );
    assert_eq!(text, expected);
    let text = parse(&[b("bad\r\nname"), b("a\nb")]).unwrap_err().to_string();
    assert_eq!(text, "ERR unknown command 'bad  name', with args beginning with: 'a b' ");
}

#[test]
fn wrong_arity_names_the_command_in_lowercase() {
    let cases = [
        ("GET", "get"),
        ("get a b", "get"),
        ("echo", "echo"),
        ("ping a b", "ping"),
        ("auth", "auth"),
        ("select", "select"),
        ("set k", "set"),
        ("setnx k", "setnx"),
        ("getset k", "getset"),
        ("del", "del"),
        ("unlink", "unlink"),
        ("exists", "exists"),
        ("mget", "mget"),
        ("mset k", "mset"),
        ("mset k v k2", "mset"),
        ("strlen", "strlen"),
        ("append k", "append"),
        ("incr", "incr"),
        ("incrby k", "incrby"),
        ("decr", "decr"),
        ("decrby k", "decrby"),
        ("scan", "scan"),
        ("keys", "keys"),
        ("dbsize x", "dbsize"),
        ("type", "type"),
        ("client", "client"),
        ("client setname", "client|setname"),
        ("client getname x", "client|getname"),
        ("client id x", "client|id"),
        ("config", "config"),
        ("config get", "config|get"),
        ("command count x", "command|count"),
        ("watch", "watch"),
        ("multi x", "multi"),
        ("exec x", "exec"),
        ("discard x", "discard"),
        ("unwatch x", "unwatch"),
    ];
    for (line, name) in cases {
        assert_eq!(err(line), format!("ERR wrong number of arguments for '{name}' command"), "{line}");
    }
}

#[test]
fn connection_commands_parse() {
    assert_eq!(cmd("ping"), Command::Ping { message: None });
    assert_eq!(cmd("ping hi"), Command::Ping { message: Some(b("hi")) });
    assert_eq!(cmd("echo hi"), Command::Echo { message: b("hi") });
    assert_eq!(cmd("select 0"), Command::Select { db: 0 });
    assert_eq!(err("select x"), "ERR value is not an integer or out of range");
    assert_eq!(cmd("quit"), Command::Quit);
}

#[test]
fn auth_takes_a_password_or_user_and_password() {
    let password_only = Credentials { username: None, password: b("pw") };
    assert_eq!(cmd("auth pw"), Command::Auth(password_only));
    let with_user = Credentials { username: Some(b("u")), password: b("pw") };
    assert_eq!(cmd("AUTH u pw"), Command::Auth(with_user));
    assert_eq!(err("auth a b c"), "ERR syntax error");
}

#[test]
fn hello_parses_version_auth_and_setname() {
    assert_eq!(cmd("hello"), Command::Hello { protocol: None, auth: None, client_name: None });
    assert_eq!(
        cmd("HELLO 3 auth u pw setname app"),
        Command::Hello {
            protocol: Some(Protocol::Resp3),
            auth: Some(Credentials { username: Some(b("u")), password: b("pw") }),
            client_name: Some(b("app")),
        }
    );
    assert_eq!(
        cmd("hello 2"),
        Command::Hello { protocol: Some(Protocol::Resp2), auth: None, client_name: None }
    );
}

#[test]
fn hello_errors_match_redis() {
    assert_eq!(err("hello x"), "ERR Protocol version is not an integer or out of range");
    assert_eq!(err("hello 4"), "NOPROTO unsupported protocol version");
    assert_eq!(err("hello 1"), "NOPROTO unsupported protocol version");
    assert_eq!(err("hello 3 auth u"), "ERR Syntax error in HELLO option 'auth'");
    assert_eq!(err("hello 3 setname"), "ERR Syntax error in HELLO option 'setname'");
    assert_eq!(err("hello 3 bogus"), "ERR Syntax error in HELLO option 'bogus'");
}

#[test]
fn set_parses_conditions_and_get() {
    let set = |condition, get| Command::Set {
        key: b("k"),
        value: b("v"),
        condition,
        get,
        expiry: SetExpiry::Never,
    };
    assert_eq!(cmd("set k v"), set(SetCondition::Always, false));
    assert_eq!(cmd("set k v nx"), set(SetCondition::IfAbsent, false));
    assert_eq!(cmd("set k v XX get"), set(SetCondition::IfPresent, true));
    assert_eq!(cmd("set k v GET NX"), set(SetCondition::IfAbsent, true));
}

#[test]
fn set_with_conflicting_or_unknown_options_is_a_syntax_error() {
    assert_eq!(err("set k v nx xx"), "ERR syntax error");
    assert_eq!(err("set k v xx nx"), "ERR syntax error");
    assert_eq!(err("set k v bogus"), "ERR syntax error");
    assert_eq!(err("set k v ex"), "ERR syntax error");
}

#[test]
fn set_takes_one_expiry_option_checked_as_redis_does() {
    let set = |condition, expiry| Command::Set { key: b("k"), value: b("v"), condition, get: false, expiry };
    assert_eq!(cmd("set k v ex 10"), set(SetCondition::Always, SetExpiry::At(Deadline::In(10_000))));
    assert_eq!(cmd("set k v nx PX 10"), set(SetCondition::IfAbsent, SetExpiry::At(Deadline::In(10))));
    assert_eq!(cmd("set k v exat 5 xx"), set(SetCondition::IfPresent, SetExpiry::At(Deadline::At(5_000))));
    assert_eq!(cmd("set k v pxat 5"), set(SetCondition::Always, SetExpiry::At(Deadline::At(5))));
    assert_eq!(cmd("set k v keepttl"), set(SetCondition::Always, SetExpiry::Keep));
    assert_eq!(cmd("setex k 2 v"), set(SetCondition::Always, SetExpiry::At(Deadline::In(2_000))));
    assert_eq!(cmd("psetex k 2 v"), set(SetCondition::Always, SetExpiry::At(Deadline::In(2))));
    for line in ["set k v ex 1 px 1", "set k v ex 1 keepttl", "set k v keepttl px 1", "set k v px"] {
        assert_eq!(err(line), "ERR syntax error", "{line}");
    }
    assert_eq!(err("set k v ex x"), "ERR value is not an integer or out of range");
    assert_eq!(err("set k v ex 0"), "ERR invalid expire time in 'set' command");
    assert_eq!(err("set k v px -1"), "ERR invalid expire time in 'set' command");
    assert_eq!(err("set k v ex 9223372036854776"), "ERR invalid expire time in 'set' command");
    assert_eq!(err("setex k 0 v"), "ERR invalid expire time in 'setex' command");
    assert_eq!(err("psetex k -5 v"), "ERR invalid expire time in 'psetex' command");
}

#[test]
fn expiry_commands_parse() {
    let expire = |deadline, condition| Command::Expire { key: b("k"), deadline, condition };
    assert_eq!(cmd("expire k 10"), expire(Deadline::In(10_000), ExpireCond::Always));
    assert_eq!(cmd("pexpire k -10 nx"), expire(Deadline::In(-10), ExpireCond::IfNone));
    assert_eq!(cmd("expireat k 7 xx"), expire(Deadline::At(7_000), ExpireCond::IfSome));
    assert_eq!(cmd("pexpireat k 7 gt xx"), expire(Deadline::At(7), ExpireCond::IfLater));
    assert_eq!(cmd("expire k 1 lt"), expire(Deadline::In(1_000), ExpireCond::IfEarlier));
    assert_eq!(cmd("expire k 1 xx lt"), expire(Deadline::In(1_000), ExpireCond::IfSomeAndEarlier));
    assert_eq!(
        err("expire k 1 nx xx"),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(err("expire k 1 gt lt"), "ERR GT and LT options at the same time are not compatible");
    assert_eq!(err("expire k 1 bogus"), "ERR Unsupported option bogus");
    assert_eq!(err("expire k x bogus"), "ERR Unsupported option bogus", "options are checked first");
    assert_eq!(err("expire k x"), "ERR value is not an integer or out of range");
    assert_eq!(err("expire k 9223372036854776"), "ERR invalid expire time in 'expire' command");
    assert_eq!(cmd("persist k"), Command::Persist { key: b("k") });
    assert_eq!(cmd("getdel k"), Command::GetDel { key: b("k") });
    assert_eq!(cmd("getex k"), Command::Get { key: b("k") });
    assert_eq!(cmd("getex k persist"), Command::GetEx { key: b("k"), expiry: None });
    assert_eq!(cmd("getex k pxat 9"), Command::GetEx { key: b("k"), expiry: Some(Deadline::At(9)) });
    assert_eq!(err("getex k ex 0"), "ERR invalid expire time in 'getex' command");
    assert_eq!(err("getex k ex 1 persist"), "ERR syntax error");
    let ttl = |millis, absolute| Command::Ttl { key: b("k"), query: TtlQuery { millis, absolute } };
    assert_eq!(cmd("ttl k"), ttl(false, false));
    assert_eq!(cmd("pttl k"), ttl(true, false));
    assert_eq!(cmd("expiretime k"), ttl(false, true));
    assert_eq!(cmd("pexpiretime k"), ttl(true, true));
}

#[test]
fn string_commands_parse() {
    assert_eq!(cmd("setnx k v"), Command::SetNx { key: b("k"), value: b("v") });
    assert_eq!(cmd("getset k v"), Command::GetSet { key: b("k"), value: b("v") });
    assert_eq!(cmd("del a b"), Command::Del { keys: args("a b") });
    assert_eq!(cmd("unlink a"), Command::Del { keys: args("a") });
    assert_eq!(cmd("exists a a"), Command::Exists { keys: args("a a") });
    assert_eq!(cmd("mget a b"), Command::MGet { keys: args("a b") });
    assert_eq!(cmd("mset a 1 b 2"), Command::MSet { pairs: vec![(b("a"), b("1")), (b("b"), b("2"))] });
    assert_eq!(cmd("strlen k"), Command::StrLen { key: b("k") });
    assert_eq!(cmd("append k v"), Command::Append { key: b("k"), value: b("v") });
    assert_eq!(cmd("type k"), Command::Type { key: b("k") });
}

#[test]
fn counters_become_signed_deltas() {
    let delta = |delta| Command::IncrBy { key: b("k"), delta };
    assert_eq!(cmd("incr k"), delta(1));
    assert_eq!(cmd("decr k"), delta(-1));
    assert_eq!(cmd("incrby k -5"), delta(-5));
    assert_eq!(cmd("decrby k 5"), delta(-5));
    assert_eq!(cmd("decrby k 9223372036854775807"), delta(-i64::MAX));
    assert_eq!(err("decrby k -9223372036854775808"), "ERR decrement would overflow");
}

#[test]
fn non_integer_amounts_are_refused() {
    for line in ["incrby k x", "incrby k 1.5", "incrby k +1", "incrby k 01", "decrby k 9223372036854775808"] {
        assert_eq!(err(line), "ERR value is not an integer or out of range", "{line}");
    }
}

#[test]
fn scan_parses_cursor_match_and_count() {
    assert_eq!(cmd("scan 0"), Command::Scan { cursor: 0, pattern: None, count: None, kind: None });
    assert_eq!(
        cmd("SCAN 17 match user:* COUNT 100 type hash"),
        Command::Scan { cursor: 17, pattern: Some(b("user:*")), count: Some(100), kind: Some(b("hash")) }
    );
}

#[test]
fn scan_errors_match_redis() {
    assert_eq!(err("scan x"), "ERR invalid cursor");
    assert_eq!(err("scan -1"), "ERR invalid cursor");
    assert_eq!(err("scan 0 count 0"), "ERR syntax error");
    assert_eq!(err("scan 0 count x"), "ERR value is not an integer or out of range");
    assert_eq!(err("scan 0 match"), "ERR syntax error");
    assert_eq!(err("scan 0 bogus 1"), "ERR syntax error");
}

#[test]
fn keyspace_and_server_commands_parse() {
    assert_eq!(cmd("keys *"), Command::Keys { pattern: b("*") });
    assert_eq!(cmd("dbsize"), Command::DbSize);
    assert_eq!(cmd("info"), Command::Info { sections: Vec::new() });
    assert_eq!(cmd("info server memory"), Command::Info { sections: args("server memory") });
    assert_eq!(cmd("config get maxmemory *"), Command::ConfigGet { patterns: args("maxmemory *") });
}

#[test]
fn command_command_parses_list_count_and_docs() {
    assert_eq!(cmd("command"), Command::Command(CommandQuery::List));
    assert_eq!(cmd("command count"), Command::Command(CommandQuery::Count));
    assert_eq!(cmd("command docs"), Command::Command(CommandQuery::Docs { names: Vec::new() }));
    assert_eq!(cmd("COMMAND DOCS get"), Command::Command(CommandQuery::Docs { names: args("get") }));
}

#[test]
fn client_commands_parse_and_check_names() {
    assert_eq!(cmd("client setname app-1"), Command::ClientSetName { name: b("app-1") });
    assert_eq!(cmd("client id"), Command::ClientId);
    assert_eq!(parse(&[b("client"), b("setname"), b("a b")]), Err(CommandError::InvalidClientName));
    assert_eq!(
        err("hello 3 setname \u{7f}"),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
}

#[test]
fn pause_reply_and_unblock_parse_with_redis_errors() {
    assert_eq!(cmd("client pause 100"), Command::ClientPause { millis: 100, writes_only: false });
    assert_eq!(cmd("CLIENT PAUSE 0 write"), Command::ClientPause { millis: 0, writes_only: true });
    assert_eq!(cmd("client pause 5 ALL"), Command::ClientPause { millis: 5, writes_only: false });
    assert_eq!(err("client pause x"), "ERR timeout is not an integer or out of range");
    assert_eq!(err("client pause -1"), "ERR timeout is negative");
    assert_eq!(err("client pause 1 some"), "ERR CLIENT PAUSE mode must be WRITE or ALL");
    assert_eq!(
        err("client pause 1 write x"),
        "ERR unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP."
    );
    assert_eq!(cmd("client unpause"), Command::ClientUnpause);
    assert_eq!(cmd("client reply skip"), Command::ClientReply { mode: ReplyMode::Skip });
    assert_eq!(cmd("client reply OFF"), Command::ClientReply { mode: ReplyMode::Off });
    assert_eq!(err("client reply maybe"), "ERR syntax error");
    assert_eq!(cmd("client unblock 7 timeout"), Command::ClientUnblock { id: 7 });
    assert_eq!(err("client unblock 7 later"), "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    assert_eq!(err("client unblock x"), "ERR value is not an integer or out of range");
    assert_eq!(cmd("reset"), Command::Reset);
    assert_eq!(err("reset now"), "ERR wrong number of arguments for 'reset' command");
    assert_eq!(cmd("lolwut version 5 10 20"), Command::Lolwut);
    assert_eq!(err("lolwut version x"), "ERR value is not an integer or out of range");
    assert_eq!(
        cmd("command getkeysandflags get k"),
        Command::Command(CommandQuery::GetKeysAndFlags { request: args("get k") })
    );
}

#[test]
fn unknown_subcommands_say_try_help() {
    assert_eq!(err("client tracking on"), "ERR unknown subcommand 'tracking'. Try CLIENT HELP.");
    assert_eq!(err("config rewrite"), "ERR unknown subcommand 'rewrite'. Try CONFIG HELP.");
    assert_eq!(err("command help"), "ERR unknown subcommand 'help'. Try COMMAND HELP.");
    assert_eq!(err("client kill"), "ERR wrong number of arguments for 'client|kill' command");
}

#[test]
fn transaction_commands_parse() {
    assert_eq!(cmd("watch a b"), Command::Watch { keys: args("a b") });
    assert_eq!(cmd("multi"), Command::Multi);
    assert_eq!(cmd("exec"), Command::Exec);
    assert_eq!(cmd("discard"), Command::Discard);
    assert_eq!(cmd("unwatch"), Command::Unwatch);
}

proptest::proptest! {
    #[test]
    fn random_arguments_never_panic(
        name in proptest::sample::select(vec![
            "ping", "echo", "hello", "auth", "select", "quit", "get", "set", "setnx", "getset",
            "del", "unlink", "exists", "mget", "mset", "strlen", "append", "incr", "incrby",
            "decr", "decrby", "scan", "keys", "dbsize", "type", "info", "command", "client",
            "config", "watch", "multi", "exec", "discard", "unwatch", "nope",
        ]),
        rest in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(vec![
                    "nx", "xx", "get", "ex", "keepttl", "match", "count", "auth", "setname",
                    "docs", "count", "id", "getname", "0", "3", "-1",
                ]).prop_map(|s| s.as_bytes().to_vec()),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
            ],
            0..6,
        ),
    ) {
        let mut request = vec![name.as_bytes().to_vec()];
        request.extend(rest);
        let _ = parse(&request.into_iter().map(Bytes::from).collect::<Vec<_>>());
    }
}
