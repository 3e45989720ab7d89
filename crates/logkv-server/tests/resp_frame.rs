//! The RESP request parser: whole, partial, pipelined and malformed input.

use logkv_server::resp::frame::{parse, Limits, Parser, ProtocolError, Request};
use proptest::prelude::*;

fn args(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|a| a.as_bytes().to_vec()).collect()
}

fn parse_default(buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
    parse(buf, &Limits::default())
}

fn error_text(buf: &[u8]) -> String {
    parse_default(buf).unwrap_err().to_string()
}

#[test]
fn multibulk_request_parses_with_consumed_length() {
    let buf = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
    let (request, used) = parse_default(buf).unwrap().unwrap();
    assert_eq!(request.args, args(&["GET", "key"]));
    assert_eq!(used, buf.len());
}

#[test]
fn bulk_strings_are_binary_safe() {
    let buf = b"*1\r\n$4\r\na\r\n\0\r\n";
    let (request, _) = parse_default(buf).unwrap().unwrap();
    assert_eq!(request.args, vec![b"a\r\n\0".to_vec()]);
}

#[test]
fn every_proper_prefix_of_a_request_is_incomplete() {
    let buf = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
    for end in 0..buf.len() {
        assert_eq!(parse_default(&buf[..end]).unwrap(), None, "prefix {end}");
    }
    assert!(parse_default(buf).unwrap().is_some());
}

#[test]
fn pipelined_requests_parse_one_after_another() {
    let buf = b"*1\r\n$4\r\nPING\r\nECHO hi\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPI";
    let mut pos = 0;
    let mut seen = Vec::new();
    while let Some((request, used)) = parse_default(&buf[pos..]).unwrap() {
        seen.push(request.args);
        pos += used;
    }
    assert_eq!(seen, vec![args(&["PING"]), args(&["ECHO", "hi"]), args(&["GET", "k"])]);
    assert_eq!(&buf[pos..], b"*1\r\n$4\r\nPI");
}

#[test]
fn empty_and_negative_multibulk_are_empty_requests() {
    for buf in [&b"*0\r\n"[..], b"*-1\r\n"] {
        let (request, used) = parse_default(buf).unwrap().unwrap();
        assert!(request.args.is_empty());
        assert_eq!(used, buf.len());
    }
}

#[test]
fn inline_request_splits_on_whitespace_with_or_without_cr() {
    let (request, used) = parse_default(b"SET  key\tvalue\r\nrest").unwrap().unwrap();
    assert_eq!(request.args, args(&["SET", "key", "value"]));
    assert_eq!(used, 16);
    let (request, _) = parse_default(b"PING\n").unwrap().unwrap();
    assert_eq!(request.args, args(&["PING"]));
    assert_eq!(parse_default(b"PING").unwrap(), None);
}

#[test]
fn blank_inline_line_is_an_empty_request() {
    let (request, used) = parse_default(b"\r\n").unwrap().unwrap();
    assert!(request.args.is_empty());
    assert_eq!(used, 2);
}

#[test]
fn inline_quotes_and_escapes_follow_redis() {
    let line = b"SET \"a b\\n\\x41\\\"\" 'it\\'s' \"\"\r\n";
    let (request, _) = parse_default(line).unwrap().unwrap();
    assert_eq!(request.args, vec![b"SET".to_vec(), b"a b\nA\"".to_vec(), b"it's".to_vec(), Vec::new()]);
}

