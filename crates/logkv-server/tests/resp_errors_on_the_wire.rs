//! From request bytes to the error bytes a client sees: the layers compose
//! the way the server will use them, and the wire text is Redis's.

use logkv_server::resp::command::parse as parse_command;
use logkv_server::resp::frame::{Limits, Parser};
use logkv_server::resp::reply::{encode, Protocol, Reply};

fn answer(input: &[u8]) -> Vec<u8> {
    let mut parser = Parser::new(Limits::default());
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        match parser.parse(&input[pos..]) {
            Ok(Some((request, used))) => {
                pos += used;
                if let Err(error) = parse_command(&request.args) {
                    encode(&Reply::from(&error), Protocol::Resp2, &mut out);
                }
            }
            Ok(None) => return out,
            Err(error) => {
                encode(&Reply::from(&error), Protocol::Resp2, &mut out);
                return out;
            }
        }
    }
}

#[test]
fn command_errors_reach_the_client_as_redis_error_lines() {
    assert_eq!(
        answer(b"GET\r\nFOO a b\r\n*2\r\n$3\r\nSET\r\n$1\r\nk\r\n"),
        b"-ERR wrong number of arguments for 'get' command\r\n\
          -ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n\
          -ERR wrong number of arguments for 'set' command\r\n"
            .to_vec()
    );
}

#[test]
fn protocol_error_is_the_last_reply() {
    assert_eq!(
        answer(b"GET\r\n*1\r\n$999999999\r\nGET\r\n"),
        b"-ERR wrong number of arguments for 'get' command\r\n\
          -ERR Protocol error: invalid bulk length\r\n"
            .to_vec()
    );
}
