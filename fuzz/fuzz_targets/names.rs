//! The name validators shared by the API and the fold: `validate_login`,
//! `validate_repo_name`, `validate_ref_name`.
//!
//! Each rule set is restated here independently (the ref-name one from
//! `git check-ref-format` without options), and the target crashes whenever a
//! validator and its restatement disagree in either direction: a name accepted that
//! git would refuse (a hostile peer smuggling a ref into storage) or a valid name
//! refused. It also checks that the errors point at what they claim to.
#![no_main]

use guts_core::names::{MAX_LOGIN_LEN, MAX_REF_NAME_LEN, MAX_REPO_NAME_LEN, NameError};
use guts_core::{validate_login, validate_ref_name, validate_repo_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(
        "login",
        text,
        validate_login(text),
        login_ok(text),
        MAX_LOGIN_LEN,
    );
    check(
        "repo name",
        text,
        validate_repo_name(text),
        repo_name_ok(text),
        MAX_REPO_NAME_LEN,
    );
    check(
        "ref name",
        text,
        validate_ref_name(text),
        ref_name_ok(text),
        MAX_REF_NAME_LEN,
    );
});

fn check(what: &str, text: &str, result: Result<(), NameError>, expected: bool, max: usize) {
    assert_eq!(
        result.is_ok(),
        expected,
        "{what} validator says {result:?} for {text:?}"
    );
    match result {
        Ok(()) => assert!(!text.is_empty() && text.len() <= max),
        Err(NameError::InvalidChar { ch, position }) => {
            let at = text.get(position..).unwrap_or_else(|| {
                panic!("{what}: InvalidChar position {position} not a char boundary")
            });
            assert!(
                at.starts_with(ch),
                "{what}: InvalidChar names the wrong char"
            );
        }
        Err(NameError::TooLong { max: m, found }) => {
            assert_eq!((m, found), (max, text.len()));
        }
        Err(NameError::Empty) => assert!(text.is_empty()),
        Err(err) => {
            let _ = err.to_string();
        }
    }
}

/// 1..=39 bytes of ASCII letters, digits and hyphens; no leading, trailing or doubled
/// hyphen.
fn login_ok(s: &str) -> bool {
    (1..=MAX_LOGIN_LEN).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// 1..=100 bytes of `[A-Za-z0-9._-]`, not `.` or `..`, not ending in `.git`.
fn repo_name_ok(s: &str) -> bool {
    (1..=MAX_REPO_NAME_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && s != "."
        && s != ".."
        && !s.ends_with(".git")
}

/// `git check-ref-format` (no options) for a full ref name under `refs/`, capped at
/// 1024 bytes, written as its man page lists the rules.
fn ref_name_ok(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_REF_NAME_LEN || !s.starts_with("refs/") {
        return false;
    }
    // No component begins with a dot or ends with ".lock"; none is empty ("//", or a
    // trailing slash).
    let components_ok = s
        .split('/')
        .all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"));
    // No "..", no ASCII control character (< 0x20 or DEL), space, ~ ^ : ? * [ or \.
    let chars_ok = !s.contains("..")
        && s.bytes().all(|b| {
            b >= 0x20
                && b != 0x7f
                && !matches!(b, b' ' | b'~' | b'^' | b':' | b'?' | b'*' | b'[' | b'\\')
        });
    // Not ending with "." or "/", no "@{", not the single character "@".
    components_ok
        && chars_ok
        && !s.ends_with('.')
        && !s.ends_with('/')
        && !s.contains("@{")
        && s != "@"
}
