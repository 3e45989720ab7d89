//! The configuration model through the binary: defaults < file <
//! `LOGKV_*` variables < flags, `--print-config` naming each value's
//! source, errors naming the setting and the source of the bad value, the
//! commands that open a data directory reading the same file, and JSON log
//! lines.

mod server;

use std::path::Path;
use std::process::{Command, Output};

use server::{binary, Server};

/// Runs `logkv ARGS` with exactly the `LOGKV_*` variables `env` (none of
/// the caller's).
fn logkv_env(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("LOGKV_")) {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied()).args(args).output().expect("run logkv")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "logkv failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn write_file(dir: &Path, text: &str) -> String {
    let path = dir.join("logkv.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn each_source_overrides_the_one_below_and_print_config_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "durability = \"periodic\"\nmax_connections = 77\nresp_addr = \"0.0.0.0:6379\"\n\
         idle_timeout_secs = 5\nlog_format = \"json\"\n",
    );
    let env = [
        ("LOGKV_CONFIG", file.as_str()),
        ("LOGKV_MAX_CONNECTIONS", "88"),
        ("LOGKV_RESP_ADDR", "127.0.0.1:1"),
        ("LOGKV_DURABILITY", "none"),
    ];
    let printed = stdout(&logkv_env(
        &env,
        &["--durability", "always", "serve", "--max-connections", "99", "--print-config"],
    ));
    let line = |key: &str| {
        printed
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key}: {printed}"))
    };
    assert_eq!(line("max_connections"), "max_connections = 99  # flag --max-connections");
    assert_eq!(line("durability"), "durability = \"always\"  # flag --durability");
    assert_eq!(line("resp_addr"), "resp_addr = \"127.0.0.1:1\"  # environment variable LOGKV_RESP_ADDR");
    assert_eq!(line("idle_timeout_secs"), format!("idle_timeout_secs = 5  # config file {file}"));
    assert_eq!(line("http_addr"), "http_addr = \"127.0.0.1:7380\"  # default");
    assert_eq!(line("log_format"), format!("log_format = \"json\"  # config file {file}"));
    // A variable without a flag beats the file.
    let printed = stdout(&logkv_env(&env, &["serve", "--print-config"]));
    assert!(
        printed.contains("durability = \"none\"  # environment variable LOGKV_DURABILITY\n"),
        "{printed}"
    );
    assert!(printed.contains("max_connections = 88  # environment variable LOGKV_MAX_CONNECTIONS\n"));
}

#[test]
fn a_bad_value_names_the_setting_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "max_connections = \"lots\"\n");
    let e = refused(&logkv_env(&[], &["serve", "--config", &file, "--print-config"]));
    assert!(e.contains(&format!("bad setting max_connections (from config file {file})")), "{e}");
    let e = refused(&logkv_env(&[("LOGKV_IDLE_TIMEOUT_SECS", "soon")], &["serve", "--print-config"]));
    assert!(
        e.contains("bad setting idle_timeout_secs (from environment variable LOGKV_IDLE_TIMEOUT_SECS): invalid value 'soon'"),
        "{e}"
    );
    let e = refused(&logkv_env(&[], &["serve", "--compact-dead-ratio", "7", "--print-config"]));
    assert!(e.contains("bad setting compact_dead_ratio (from flag --compact-dead-ratio)"), "{e}");
    let e = refused(&logkv_env(&[], &["serve", "--idle-timeout-secs", "soon"]));
    assert!(e.contains("'--idle-timeout-secs <SECS>'"), "{e}");
    let file = write_file(dir.path(), "max_conections = 3\n");
    let e = refused(&logkv_env(&[], &["serve", "--config", &file]));
    assert!(e.contains("unknown setting \"max_conections\""), "{e}");
    let missing = dir.path().join("absent.toml");
    let e = refused(&logkv_env(&[], &["serve", "--config", missing.to_str().unwrap()]));
    assert!(e.contains("cannot read config file"), "{e}");
    // A store setting's variable is checked by every command that opens
    // the data directory.
    let e = refused(&logkv_env(&[("LOGKV_RECOVERY", "maybe")], &["get", "k"]));
    assert!(e.contains("bad setting recovery (from environment variable LOGKV_RECOVERY)"), "{e}");
}

#[test]
fn commands_on_a_data_directory_read_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file =
        write_file(dir.path(), &format!("data_dir = {:?}\nmax_key_bytes = 8\n", data.to_str().unwrap()));
    stdout(&logkv_env(&[], &["--config", &file, "put", "k", "v"]));
    assert!(data.is_dir(), "the file's data_dir was used");
    let got = stdout(&logkv_env(&[("LOGKV_CONFIG", file.as_str())], &["get", "k"]));
    assert_eq!(got, "v");
    let e = refused(&logkv_env(&[], &["--config", &file, "put", "a-long-key", "v"]));
    assert!(e.contains("key") && e.contains('8'), "{e}");
}

#[test]
fn json_log_lines_parse_as_json() {
    let server = Server::builder().args(["--log-format", "json", "--log-filter", "debug"]).start();
    let log = server.stderr();
    server.stop_cleanly();
    let mut messages = Vec::new();
    for line in log.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(value["level"].is_string() && value["timestamp"].is_string(), "{line}");
        messages.push(value["fields"]["message"].as_str().unwrap_or_default().to_string());
    }
    assert!(messages.iter().any(|m| m == "listening"), "{messages:?}");
}
