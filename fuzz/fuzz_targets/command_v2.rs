//! guts-git's v2 command-request parser (`v2::parse_request`) on untrusted bytes: the
//! body of every v2 `ls-refs` and `fetch`.
//!
//! Crashes on: a panic; a request claiming more bytes than the input; a request that
//! parses from the input but not from the bytes it claims (parsing must not look past
//! its end); and an accepted request that does not survive `Request::write` and a
//! second parse unchanged.
#![no_main]

use guts_git::v2::parse_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((request, used))) = parse_request(data) else {
        return;
    };
    assert!(used <= data.len());
    assert_eq!(
        parse_request(&data[..used]),
        Ok(Some((request.clone(), used))),
        "the request's own bytes parse differently"
    );
    let mut body = Vec::new();
    request
        .write(&mut body)
        .unwrap_or_else(|err| panic!("accepted request does not write back: {err}"));
    let again = parse_request(&body)
        .unwrap_or_else(|err| panic!("written request does not parse: {err}"))
        .expect("written request is complete");
    assert_eq!(again, (request, body.len()));
});
