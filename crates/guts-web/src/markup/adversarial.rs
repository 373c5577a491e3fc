//! Adversarial Markdown: inputs at the size cap built to make a parser or a sanitiser
//! slow (deep nesting, unclosed emphasis and links, entities, autolinks). The tests
//! check that each renders safe; the `markup_timing` example times them in release.

use super::markdown::MAX_MARKDOWN_BYTES;

/// Each input with its name.
pub fn markdown_inputs() -> Vec<(&'static str, String)> {
    let n = MAX_MARKDOWN_BYTES;
    vec![
        ("nested blockquotes", ">".repeat(n)),
        ("nested blockquotes, spaced", "> ".repeat(n / 2)),
        (
            "nested lists",
            (0..n / 64)
                .map(|d| format!("{}- x\n", "  ".repeat(d % 30)))
                .collect(),
        ),
        ("open emphasis", "*a ".repeat(n / 3)),
        ("mixed emphasis", "*_**__a".repeat(n / 7)),
        ("closing emphasis", "a* ".repeat(n / 3)),
        ("open brackets", "[".repeat(n)),
        ("link openers", "[a](".repeat(n / 4)),
        ("image openers", "![".repeat(n / 2)),
        (
            "backticks",
            (1..)
                .map(|k| "`".repeat(k % 64) + "a")
                .take(n / 34)
                .collect(),
        ),
        ("html tags", "<div>".repeat(n / 5)),
        ("nested inline html", "<b><i>".repeat(n / 6)),
        (
            "table cells",
            format!("|a|\n|-|\n{}", "|x".repeat(n / 2 - 8)),
        ),
        ("autolinks", "www.a.b ".repeat(n / 8)),
        ("entities", "&amp;".repeat(n / 5)),
    ]
}
