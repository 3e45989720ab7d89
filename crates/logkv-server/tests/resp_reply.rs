//! Reply encoding is byte-exact with Redis in RESP2 and RESP3.

use logkv_server::resp::reply::{encode, Protocol, Reply};

fn resp2(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    encode(reply, Protocol::Resp2, &mut out);
    out
}

fn resp3(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    encode(reply, Protocol::Resp3, &mut out);
    out
}

fn both(reply: &Reply, expected: &[u8]) {
    assert_eq!(resp2(reply), expected);
    assert_eq!(resp3(reply), expected);
}

#[test]
fn scalars_are_the_same_in_both_protocols() {
    both(&Reply::ok(), b"+OK\r\n");
    both(&Reply::Error("ERR syntax error".into()), b"-ERR syntax error\r\n");
    both(&Reply::Integer(-42), b":-42\r\n");
    both(&Reply::Bulk(b"foo".to_vec()), b"$3\r\nfoo\r\n");
    both(&Reply::Bulk(Vec::new()), b"$0\r\n\r\n");
    both(&Reply::Array(Vec::new()), b"*0\r\n");
}

#[test]
fn nulls_differ_between_protocols() {
    assert_eq!(resp2(&Reply::Null), b"$-1\r\n");
    assert_eq!(resp2(&Reply::NullArray), b"*-1\r\n");
    assert_eq!(resp3(&Reply::Null), b"_\r\n");
    assert_eq!(resp3(&Reply::NullArray), b"_\r\n");
}

#[test]
fn nested_array_encodes_recursively() {
    let reply =
        Reply::Array(vec![Reply::Bulk(b"a".to_vec()), Reply::Null, Reply::Array(vec![Reply::Integer(1)])]);
    assert_eq!(resp2(&reply), b"*3\r\n$1\r\na\r\n$-1\r\n*1\r\n:1\r\n");
    assert_eq!(resp3(&reply), b"*3\r\n$1\r\na\r\n_\r\n*1\r\n:1\r\n");
}

#[test]
fn map_is_a_flat_array_in_resp2() {
    let reply = Reply::Map(vec![(Reply::Bulk(b"k".to_vec()), Reply::Integer(3))]);
    assert_eq!(resp2(&reply), b"*2\r\n$1\r\nk\r\n:3\r\n");
    assert_eq!(resp3(&reply), b"%1\r\n$1\r\nk\r\n:3\r\n");
}

#[test]
fn set_is_an_array_in_resp2() {
    let reply = Reply::Set(vec![Reply::Bulk(b"x".to_vec())]);
    assert_eq!(resp2(&reply), b"*1\r\n$1\r\nx\r\n");
    assert_eq!(resp3(&reply), b"~1\r\n$1\r\nx\r\n");
}

#[test]
fn double_is_a_bulk_string_in_resp2() {
    assert_eq!(resp2(&Reply::Double(3.5)), b"$3\r\n3.5\r\n");
    assert_eq!(resp3(&Reply::Double(3.5)), b",3.5\r\n");
    assert_eq!(resp3(&Reply::Double(1.0)), b",1\r\n");
    assert_eq!(resp3(&Reply::Double(f64::INFINITY)), b",inf\r\n");
    assert_eq!(resp3(&Reply::Double(f64::NEG_INFINITY)), b",-inf\r\n");
    assert_eq!(resp3(&Reply::Double(f64::NAN)), b",nan\r\n");
}

#[test]
fn boolean_is_an_integer_in_resp2() {
    assert_eq!(resp2(&Reply::Boolean(true)), b":1\r\n");
    assert_eq!(resp2(&Reply::Boolean(false)), b":0\r\n");
    assert_eq!(resp3(&Reply::Boolean(true)), b"#t\r\n");
    assert_eq!(resp3(&Reply::Boolean(false)), b"#f\r\n");
}

#[test]
fn line_breaks_in_status_and_error_cannot_inject_replies() {
    both(&Reply::Error("ERR a\r\n+OK".into()), b"-ERR a  +OK\r\n");
    both(&Reply::Simple("a\nb".into()), b"+a b\r\n");
}
