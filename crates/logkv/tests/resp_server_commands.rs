//! The handshake and server commands clients send, through the `redis`
//! crate against a real `logkv serve`: CLIENT LIST / INFO / KILL over the
//! registry of live connections, INFO's fields and sections, CONFIG SET,
//! `maxmemory`'s `-OOM`, CLIENT PAUSE, and `loading` on a restart (what redis-server's replies cannot be compared
//! with byte for byte; tests/differential.rs covers the rest).

mod server;

use redis::Value;
use server::Server;

fn connect(server: &Server) -> redis::Connection {
    redis::Client::open(server.redis_url()).unwrap().get_connection().unwrap()
}

fn query<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

fn text(con: &mut redis::Connection, args: &[&str]) -> String {
    query::<String>(con, args).unwrap()
}

fn error_text(e: redis::RedisError) -> String {
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

/// A `CLIENT LIST` line's value of `field`.
fn field<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    line.trim_end().split(' ').find_map(|f| f.strip_prefix(field)?.strip_prefix('='))
}

/// The `CLIENT LIST` line of the connection named `name`.
fn line_named(con: &mut redis::Connection, name: &str) -> Option<String> {
    text(con, &["CLIENT", "LIST"]).lines().find(|l| field(l, "name") == Some(name)).map(str::to_string)
}

