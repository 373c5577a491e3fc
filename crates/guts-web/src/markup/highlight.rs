//! Placeholder until the highlighter lands: every line escaped, no colours.

/// One escaped HTML fragment per line of `text`.
pub fn highlight(_path: &str, text: &str) -> Vec<String> {
    text.lines()
        .map(|l| maud::html! { (l) }.into_string())
        .collect()
}
