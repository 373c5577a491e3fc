//! Placeholder until the patch parser lands.

/// What a row of a diff table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Hunk,
    Context,
    Added,
    Removed,
    NoNewline,
}

/// One row of a diff table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffRow {
    pub kind: RowKind,
    pub old: Option<u32>,
    pub new: Option<u32>,
    pub text: String,
}

/// The rows of `patch`, at most `max_rows`; `true` when cut.
pub fn parse(patch: &str, max_rows: usize) -> (Vec<DiffRow>, bool) {
    let rows: Vec<DiffRow> = patch
        .lines()
        .take(max_rows)
        .map(|l| DiffRow {
            kind: match l.as_bytes().first() {
                Some(b'+') => RowKind::Added,
                Some(b'-') => RowKind::Removed,
                Some(b'@') => RowKind::Hunk,
                _ => RowKind::Context,
            },
            old: None,
            new: None,
            text: l.get(1..).unwrap_or_default().to_string(),
        })
        .collect();
    let cut = patch.lines().count() > max_rows;
    (rows, cut)
}