#[test]
fn unbalanced_inline_quotes_are_refused() {
    for line in [&b"SET \"abc\r\n"[..], b"SET 'abc\r\n", b"SET \"a\"b\r\n", b"SET 'a'b\r\n"] {
        assert_eq!(parse_default(line), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(error_text(line), "ERR Protocol error: unbalanced quotes in request");
    }
}

#[test]
fn invalid_multibulk_length_is_refused() {
    for buf in [&b"*x\r\n"[..], b"*\r\n", b"*01\r\n", b"*+1\r\n", b"* 1\r\n", b"*99999999999999999999\r\n"] {
        assert_eq!(error_text(buf), "ERR Protocol error: invalid multibulk length", "{buf:?}");
    }
}

#[test]
fn invalid_bulk_length_is_refused() {
    for buf in [&b"*1\r\n$x\r\n"[..], b"*1\r\n$-1\r\n", b"*1\r\n$\r\n", b"*1\r\n$1a\r\n"] {
        assert_eq!(error_text(buf), "ERR Protocol error: invalid bulk length", "{buf:?}");
    }
}

#[test]
fn non_bulk_array_element_is_refused() {
    assert_eq!(error_text(b"*1\r\n:1\r\n"), "ERR Protocol error: expected '$', got ':'");
    assert_eq!(error_text(b"*2\r\n$1\r\na\r\nx"), "ERR Protocol error: expected '$', got 'x'");
}

#[test]
fn bulk_without_crlf_after_body_is_refused() {
    assert_eq!(parse_default(b"*1\r\n$1\r\nabc\r\n"), Err(ProtocolError::BulkNotTerminated));
}

#[test]
fn huge_bulk_header_is_refused_before_its_body_arrives() {
    assert_eq!(
        parse_default(b"*1\r\n$999999999\r\n"),
        Err(ProtocolError::BulkTooBig { limit: Limits::default().max_bulk_bytes, got: 999_999_999 })
    );
    assert_eq!(error_text(b"*1\r\n$999999999\r\n"), "ERR Protocol error: invalid bulk length");
}

#[test]
fn bulk_at_the_limit_is_accepted() {
    let limits = Limits { max_bulk_bytes: 3, ..Limits::default() };
    assert!(parse(b"*1\r\n$3\r\nabc\r\n", &limits).unwrap().is_some());
    assert!(matches!(parse(b"*1\r\n$4\r\n", &limits), Err(ProtocolError::BulkTooBig { limit: 3, got: 4 })));
}

#[test]
fn too_many_args_is_refused_at_the_header() {
    let limits = Limits { max_args: 2, ..Limits::default() };
    assert_eq!(parse(b"*3\r\n", &limits), Err(ProtocolError::TooManyArgs { limit: 2, got: 3 }));
    assert_eq!(error_text(b"*9999999999\r\n"), "ERR Protocol error: invalid multibulk length");
}

#[test]
fn endless_inline_line_is_refused_past_the_limit() {
    let limits = Limits { max_inline_bytes: 8, ..Limits::default() };
    assert_eq!(parse(b"GET abcd", &limits).unwrap(), None);
    assert_eq!(parse(b"GET abcde", &limits), Err(ProtocolError::InlineTooBig { limit: 8 }));
    assert_eq!(parse(b"GET abcdefgh\r\n", &limits), Err(ProtocolError::InlineTooBig { limit: 8 }));
    assert_eq!(
        parse(b"GET abcde", &limits).unwrap_err().to_string(),
        "ERR Protocol error: too big inline request"
    );
}

#[test]
fn endless_header_lines_are_refused_past_the_limit() {
    let limits = Limits { max_inline_bytes: 4, ..Limits::default() };
    assert_eq!(parse(b"*11111", &limits), Err(ProtocolError::MultibulkHeaderTooBig { limit: 4 }));
    assert_eq!(parse(b"*1\r\n$11111", &limits), Err(ProtocolError::BulkHeaderTooBig { limit: 4 }));
    assert_eq!(
        parse(b"*11111", &limits).unwrap_err().to_string(),
        "ERR Protocol error: too big mbulk count string"
    );
}

#[test]
fn parser_resumes_a_request_arriving_byte_by_byte() {
    let buf = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*1\r\n$4\r\nPING\r\n";
    let mut parser = Parser::new(Limits::default());
    let mut start = 0;
    let mut seen = Vec::new();
    for end in 1..=buf.len() {
        if let Some((request, used)) = parser.parse(&buf[start..end]).unwrap() {
            seen.push(request.args);
            start += used;
        }
    }
    assert_eq!(seen, vec![args(&["SET", "k", "value"]), args(&["PING"])]);
    assert_eq!(start, buf.len());
}

#[test]
fn parser_refuses_a_huge_bulk_in_a_later_argument_before_its_body() {
    let mut parser = Parser::new(Limits { max_bulk_bytes: 8, ..Limits::default() });
    assert_eq!(parser.parse(b"*2\r\n$1\r\na\r\n").unwrap(), None);
    assert_eq!(parser.parse(b"*2\r\n$1\r\na\r\n$9\r\n"), Err(ProtocolError::BulkTooBig { limit: 8, got: 9 }));
}

proptest! {
    #[test]
    fn parser_fed_in_two_parts_matches_one_shot_parse(
        list in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 0..6),
        split in any::<proptest::sample::Index>(),
    ) {
        let mut buf = format!("*{}\r\n", list.len()).into_bytes();
        for arg in &list {
            buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            buf.extend_from_slice(arg);
            buf.extend_from_slice(b"\r\n");
        }
        let split = split.index(buf.len());
        let mut parser = Parser::new(Limits::default());
        let first = parser.parse(&buf[..split]).unwrap();
        prop_assert_eq!(first, None);
        let whole = parser.parse(&buf).unwrap();
        prop_assert_eq!(whole, parse_default(&buf).unwrap());
    }


    #[test]
    fn random_bytes_never_panic_and_never_overconsume(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
        let limits = Limits { max_bulk_bytes: 64, max_args: 8, max_inline_bytes: 64 };
        if let Ok(Some((_, used))) = parse(&buf, &limits) {
            prop_assert!(used > 0 && used <= buf.len());
        }
    }

    #[test]
    fn encoded_arguments_parse_back(list in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 1..8)) {
        let mut buf = format!("*{}\r\n", list.len()).into_bytes();
        for arg in &list {
            buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            buf.extend_from_slice(arg);
            buf.extend_from_slice(b"\r\n");
        }
        let (request, used) = parse_default(&buf).unwrap().unwrap();
        prop_assert_eq!(request.args, list);
        prop_assert_eq!(used, buf.len());
    }
}

#[test]
fn take_splits_whole_requests_off_the_buffer_as_slices_of_it() {
    let mut input =
        bytes::BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*1\r\n$4\r\nPI"[..]);
    let (start, end) = (input.as_ptr() as usize, input.as_ptr() as usize + input.len());
    let mut parser = Parser::new(Limits::default());
    let request = parser.take(&mut input).unwrap().unwrap();
    assert_eq!(request.args, vec![b"SET".to_vec(), b"k".to_vec(), b"value".to_vec()]);
    for arg in &request.args {
        let at = arg.as_ptr() as usize;
        assert!(at >= start && at + arg.len() <= end, "an argument was copied out of the buffer");
    }
    assert_eq!(&input[..], b"*1\r\n$4\r\nPI", "only the whole request is taken");
    assert_eq!(parser.take(&mut input).unwrap(), None);
    input.extend_from_slice(b"NG\r\nGET  k\r\n");
    assert_eq!(parser.take(&mut input).unwrap().unwrap().args, vec![b"PING".to_vec()]);
    assert_eq!(parser.take(&mut input).unwrap().unwrap().args, vec![b"GET".to_vec(), b"k".to_vec()]);
    assert!(input.is_empty());
}
