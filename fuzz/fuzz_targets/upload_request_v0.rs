//! guts-git's v0 upload-pack request parser (`v0::parse_upload_request`) on untrusted
//! bytes: the body of every v0 fetch.
//!
//! Crashes on: a panic; more items in a parsed list than the caps allow; and an
//! accepted request that does not survive `UploadRequest::write` and a second parse
//! unchanged (so the writer can produce everything the parser accepts, and the parser
//! reads back everything the writer writes).
#![no_main]

use guts_git::limits::MAX_LIST_LEN;
use guts_git::v0::parse_upload_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_upload_request(data) else {
        return;
    };
    assert!(request.wants.len() <= MAX_LIST_LEN && request.haves.len() <= MAX_LIST_LEN);
    assert!(!(request.caps.side_band && request.caps.side_band_64k));
    assert!(request.filter.is_none() || request.caps.filter);
    let mut body = Vec::new();
    request
        .write(&mut body)
        .unwrap_or_else(|err| panic!("accepted request does not write back: {err}"));
    let again = parse_upload_request(&body)
        .unwrap_or_else(|err| panic!("written request does not parse: {err}"));
    assert_eq!(again, request);
});
