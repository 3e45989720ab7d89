//! `logkv serve` and the open-file limit: it raises its soft limit toward
//! the hard one to hold `max_connections`, and where the hard limit is too
//! low it serves fewer connections and says so in its log. (This test
//! lowers its own process's limits, which the server inherits, so it is
//! the only test in its binary.)

mod server;

use server::{resp, roundtrip, Server};

fn hard_open_files() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0, "getrlimit");
    limit.rlim_max
}

fn set_open_files(soft: u64, hard: u64) {
    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: setrlimit reads the struct it is given and nothing else.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0, "setrlimit");
}

fn maxclients(server: &Server) -> String {
    let mut stream = server.connect();
    let reply = roundtrip(&mut stream, &resp::request(&[b"CONFIG", b"GET", b"maxclients"]), 1);
    let text = String::from_utf8(reply).unwrap();
    text.lines().nth(4).expect("the value").to_string()
}

fn soft_open_files(server: &Server) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("open files line");
    line.split_whitespace().nth(3).expect("soft limit").parse().unwrap()
}

#[test]
fn the_server_raises_its_open_file_limit_or_serves_fewer_connections_and_says_so() {
    // Room to raise: the soft limit goes up, max_connections stays.
    let hard = hard_open_files();
    assert!(hard >= 1000 + 64, "this test needs a hard open-file limit of at least 1,064, not {hard}");
    set_open_files(256, hard);
    let server = Server::builder().args(["--max-connections", "1000"]).start();
    assert_eq!(maxclients(&server), "1000");
    assert_eq!(soft_open_files(&server), 1000 + 64);
    assert!(server.stderr().contains("raised the open-file limit"), "{}", server.stderr());
    server.stop_cleanly();

    // No room: max_connections is lowered to what fits, with a warning.
    set_open_files(200, 200);
    let server = Server::builder().args(["--max-connections", "1000"]).start();
    assert_eq!(maxclients(&server), (200 - 64).to_string());
    let log = server.stderr();
    assert!(log.contains("lowered max_connections from 1000 to 136"), "{log}");
    server.stop_cleanly();
}
