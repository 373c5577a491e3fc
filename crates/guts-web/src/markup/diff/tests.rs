//! Diff parsing: real patches keep their line numbers, garbage never panics.

use proptest::prelude::*;

use super::{DiffRow, RowKind, highlight_rows, parse};

const PATCH: &str = "\
@@ -1,4 +1,5 @@ fn main() {
 a
-b
+B
+c
 d
 e
@@ -10,2 +11,2 @@
 x
-y
\\ No newline at end of file
+y
\\ No newline at end of file";

fn r(kind: RowKind, old: Option<u32>, new: Option<u32>, text: &str) -> DiffRow {
    DiffRow {
        kind,
        old,
        new,
        text: text.to_owned(),
    }
}

#[test]
fn a_patch_becomes_numbered_rows() {
    use RowKind::*;
    let (rows, truncated) = parse(PATCH, 100);
    assert!(!truncated);
    assert_eq!(
        rows,
        vec![
            r(Hunk, None, None, "@@ -1,4 +1,5 @@ fn main() {"),
            r(Context, Some(1), Some(1), "a"),
            r(Removed, Some(2), None, "b"),
            r(Added, None, Some(2), "B"),
            r(Added, None, Some(3), "c"),
            r(Context, Some(3), Some(4), "d"),
            r(Context, Some(4), Some(5), "e"),
            r(Hunk, None, None, "@@ -10,2 +11,2 @@"),
            r(Context, Some(10), Some(11), "x"),
            r(Removed, Some(11), None, "y"),
            r(NoNewline, None, None, "No newline at end of file"),
            r(Added, None, Some(12), "y"),
            r(NoNewline, None, None, "No newline at end of file"),
        ]
    );
    let (rows, truncated) = parse(PATCH, 3);
    assert!(truncated);
    assert_eq!(rows.len(), 3);
    assert_eq!(parse("", 10), (Vec::new(), false));
}

#[test]
fn file_headers_are_skipped_and_counts_end_hunks() {
    let patch = "diff --git a/f b/f\nindex 1..2 100644\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -0,0 +1 @@\n+new";
    let (rows, _) = parse(patch, 100);
    let kinds: Vec<RowKind> = rows.iter().map(|r| r.kind).collect();
    use RowKind::*;
    assert_eq!(kinds, vec![Hunk, Removed, Added, Hunk, Added]);
    assert_eq!(rows[4].new, Some(1));
}

#[test]
fn malformed_headers_still_show_their_lines() {
    let (rows, _) = parse("@@ nonsense @@\n x\n+y\nzzz", 100);
    assert_eq!(rows[0].kind, RowKind::Hunk);
    assert_eq!(rows[1], r(RowKind::Context, None, None, "x"));
    assert_eq!(rows[2], r(RowKind::Added, None, None, "y"));
    assert_eq!(rows[3], r(RowKind::Context, None, None, "zzz"));
    let (rows, _) = parse("@@ -4294967295,2 +1,1 @@\n a\n b", 100);
    assert_eq!(rows[2].old, Some(u32::MAX));
}

/// The patch of two texts, written the way `guts_storage::unified_patch` writes it
/// (whole-file hunk), to check numbering against the texts themselves.
fn whole_file_patch(old: &[String], new: &[String]) -> String {
    let mut patch = format!("@@ -1,{} +1,{} @@\n", old.len(), new.len());
    for line in old {
        patch.push_str(&format!("-{line}\n"));
    }
    for line in new {
        patch.push_str(&format!("+{line}\n"));
    }
    patch
}

proptest! {
    #[test]
    fn garbage_never_panics(patch in "(@@ -?[0-9,]{0,6} ?\\+?[0-9,]{0,6} ?@@|[ +\\\\-]|[a-z]|\n|é){0,200}", max in 0usize..50) {
        let (rows, truncated) = parse(&patch, max);
        prop_assert!(rows.len() <= max);
        prop_assert!(truncated || rows.len() <= patch.lines().count());
        let html = highlight_rows("a.rs", &rows);
        prop_assert_eq!(html.len(), rows.len());
    }

    #[test]
    fn numbers_round_trip(
        old in prop::collection::vec("[a-z \"/*]{0,8}", 0..20),
        new in prop::collection::vec("[a-z \"/*]{0,8}", 0..20),
    ) {
        let (rows, _) = parse(&whole_file_patch(&old, &new), 1000);
        let removed: Vec<(u32, &str)> = rows.iter().filter(|r| r.kind == RowKind::Removed).map(|r| (r.old.unwrap(), r.text.as_str())).collect();
        let added: Vec<(u32, &str)> = rows.iter().filter(|r| r.kind == RowKind::Added).map(|r| (r.new.unwrap(), r.text.as_str())).collect();
        let want_old: Vec<(u32, &str)> = old.iter().enumerate().map(|(i, l)| (i as u32 + 1, l.as_str())).collect();
        let want_new: Vec<(u32, &str)> = new.iter().enumerate().map(|(i, l)| (i as u32 + 1, l.as_str())).collect();
        prop_assert_eq!(removed, want_old);
        prop_assert_eq!(added, want_new);
    }
}

#[test]
fn rows_highlight_per_side() {
    let patch = "@@ -1,2 +1,2 @@\n-/* old\n+let x = 1;\n still */";
    let (rows, _) = parse(patch, 100);
    let html = highlight_rows("a.rs", &rows);
    assert_eq!(html[0], "@@ -1,2 +1,2 @@");
    assert!(html[1].contains("hl-c"));
    assert!(html[2].contains("<span class=\"hl-k\">let</span>"));
    // The context line is still inside the comment on the old side only; the new side
    // decides what is shown, and there it is code.
    assert!(!html[3].contains("hl-c"));
}
