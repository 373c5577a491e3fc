//! Turning user-supplied text into safe HTML: GitHub-flavoured Markdown, sanitised
//! ([`markdown`]), source files with syntax highlighting ([`highlight`]), and unified
//! patches as rows of a diff table ([`diff`]).
//!
//! Everything here is a pure function of its input (no I/O, no configuration) and
//! bounded in time by the input's size, so pages can call it while rendering.

#[doc(hidden)]
pub mod adversarial;
pub mod diff;
pub mod highlight;
pub mod markdown;

/// Appends `text` to `out` with `& < > " '` escaped: safe in element content and in
/// quoted attribute values alike.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    let mut last = 0;
    for (at, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(text.get(last..at).unwrap_or(""));
        out.push_str(entity);
        last = at + 1;
    }
    out.push_str(text.get(last..).unwrap_or(""));
}
