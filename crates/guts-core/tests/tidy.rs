//! Tidy: every source file of the workspace (`crates/*/src/**/*.rs`) starts with a `//!`
//! line saying what it holds, and no file other than tests passes 1,000 lines.
//!
//! It lives in guts-core because that is the cheapest crate to link: the test reads the
//! workspace's files, the library it sits beside still does no I/O. A test file is one
//! named `tests.rs` or `*_tests.rs`, or one under a `tests` directory: inline test
//! modules of a long file belong in a sibling `tests.rs` (`mod tests;`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Lines a non-test file may hold.
const MAX_LINES: usize = 1_000;

/// Files allowed past [`MAX_LINES`] for now, relative to the workspace root.
const TOO_LONG_FOR_NOW: &[&str] = &[];

fn workspace_root() -> PathBuf {
    // This crate is `crates/guts-core`.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `crates/<crate>/src/...` of every file to check, relative to the root and sorted, so
/// failures read the same each run.
fn source_files(root: &Path) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    for member in fs::read_dir(root.join("crates"))? {
        let src = member?.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files)?;
        }
    }
    let mut relative: Vec<String> = files
        .iter()
        .map(|path| {
            let relative = path.strip_prefix(root).unwrap_or(path);
            relative.to_string_lossy().replace('\\', "/")
        })
        .collect();
    relative.sort();
    Ok(relative)
}

fn is_test_file(relative: &str) -> bool {
    let mut components: Vec<&str> = relative.split('/').collect();
    let name = components.pop().unwrap_or_default();
    name == "tests.rs" || name.ends_with("_tests.rs") || components.contains(&"tests")
}

#[test]
fn every_source_file_starts_with_a_module_doc_and_stays_under_the_line_limit() {
    let root = workspace_root();
    let files = source_files(&root).unwrap_or_else(|e| panic!("walking {}: {e}", root.display()));
    assert!(
        files.iter().any(|f| f == "crates/guts-core/src/lib.rs"),
        "the walk found no guts-core sources under {}",
        root.display()
    );
    let mut problems = Vec::new();
    for relative in &files {
        let text = fs::read_to_string(root.join(relative))
            .unwrap_or_else(|e| panic!("reading {relative}: {e}"));
        if !text.starts_with("//!") {
            problems.push(format!(
                "{relative}: does not start with a `//!` line saying what the module holds"
            ));
        }
        let lines = text.lines().count();
        if lines > MAX_LINES
            && !is_test_file(relative)
            && !TOO_LONG_FOR_NOW.contains(&relative.as_str())
        {
            problems.push(format!(
                "{relative}: {lines} lines, over {MAX_LINES}: split it (tests go to a sibling `tests.rs`)"
            ));
        }
    }
    assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
}

#[test]
fn test_files_are_recognised_by_name_or_directory() {
    assert!(is_test_file("crates/a/src/fold/tests.rs"));
    assert!(is_test_file("crates/a/src/net/codec_tests.rs"));
    assert!(is_test_file("crates/a/src/tests/e2e.rs"));
    assert!(!is_test_file("crates/a/src/fold.rs"));
    assert!(!is_test_file("crates/a/src/contests.rs"));
}
