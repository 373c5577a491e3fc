//! Line diffs of two blobs: numstat's counts and GitHub's `patch` (git's hunks with
//! their context and function names), on git's Myers diff through gix's copy of
//! imara-diff. Kept apart from `browse.rs` (walking objects) because it is pure text
//! work on two byte slices.

use gix::diff::blob::{Algorithm, Diff, Hunk, InternedInput, Token};

/// Lines added and removed from `old` to `new`, as git's numstat counts them (git's
/// Myers diff, through gix's copy of imara-diff).
pub fn line_changes(old: &[u8], new: &[u8]) -> (usize, usize) {
    let diff = LineDiff::new(old, new);
    (diff.additions(), diff.deletions())
}

/// The unified diff of two texts (without its file header), `context` lines around
/// each change, as `git diff` prints its hunks: GitHub's `patch`.
pub fn unified_patch(old: &[u8], new: &[u8], context: usize) -> String {
    LineDiff::new(old, new).patch(context)
}

/// A line diff of two texts. Its memory is a few words per line of either side, which
/// is why callers bound the sides' sizes first.
pub(super) struct LineDiff<'a> {
    input: InternedInput<&'a [u8]>,
    diff: Diff,
}

impl<'a> LineDiff<'a> {
    pub(super) fn new(old: &'a [u8], new: &'a [u8]) -> LineDiff<'a> {
        let input = InternedInput::new(old, new);
        let mut diff = Diff::compute(Algorithm::Myers, &input);
        // git's indent heuristic (on by default since git 2.14) slides each change
        // to where a person would put it; counts are unaffected.
        diff.postprocess_lines(&input);
        LineDiff { input, diff }
    }

    pub(super) fn additions(&self) -> usize {
        self.diff.count_additions() as usize
    }

    pub(super) fn deletions(&self) -> usize {
        self.diff.count_removals() as usize
    }

    fn line(&self, token: Token) -> &[u8] {
        self.input.interner[token]
    }

    fn before(&self, at: usize) -> &[u8] {
        self.input.before.get(at).map_or(&[][..], |t| self.line(*t))
    }

    /// git's hunks: changes closer than two contexts apart share one hunk; each hunk
    /// header names the nearest preceding line that starts with a letter, `_` or `$`
    /// (git's default function-name rule), as `git diff` and GitHub show it.
    pub(super) fn patch(&self, context: usize) -> String {
        let hunks: Vec<Hunk> = self.diff.hunks().collect();
        let (old_len, new_len) = (self.input.before.len(), self.input.after.len());
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(first) = hunks.get(i) {
            // The hunks that join this one.
            let mut last = i;
            while let Some(next) = hunks.get(last + 1) {
                let end = hunks.get(last).map_or(0, |h| h.before.end as usize);
                if (next.before.start as usize).saturating_sub(end) > 2 * context {
                    break;
                }
                last += 1;
            }
            let lead = context.min(first.before.start as usize);
            let old_start = (first.before.start as usize).saturating_sub(lead);
            let new_start = (first.after.start as usize).saturating_sub(lead);
            let tail_end = hunks.get(last).map_or((0, 0), |h| {
                let old_end = (h.before.end as usize + context).min(old_len);
                (
                    old_end,
                    h.after.end as usize + old_end.saturating_sub(h.before.end as usize),
                )
            });
            let (old_end, new_end) = (tail_end.0, tail_end.1.min(new_len));
            out.extend_from_slice(
                format!(
                    "@@ -{} +{} @@",
                    hunk_range(old_start, old_end.saturating_sub(old_start)),
                    hunk_range(new_start, new_end.saturating_sub(new_start))
                )
                .as_bytes(),
            );
            if let Some(name) = self.function_name(old_start) {
                out.push(b' ');
                out.extend_from_slice(name);
            }
            out.push(b'\n');
            let mut at = old_start;
            for hunk in hunks.get(i..=last).unwrap_or(&[]) {
                while at < hunk.before.start as usize {
                    push_line(&mut out, b' ', self.before(at));
                    at += 1;
                }
                for token in self.range(&self.input.before, &hunk.before) {
                    push_line(&mut out, b'-', self.line(*token));
                }
                for token in self.range(&self.input.after, &hunk.after) {
                    push_line(&mut out, b'+', self.line(*token));
                }
                at = hunk.before.end as usize;
            }
            while at < old_end {
                push_line(&mut out, b' ', self.before(at));
                at += 1;
            }
            i = last + 1;
        }
        // A patch ends without a newline in GitHub's JSON.
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn range<'t>(&self, tokens: &'t [Token], range: &std::ops::Range<u32>) -> &'t [Token] {
        tokens
            .get(range.start as usize..range.end as usize)
            .unwrap_or(&[])
    }

    /// git's default `funcname`: the closest line before `start` (0-based, old side)
    /// that begins with a letter, `_` or `$`, trailing whitespace removed, at most 80
    /// bytes.
    fn function_name(&self, start: usize) -> Option<&[u8]> {
        (0..start).rev().find_map(|at| {
            let line = self.before(at);
            let first = *line.first()?;
            if !(first.is_ascii_alphabetic() || first == b'_' || first == b'$') {
                return None;
            }
            let line = line.get(..line.len().min(80)).unwrap_or(line);
            Some(line.trim_ascii_end())
        })
    }
}

/// A hunk header's range: `start,len`, git's way (`start` alone for one line; the line
/// before, and `,0`, for none).
fn hunk_range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        n => format!("{},{n}", start + 1),
    }
}

/// One patch line; a last line without a newline gets git's marker.
fn push_line(out: &mut Vec<u8>, prefix: u8, line: &[u8]) {
    out.push(prefix);
    out.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        out.extend_from_slice(b"\n\\ No newline at end of file\n");
    }
}