#[test]
fn client_list_and_info_show_each_connection() {
    let server = Server::start();
    let mut a = connect(&server);
    let mut b = connect(&server);
    assert_eq!(text(&mut a, &["CLIENT", "SETNAME", "alpha"]), "OK");
    assert_eq!(text(&mut a, &["CLIENT", "SETINFO", "LIB-NAME", "mylib"]), "OK");
    assert_eq!(text(&mut a, &["CLIENT", "SETINFO", "LIB-VER", "1.2.3"]), "OK");
    assert_eq!(text(&mut a, &["CLIENT", "NO-EVICT", "on"]), "OK");
    assert_eq!(text(&mut a, &["CLIENT", "NO-TOUCH", "on"]), "OK");
    let id: i64 = query(&mut a, &["CLIENT", "ID"]).unwrap();
    let info = text(&mut a, &["CLIENT", "INFO"]);
    assert!(info.ends_with('\n') && info.lines().count() == 1, "{info:?}");
    assert_eq!(field(&info, "id"), Some(id.to_string().as_str()));
    assert_eq!(field(&info, "name"), Some("alpha"));
    assert_eq!(field(&info, "lib-name"), Some("mylib"));
    assert_eq!(field(&info, "lib-ver"), Some("1.2.3"));
    assert_eq!(field(&info, "flags"), Some("eT"));
    assert_eq!(field(&info, "cmd"), Some("client|info"));
    assert_eq!(field(&info, "user"), Some("default"));
    assert_eq!(field(&info, "db"), Some("0"));
    assert_eq!(field(&info, "resp"), Some("2"));
    assert_eq!(field(&info, "laddr"), Some(server.resp.as_str()));
    assert!(field(&info, "fd").is_some_and(|fd| fd.parse::<i32>().unwrap() > 2), "{info}");

    // b sees a, as a last left it, and itself.
    let list = text(&mut b, &["CLIENT", "LIST"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    let alpha = line_named(&mut b, "alpha").expect("alpha listed");
    assert_eq!(field(&alpha, "cmd"), Some("client|info"));
    assert_eq!(field(&alpha, "multi"), Some("-1"));
    let only_a = text(&mut b, &["CLIENT", "LIST", "ID", &id.to_string()]);
    assert_eq!(only_a.lines().count(), 1);
    assert_eq!(field(&only_a, "name"), Some("alpha"));
    assert_eq!(text(&mut b, &["CLIENT", "LIST", "TYPE", "pubsub"]), "");

    // A MULTI block shows in the line: flag x and the queued count.
    assert_eq!(text(&mut a, &["MULTI"]), "OK");
    assert_eq!(text(&mut a, &["SET", "k", "v"]), "QUEUED");
    assert_eq!(text(&mut a, &["GET", "k"]), "QUEUED");
    let alpha = line_named(&mut b, "alpha").unwrap();
    assert_eq!(field(&alpha, "flags"), Some("xeT"));
    assert_eq!(field(&alpha, "multi"), Some("1"), "queued before GET ran: {alpha}");
    assert_eq!(text(&mut a, &["DISCARD"]), "OK");

    // HELLO 3 shows as resp=3; bad SETINFO values are refused.
    let _: Value = query(&mut a, &["HELLO", "3"]).unwrap();
    assert_eq!(field(&text(&mut a, &["CLIENT", "INFO"]), "resp"), Some("3"));
    let e = query::<Value>(&mut a, &["CLIENT", "SETINFO", "LIB-NAME", "two words"]).unwrap_err();
    assert_eq!(error_text(e), "ERR LIB-NAME cannot contain spaces, newlines or special characters.");
    let e = query::<Value>(&mut a, &["CLIENT", "SETINFO", "COLOR", "red"]).unwrap_err();
    assert_eq!(error_text(e), "ERR Unrecognized option 'COLOR'");
}

#[test]
fn client_kill_closes_the_connections_it_names() {
    let server = Server::start();
    let mut killer = connect(&server);
    let mut victims: Vec<redis::Connection> = (0..4).map(|_| connect(&server)).collect();
    for (i, v) in victims.iter_mut().enumerate() {
        assert_eq!(text(v, &["CLIENT", "SETNAME", &format!("v{i}")]), "OK");
    }
    assert_eq!(text(&mut killer, &["CLIENT", "SETNAME", "killer"]), "OK");

    // By id.
    let v0 = line_named(&mut killer, "v0").unwrap();
    let killed: i64 = query(&mut killer, &["CLIENT", "KILL", "ID", field(&v0, "id").unwrap()]).unwrap();
    assert_eq!(killed, 1);
    assert!(query::<String>(&mut victims[0], &["PING"]).is_err(), "v0 is closed");
    assert!(line_named(&mut killer, "v0").is_none(), "a killed connection leaves the list at once");

    // By address, in the old form: +OK, then an error once it is gone.
    let v1 = line_named(&mut killer, "v1").unwrap();
    let addr = field(&v1, "addr").unwrap().to_string();
    assert_eq!(text(&mut killer, &["CLIENT", "KILL", &addr]), "OK");
    assert!(query::<String>(&mut victims[1], &["PING"]).is_err(), "v1 is closed");
    assert!(line_named(&mut killer, "v1").is_none());
    let e = query::<Value>(&mut killer, &["CLIENT", "KILL", &addr]).unwrap_err();
    assert_eq!(error_text(e), "ERR No such client");

    // By user, skipping the caller: both remaining victims, not the killer.
    let killed: i64 = query(&mut killer, &["CLIENT", "KILL", "USER", "default"]).unwrap();
    assert_eq!(killed, 2);
    for v in &mut victims[2..] {
        assert!(query::<String>(v, &["PING"]).is_err());
    }
    assert_eq!(text(&mut killer, &["PING"]), "PONG");
    assert!(line_named(&mut killer, "v2").is_none());
    assert!(line_named(&mut killer, "v3").is_none());

    // Filters that match nothing, and the caller itself with SKIPME no:
    // it gets its answer, then is closed.
    let me: i64 = query(&mut killer, &["CLIENT", "ID"]).unwrap();
    let none: i64 = query(&mut killer, &["CLIENT", "KILL", "ID", &me.to_string()]).unwrap();
    assert_eq!(none, 0, "SKIPME yes is the default");
    let none: i64 = query(&mut killer, &["CLIENT", "KILL", "LADDR", "10.0.0.1:1", "SKIPME", "no"]).unwrap();
    assert_eq!(none, 0);
    let e = query::<Value>(&mut killer, &["CLIENT", "KILL", "USER", "nobody"]).unwrap_err();
    assert_eq!(error_text(e), "ERR No such user 'nobody'");
    let laddr = server.resp.clone();
    // In a pipeline: the kill is answered, what follows it does not run.
    let mut raw = server.connect();
    let pipeline =
        format!("CLIENT SETNAME self\r\nCLIENT KILL LADDR {laddr} SKIPME no\r\nSET after-kill 1\r\nPING\r\n");
    std::io::Write::write_all(&mut raw, pipeline.as_bytes()).unwrap();
    let mut replies = Vec::new();
    std::io::Read::read_to_end(&mut raw, &mut replies).unwrap();
    assert_eq!(replies, b"+OK\r\n:2\r\n", "the killer and the raw connection, then closed");
    assert!(query::<String>(&mut killer, &["PING"]).is_err(), "the killer was closed too");
    let mut fresh = connect(&server);
    assert_eq!(query::<Option<String>>(&mut fresh, &["GET", "after-kill"]).unwrap(), None);
    assert!(line_named(&mut fresh, "killer").is_none() && line_named(&mut fresh, "self").is_none());
}

#[test]
fn info_has_the_fields_clients_read() {
    let server = Server::start();
    let mut con = connect(&server);
    let _other = connect(&server);
    let info = text(&mut con, &["INFO"]);
    for line in [
        "redis_version:7.0.15",
        "redis_mode:standalone",
        "cluster_enabled:0",
        "loading:0",
        "role:master",
        "maxmemory:0",
        "maxmemory_policy:noeviction",
        &format!("process_id:{}", server.pid()),
        &format!("tcp_port:{}", server.resp.rsplit(':').next().unwrap()),
    ] {
        assert!(info.lines().any(|l| l == line), "{line} in {info}");
    }
    let clients = info.lines().find_map(|l| l.strip_prefix("connected_clients:")).unwrap();
    assert!(clients.parse::<usize>().unwrap() >= 2, "both connections count: {clients}");
    for name in ["os", "arch_bits", "uptime_in_seconds", "used_memory", "used_memory_rss"] {
        assert!(info.lines().any(|l| l.starts_with(&format!("{name}:"))), "{name} in {info}");
    }
    assert!(!info.contains("db0:"), "an empty database has no keyspace line");
    assert_eq!(text(&mut con, &["SET", "a", "1"]), "OK");
    assert_eq!(text(&mut con, &["SET", "b", "2"]), "OK");
    let keyspace = text(&mut con, &["INFO", "keyspace"]);
    assert_eq!(keyspace, "# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n");

    // Sections are chosen as in Redis: one, several, all, everything.
    let headers =
        |text: &str| text.lines().filter(|l| l.starts_with('#')).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(headers(&text(&mut con, &["INFO", "server"])), ["# Server"]);
    assert_eq!(headers(&text(&mut con, &["INFO", "CLUSTER", "server"])), ["# Server", "# Cluster"]);
    let all = headers(&text(&mut con, &["INFO", "all"]));
    assert_eq!(all.len(), 8, "{all:?}");
    assert_eq!(headers(&text(&mut con, &["INFO", "everything"])), all);
    assert_eq!(text(&mut con, &["INFO", "nosuch"]), "");

    // CONFIG SET timeout changes the idle timeout at runtime.
    assert_eq!(text(&mut con, &["CONFIG", "SET", "timeout", "70"]), "OK");
    let timeout: Vec<String> = query(&mut con, &["CONFIG", "GET", "timeout"]).unwrap();
    assert_eq!(timeout, ["timeout", "70"]);
    let e = query::<Value>(&mut con, &["CONFIG", "SET", "timeout", "soon"]).unwrap_err();
    assert_eq!(
        error_text(e),
        "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer"
    );

    // CONFIG RESETSTAT zeroes INFO's counters.
    assert_eq!(text(&mut con, &["CONFIG", "RESETSTAT"]), "OK");
    let stats = text(&mut con, &["INFO", "stats"]);
    assert!(stats.lines().any(|l| l == "total_commands_processed:1"), "{stats}");
}

/// A node on its own log replays it before it listens, so no client can
/// ask while it loads: the first answer on the RESP port, however early
/// it is asked, has every key and `loading:0`. (A node following a shared
/// log listens while it catches up, and says `loading:1` then.)
#[test]
fn a_restarted_node_answers_only_once_its_log_is_replayed() {
    const KEYS: usize = 50_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::builder().args(["--durability", "none"]).data_dir(&data).start();
    let mut con = connect(&server);
    for batch in 0..KEYS / 1_000 {
        let mut mset = redis::cmd("MSET");
        for i in batch * 1_000..(batch + 1) * 1_000 {
            mset.arg(format!("key:{i}")).arg(i);
        }
        let _: () = mset.query(&mut con).unwrap();
    }
    drop(con);
    server.stop_cleanly();

    let resp = format!("127.0.0.1:{}", server::free_port());
    let http = format!("127.0.0.1:{}", server::free_port());
    let mut child = std::process::Command::new(server::binary())
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--resp", &resp, "--http", &http, "--durability", "none"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + server::PATIENCE;
    let mut stream = loop {
        if let Ok(stream) = std::net::TcpStream::connect(&resp) {
            break stream;
        }
        assert!(std::time::Instant::now() < deadline, "the restarted node never listened");
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    stream.set_read_timeout(Some(server::PATIENCE)).unwrap();
    let request = [server::resp::request(&[b"INFO", b"persistence"]), server::resp::request(&[b"DBSIZE"])];
    let answers = String::from_utf8(server::roundtrip(&mut stream, &request.concat(), 2)).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(answers.contains("\r\nloading:0\r\n"), "{answers}");
    assert!(answers.ends_with(&format!(":{KEYS}\r\n")), "{answers}");
}

#[test]
fn maxmemory_refuses_writes_that_add_data_once_over() {
    let server = Server::builder().args(["--durability", "none", "--maxmemory", "1048576"]).start();
    let mut con = connect(&server);
    let maxmemory: Vec<String> = query(&mut con, &["CONFIG", "GET", "maxmemory"]).unwrap();
    assert_eq!(maxmemory, ["maxmemory", "1048576"]);
    assert_eq!(text(&mut con, &["SET", "a", "1"]), "OK");
    assert_eq!(text(&mut con, &["SET", "b", "2"]), "OK");
    // Lower the limit under what the index holds now.
    assert_eq!(text(&mut con, &["CONFIG", "SET", "maxmemory", "1"]), "OK");
    let info = text(&mut con, &["INFO", "memory"]);
    assert!(info.lines().any(|l| l == "maxmemory:1"), "{info}");

    const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
    for write in
        [&["SET", "c", "3"][..], &["INCR", "n"], &["APPEND", "a", "x"], &["MSET", "x", "1", "y", "2"]]
    {
        let e = query::<Value>(&mut con, write).unwrap_err();
        assert_eq!(error_text(e), OOM, "{write:?}");
    }
    // Reads and deletes still run.
    assert_eq!(text(&mut con, &["GET", "a"]), "1");
    assert_eq!(query::<i64>(&mut con, &["DEL", "b"]).unwrap(), 1);
    // In a pipeline, the write after a delete is refused too.
    let (deleted, refused): (Value, Value) = redis::pipe()
        .ignore_errors()
        .cmd("DEL")
        .arg("nokey")
        .cmd("SET")
        .arg("z")
        .arg("1")
        .query(&mut con)
        .unwrap();
    assert_eq!(deleted, Value::Int(0));
    assert!(matches!(&refused, Value::ServerError(e) if e.code() == "OOM"), "{refused:?}");
    // Inside MULTI the refusal aborts the block, as in Redis.
    assert_eq!(text(&mut con, &["MULTI"]), "OK");
    let e = query::<Value>(&mut con, &["SET", "c", "3"]).unwrap_err();
    assert_eq!(error_text(e), OOM);
    let e = query::<Value>(&mut con, &["EXEC"]).unwrap_err();
    assert_eq!(error_text(e), "EXECABORT Transaction discarded because of previous errors.");

    // Other policies are refused by name; lifting the limit lets writes in.
    let e = query::<Value>(&mut con, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]).unwrap_err();
    assert_eq!(
        error_text(e),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - logkv evicts nothing: the \
         only policy is 'noeviction'"
    );
    let e = query::<Value>(&mut con, &["CONFIG", "SET", "appendfsync", "always"]).unwrap_err();
    assert!(error_text(e).contains("argument 'appendfsync') - logkv cannot change it while running"));
    assert_eq!(text(&mut con, &["CONFIG", "SET", "maxmemory", "0"]), "OK");
    assert_eq!(text(&mut con, &["SET", "c", "3"]), "OK");
}

#[test]
fn client_pause_write_holds_writes_until_unpaused() {
    let server = Server::start();
    let mut pauser = connect(&server);
    let mut writer = connect(&server);
    assert_eq!(text(&mut writer, &["CLIENT", "SETNAME", "writer"]), "OK");
    assert_eq!(text(&mut pauser, &["CLIENT", "PAUSE", "600000", "WRITE"]), "OK");
    let held = std::thread::spawn(move || text(&mut writer, &["SET", "paused", "v"]));
    wait_for_command(&mut pauser, "writer", "set");
    // Reads still run under WRITE, and the held SET has not written.
    assert_eq!(query::<Option<String>>(&mut pauser, &["GET", "paused"]).unwrap(), None);
    assert_eq!(text(&mut pauser, &["CLIENT", "UNPAUSE"]), "OK");
    assert_eq!(held.join().unwrap(), "OK");
    assert_eq!(text(&mut pauser, &["GET", "paused"]), "v");

    // A connection killed while its write is held never writes.
    let mut doomed = connect(&server);
    assert_eq!(text(&mut doomed, &["CLIENT", "SETNAME", "doomed"]), "OK");
    let id: i64 = query(&mut doomed, &["CLIENT", "ID"]).unwrap();
    assert_eq!(text(&mut pauser, &["CLIENT", "PAUSE", "600000", "WRITE"]), "OK");
    let held = std::thread::spawn(move || query::<String>(&mut doomed, &["SET", "killed", "v"]));
    wait_for_command(&mut pauser, "doomed", "set");
    let killed: i64 = query(&mut pauser, &["CLIENT", "KILL", "ID", &id.to_string()]).unwrap();
    assert_eq!(killed, 1);
    assert_eq!(text(&mut pauser, &["CLIENT", "UNPAUSE"]), "OK");
    assert!(held.join().unwrap().is_err(), "the killed connection gets no reply");
    assert_eq!(query::<Option<String>>(&mut pauser, &["GET", "killed"]).unwrap(), None);
}

/// Waits until the connection named `name` has `cmd` as its current
/// command (the server read it), as `CLIENT LIST` shows.
fn wait_for_command(con: &mut redis::Connection, name: &str, cmd: &str) {
    let deadline = std::time::Instant::now() + server::PATIENCE;
    while line_named(con, name).and_then(|l| field(&l, "cmd").map(str::to_string)).as_deref() != Some(cmd) {
        assert!(std::time::Instant::now() < deadline, "{name} never ran {cmd}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
