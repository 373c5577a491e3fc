//! A unified patch (as `guts_storage::unified_patch` and `git diff` write it) as the
//! rows of a GitHub-like diff table: hunk headers, context, added and removed lines,
//! each with its line numbers on the old and new side.
//!
//! The parser trusts nothing: the patch may come from a peer. Lines before the first
//! hunk (`diff --git`, `index`, `---`, `+++`) are file headers and skipped; a malformed
//! hunk header still becomes a hunk row (without numbers for the lines that follow); a
//! line without a known prefix inside a hunk is shown as context without numbers. It
//! never panics and stops at `max_rows`.

use super::highlight::Highlighter;

#[cfg(test)]
mod tests;

/// What a row of the diff table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// `@@ -a,b +c,d @@ context`: the text is the whole header line.
    Hunk,
    /// A line both sides share.
    Context,
    /// A line only the new side has.
    Added,
    /// A line only the old side has.
    Removed,
    /// `\ No newline at end of file`, about the line above it.
    NoNewline,
}

/// One row of the diff table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffRow {
    pub kind: RowKind,
    /// The line's number on the old side (1-based), when it has one there.
    pub old: Option<u32>,
    /// The line's number on the new side (1-based), when it has one there.
    pub new: Option<u32>,
    /// The line without its one-character prefix, not escaped (the page escapes it).
    /// For a hunk, the header; for `NoNewline`, the notice without its `\ `.
    pub text: String,
}

/// Where the parser is: before the first hunk, or inside one with the next line
/// numbers and the lines each side still expects (`None` when the header was
/// malformed and the hunk runs until the next header).
#[derive(Debug, Clone, Copy)]
struct Hunk {
    old: Option<u32>,
    new: Option<u32>,
    left: Option<(u32, u32)>,
}

/// Parses `patch` into at most `max_rows` rows; the flag says whether rows were left
/// out.
pub fn parse(patch: &str, max_rows: usize) -> (Vec<DiffRow>, bool) {
    let mut rows = Vec::new();
    let mut hunk: Option<Hunk> = None;
    let body = patch.strip_suffix('\n').unwrap_or(patch);
    if body.is_empty() {
        return (rows, false);
    }
    for line in body.split('\n') {
        let row = if let Some(rest) = line.strip_prefix("@@") {
            let header = parse_header(rest);
            hunk = Some(Hunk {
                old: header.map(|h| h.0),
                new: header.map(|h| h.2),
                left: header.map(|h| (h.1, h.3)),
            });
            Some(row(RowKind::Hunk, None, None, line))
        } else {
            match hunk.as_mut() {
                Some(at) => body_row(at, line),
                None => None,
            }
        };
        if let Some(row) = row {
            if rows.len() >= max_rows {
                return (rows, true);
            }
            rows.push(row);
        }
    }
    (rows, false)
}

fn row(kind: RowKind, old: Option<u32>, new: Option<u32>, text: &str) -> DiffRow {
    DiffRow {
        kind,
        old,
        new,
        text: text.to_owned(),
    }
}

/// The row for a line inside a hunk, advancing the hunk's numbers; `None` for a line
/// past the hunk's counts that is not a `\` note (a following file's header).
fn body_row(at: &mut Hunk, line: &str) -> Option<DiffRow> {
    let mut chars = line.chars();
    let prefix = chars.next();
    let text = chars.as_str();
    if prefix == Some('\\') {
        return Some(row(
            RowKind::NoNewline,
            None,
            None,
            line.get(2..).unwrap_or(text),
        ));
    }
    if at.left == Some((0, 0)) {
        return None;
    }
    let (old, new) = (at.old, at.new);
    let (take_old, take_new, kind) = match prefix {
        Some(' ') => (true, true, RowKind::Context),
        Some('+') => (false, true, RowKind::Added),
        Some('-') => (true, false, RowKind::Removed),
        // An empty line is a context line whose space was trimmed away in transit.
        None => (true, true, RowKind::Context),
        Some(_) => return Some(row(RowKind::Context, None, None, line)),
    };
    if take_old {
        at.old = old.map(|n| n.saturating_add(1));
    }
    if take_new {
        at.new = new.map(|n| n.saturating_add(1));
    }
    if let Some((o, n)) = at.left.as_mut() {
        if take_old {
            *o = o.saturating_sub(1);
        }
        if take_new {
            *n = n.saturating_sub(1);
        }
    }
    Some(row(
        kind,
        if take_old { old } else { None },
        if take_new { new } else { None },
        text,
    ))
}

/// ` -a,b +c,d @@…` (after the leading `@@`) → `(a, b, c, d)`, a count defaulting to
/// 1; `None` when it is not one.
fn parse_header(rest: &str) -> Option<(u32, u32, u32, u32)> {
    let rest = rest.strip_prefix(" -")?;
    let (old, rest) = rest.split_once(" +")?;
    let (new, _) = rest.split_once(" @@")?;
    let range = |s: &str| -> Option<(u32, u32)> {
        match s.split_once(',') {
            Some((start, len)) => Some((start.parse().ok()?, len.parse().ok()?)),
            None => Some((s.parse().ok()?, 1)),
        }
    };
    let (a, b) = range(old)?;
    let (c, d) = range(new)?;
    Some((a, b, c, d))
}

/// Highlighted HTML for each row's text, for the file at `path`: the old side's lines
/// (context and removed) and the new side's (context and added) run through a
/// highlighter each, so comments and strings that span lines colour right on both
/// sides. Hunk rows get their text escaped; one fragment per row, balanced.
pub fn highlight_rows(path: &str, rows: &[DiffRow]) -> Vec<String> {
    let mut old_side = Highlighter::for_path(path);
    let mut new_side = Highlighter::for_path(path);
    rows.iter()
        .map(|row| match row.kind {
            RowKind::Added => new_side.line(&row.text),
            RowKind::Removed => old_side.line(&row.text),
            RowKind::Context => {
                old_side.line(&row.text);
                new_side.line(&row.text)
            }
            RowKind::Hunk | RowKind::NoNewline => {
                // A new hunk starts after a gap: whatever was open is unknown.
                if row.kind == RowKind::Hunk {
                    old_side = Highlighter::for_path(path);
                    new_side = Highlighter::for_path(path);
                }
                let mut html = String::with_capacity(row.text.len());
                super::escape_into(&mut html, &row.text);
                html
            }
        })
        .collect()
}
