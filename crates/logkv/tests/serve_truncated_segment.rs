//! A sealed segment cut short underneath a running `logkv serve`: reads of
//! the keys it held answer an error on every interface, and the server
//! lives on and answers the other keys. (Segments used to be read through
//! memory maps, where touching a page past the new end of the file killed
//! the process with SIGBUS.)

mod rpc_support;
mod server;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rpc_support::Rpc;
use serde_json::json;
use server::Server;

const ZERO_STREAM: &str = "0x0000000000000000000000000000000000000000000000000000000000000000";

fn value(i: usize) -> String {
    format!("value-{i:03}-{}", "x".repeat(4000))
}

#[test]
fn a_segment_truncated_under_the_server_is_an_error_not_a_crash() {
    let server = Server::builder().args(["--segment-size-bytes", "65536", "--durability", "always"]).start();
    let rpc = Rpc::new(&server);
    for i in 0..60 {
        assert!(rpc.redis(&["SET", &format!("k{i}"), &value(i)]).starts_with("+OK"));
    }
    // The segment holding k3 is sealed (later keys filled two more).
    let (segment, _) = holder(&server, 3);
    let (last, _) = holder(&server, 59);
    assert_ne!(segment, last, "k3's segment is sealed");
    // Every key read once first, so the file's pages are in use.
    for i in 0..60 {
        assert!(rpc.redis(&["GET", &format!("k{i}")]).contains(&value(i)), "k{i}");
    }
    let file = std::fs::OpenOptions::new().write(true).open(&segment).unwrap();
    file.set_len(3000).unwrap();
    file.sync_all().unwrap();
    drop(file);
    let name = segment.file_name().unwrap().to_str().unwrap().to_string();

    let reply = rpc.redis(&["GET", "k3"]);
    assert!(reply.starts_with('-') && reply.contains(&name), "RESP names the file: {reply}");
    let key = STANDARD.encode("k3");
    let error = rpc.error("kv_getValue", json!([ZERO_STREAM, key, 0, 100]));
    assert!(error["data"].as_str().unwrap_or_default().contains(&name), "JSON-RPC names the file: {error}");

    // Still alive: a key in another segment reads, and a new write works.
    assert!(rpc.redis(&["GET", "k59"]).contains(&value(59)));
    assert!(rpc.redis(&["SET", "after", "still here"]).starts_with("+OK"));
    assert!(rpc.redis(&["GET", "after"]).contains("still here"));
    let (status, _) = rpc.get("/healthz");
    assert_eq!(status, 200);
    server.stop();
}

/// The segment file holding key `k{i}`'s value, and the value's offset.
fn holder(server: &Server, i: usize) -> (std::path::PathBuf, usize) {
    let wanted = value(i);
    for entry in std::fs::read_dir(server.dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let bytes = std::fs::read(&path).unwrap();
            if let Some(at) = bytes.windows(wanted.len()).position(|w| w == wanted.as_bytes()) {
                return (path, at);
            }
        }
    }
    panic!("no segment holds k{i}")
}
