//! An incoming push stream as receive-pack takes it: the command list
//! (`v0::ReceiveParser`), then the pack that follows, read, checked and indexed by
//! gix-pack with the options the node uses (`Bundle::write_to_directory`, verifying
//! every entry, capping any one object's size, no thin-pack bases available).
//!
//! Crashes on: a panic or abort anywhere in parsing, inflating, delta resolution or
//! indexing; and on an accepted pack whose index does not list exactly as many
//! objects as the pack header promised.
#![no_main]

use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use guts_git::v0::parse_receive_request;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("guts-fuzz-pack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    // Inputs that start with a pack are fuzzed as a bare pack too.
    let pack = match parse_receive_request(data) {
        Ok(Some((request, consumed))) if request.expects_pack() => &data[consumed..],
        _ if data.starts_with(b"PACK") => data,
        _ => return,
    };
    let dir = tempfile_in(scratch());
    let mut reader = std::io::BufReader::new(pack);
    let outcome = gix_pack::Bundle::write_to_directory(
        &mut reader,
        Some(&dir),
        &mut gix_utils::progress::Discard,
        &AtomicBool::new(false),
        None::<gix_object::find::Never>,
        gix_hash::Kind::Sha1,
        gix_pack::bundle::write::Options {
            thread_limit: Some(1),
            iteration_mode: gix_pack::data::input::Mode::Verify,
            index_version: gix_pack::index::Version::V2,
            alloc_limit_bytes: Some(16 << 20),
            compression: Default::default(),
        },
    );
    if let Ok(outcome) = outcome {
        let claimed = u32::from_be_bytes([pack[8], pack[9], pack[10], pack[11]]);
        assert_eq!(outcome.index.num_objects, claimed, "index and pack header disagree");
    }
    let _ = std::fs::remove_dir_all(&dir);
});

fn tempfile_in(root: &std::path::Path) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = root.join(N.fetch_add(1, Ordering::Relaxed).to_string());
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
