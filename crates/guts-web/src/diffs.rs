//! A list of changed files as diff tables (a commit, a comparison, a pull request's
//! files): each file's patch parsed into numbered rows, cut off with a notice past
//! [`MAX_DIFF_ROWS`] rows in all, so a huge diff costs a bounded page.

use guts_storage::browse::{ChangeStatus, FileChange};
use maud::{Markup, PreEscaped, html};

use crate::markup::diff::{self, RowKind};

/// Rows of all files of one page together; past it files are listed without rows.
pub(crate) const MAX_DIFF_ROWS: usize = 10_000;

fn status_word(status: ChangeStatus) -> &'static str {
    match status {
        ChangeStatus::Added => "added",
        ChangeStatus::Modified => "modified",
        ChangeStatus::Removed => "removed",
        ChangeStatus::Renamed => "renamed",
    }
}

/// `changes` as diff tables, with a summary line.
pub(crate) fn diff_view(changes: &[FileChange]) -> Markup {
    let additions: usize = changes.iter().map(|c| c.additions).sum();
    let deletions: usize = changes.iter().map(|c| c.deletions).sum();
    let mut rows_left = MAX_DIFF_ROWS;
    let mut cut_any = false;
    let files: Vec<_> = changes
        .iter()
        .map(|change| {
            let (rows, cut) = match change.patch.as_deref() {
                Some(patch) if rows_left > 0 => diff::parse(patch, rows_left),
                _ => (Vec::new(), change.patch.is_some()),
            };
            rows_left = rows_left.saturating_sub(rows.len());
            cut_any |= cut;
            let html = diff::highlight_rows(&change.path, &rows);
            (change, rows, html)
        })
        .collect();
    html! {
        section #diff aria-label="Changes" {
            p.meta { (changes.len()) " changed files with " (additions) " additions and " (deletions) " deletions" }
            @for (change, rows, html) in &files {
                div.file.box {
                    div.box-header {
                        span.file-name {
                            @if let Some(old) = &change.previous_path { (old) " → " }
                            (change.path)
                        }
                        span.meta { (status_word(change.status)) " +" (change.additions) " −" (change.deletions) }
                    }
                    @if rows.is_empty() {
                        p.notice {
                            @if change.patch.is_some() { "Diff not shown: this page already shows as much as it can." }
                            @else { "No diff shown: the file is binary, has no changed lines, or changes more than 3,000 lines or 1 MiB." }
                        }
                    } @else {
                        div.box-body style="padding: 0" {
                            table.diff {
                                @for (row, text) in rows.iter().zip(html.iter()) {
                                    @let (class, sign) = match row.kind {
                                        RowKind::Hunk => ("hunk", ""),
                                        RowKind::Added => ("add", "+"),
                                        RowKind::Removed => ("del", "-"),
                                        RowKind::Context => ("ctx", " "),
                                        RowKind::NoNewline => ("ctx", "\\"),
                                    };
                                    tr class=(class) {
                                        td.num { @if let Some(n) = row.old { (n) } }
                                        td.num { @if let Some(n) = row.new { (n) } }
                                        td { (sign) (PreEscaped(text)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if cut_any { p.diff-truncated.notice { "This diff is too large to show in full. Clone the repository to see all of it." } }
        }
    }
}
