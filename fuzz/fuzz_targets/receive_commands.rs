//! guts-git's receive-pack command-list parser (`v0::ReceiveParser`) on untrusted
//! bytes: the start of every push body, before the pack.
//!
//! Crashes on: a panic; a pack offset beyond the input; parsing in two chunks (as the
//! body arrives) giving another result than parsing at once; and an accepted request
//! that does not survive `ReceiveRequest::write` and a second parse unchanged, with
//! the pack offset at the end of what was written.
#![no_main]

use guts_git::v0::{ReceiveParser, ReceiveStep, parse_receive_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = parse_receive_request(data);

    let split = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let chunked = match ReceiveParser::new().advance(&data[..split]) {
        Ok(ReceiveStep::NeedMore(parser)) => match parser.advance(data) {
            Ok(ReceiveStep::NeedMore(_)) => Ok(None),
            Ok(ReceiveStep::Done { request, consumed }) => Ok(Some((request, consumed))),
            Err(err) => Err(err),
        },
        Ok(ReceiveStep::Done { request, consumed }) => Ok(Some((request, consumed))),
        Err(err) => Err(err),
    };
    assert_eq!(chunked, whole, "chunked parse at {split} differs");

    let Ok(Some((request, consumed))) = whole else {
        return;
    };
    assert!(consumed <= data.len());
    let mut body = Vec::new();
    request
        .write(&mut body)
        .unwrap_or_else(|err| panic!("accepted request does not write back: {err}"));
    let (again, used) = parse_receive_request(&body)
        .unwrap_or_else(|err| panic!("written request does not parse: {err}"))
        .expect("written request is complete");
    assert_eq!(again, request);
    assert_eq!(used, body.len());
});
