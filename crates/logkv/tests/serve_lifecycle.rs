//! `logkv serve` as an operator runs it: settings from a file, the
//! environment and flags with flags winning, and a graceful stop that
//! syncs what `periodic` mode acknowledged from its buffer.

mod server;

use redis::Commands;
use server::Server;

fn config_get(con: &mut redis::Connection, name: &str) -> String {
    let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(con).unwrap();
    assert_eq!(pair.len(), 2, "{name}: {pair:?}");
    pair[1].clone()
}

#[test]
fn flags_win_over_environment_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("logkv.toml");
    std::fs::write(&file, "max_connections = 11\nidle_timeout_secs = 21\ndurability = \"periodic\"\n")
        .unwrap();
    let server = Server::builder()
        .arg("--config")
        .arg(&file)
        .env("LOGKV_MAX_CONNECTIONS", "12")
        .env("LOGKV_IDLE_TIMEOUT_SECS", "22")
        .args(["--idle-timeout-secs", "23"])
        .start();
    let mut con = redis::Client::open(server.redis_url()).unwrap().get_connection().unwrap();
    assert_eq!(config_get(&mut con, "maxclients"), "12", "the variable beats the file");
    assert_eq!(config_get(&mut con, "timeout"), "23", "the flag beats the variable");
    assert_eq!(config_get(&mut con, "appendfsync"), "everysec", "the file beats the default");
}

#[test]
fn a_bad_config_file_stops_serve_with_a_usage_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("logkv.toml");
    std::fs::write(&file, "resp_adr = \"127.0.0.1:1\"\n").unwrap();
    let failed = Server::builder().arg("--config").arg(&file).try_start().err().expect("refused");
    assert_eq!(failed.status.and_then(|s| s.code()), Some(2), "{failed}");
    assert!(failed.stderr.contains("resp_adr"), "{failed}");
}

#[test]
fn sigterm_syncs_buffered_writes_and_exits_0() {
    // A flush interval far longer than the test: only the shutdown's sync
    // can make these writes durable.
    let args =
        ["--durability", "periodic", "--flush-interval-ms", "600000", "--flush-size-bytes", "1000000000"];
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let server = Server::builder().data_dir(&dir).args(args).start();
    let mut con = redis::Client::open(server.redis_url()).unwrap().get_connection().unwrap();
    for i in 0..100 {
        let () = con.set(format!("k{i}"), format!("v{i}")).unwrap();
    }
    drop(con);
    let status = server.stop();
    assert_eq!(status.code(), Some(0), "graceful stop");

    let server = Server::builder().data_dir(&dir).args(args).start();
    let mut con = redis::Client::open(server.redis_url()).unwrap().get_connection().unwrap();
    for i in 0..100 {
        let v: Option<String> = con.get(format!("k{i}")).unwrap();
        assert_eq!(v.as_deref(), Some(format!("v{i}").as_str()));
    }
}
