//! The RESP request parser and command parser, fed what a client sends.

use bytes::BytesMut;
use logkv_server::resp::command;
use logkv_server::resp::frame::{self, Limits, Parser};

/// Limits small enough that inputs of a few hundred bytes reach every
/// "too big" branch.
const SMALL: Limits = Limits { max_bulk_bytes: 64, max_args: 16, max_inline_bytes: 48 };

/// Input: a byte choosing the limits (bit 0: small ones), a byte choosing
/// where the stream is cut in two reads, then the bytes a client sent.
///
/// Checks: a request never claims more bytes than it was given, nor none;
/// parsing with a [`Parser`] that first saw only a prefix gives what
/// parsing the whole buffer at once gives (so a request split across
/// reads means the same as one read whole); a request parsed from exactly
/// its own bytes is the same request; taking requests off a `BytesMut`
/// agrees with the copying parser; and every request's arguments go
/// through the command parser.
pub(crate) fn check(data: &[u8]) {
    let [limits, cut, input @ ..] = data else { return };
    let limits = if limits & 1 == 1 { SMALL } else { Limits::default() };
    let cut = usize::from(*cut).min(input.len());

    let whole = frame::parse(input, &limits);
    if let Ok(Some((request, used))) = &whole {
        assert!(*used > 0 && *used <= input.len(), "used {used} of {} bytes", input.len());
        assert_eq!(frame::parse(&input[..*used], &limits), Ok(Some((request.clone(), *used))));
    }

    let mut parser = Parser::new(limits);
    match parser.parse(&input[..cut]) {
        Ok(None) => assert_eq!(parser.parse(input), whole, "a request split at byte {cut}"),
        Ok(Some(prefix)) => assert_eq!(Ok(Some(prefix)), whole, "a request complete in {cut} bytes"),
        Err(e) => assert_eq!(Err(e), whole, "an error in the first {cut} bytes"),
    }

    let mut buffer = BytesMut::from(input);
    let mut taker = Parser::new(limits);
    let mut offset = 0;
    loop {
        let copied = frame::parse(&input[offset..], &limits);
        let taken = taker.take(&mut buffer);
        match (copied, taken) {
            (Ok(Some((expected, used))), Ok(Some(request))) => {
                assert_eq!(request, expected);
                offset += used;
                assert_eq!(buffer.len(), input.len() - offset);
                if !request.args.is_empty() {
                    let _ = command::parse(&request.args);
                }
            }
            (Ok(None), Ok(None)) => break,
            (Err(a), Err(b)) => {
                assert_eq!(a, b);
                break;
            }
            (copied, taken) => panic!("parse gave {copied:?}, take gave {taken:?}"),
        }
    }
}
