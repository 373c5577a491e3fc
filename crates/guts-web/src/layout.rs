//! The page skeleton and URL escaping, without a viewer: what the error pages and the
//! full pages (`page`) both stand on.

use axum::response::Html;
use maud::{DOCTYPE, Markup, html};

/// The stylesheet, compiled into the binary and served at [`CSS_PATH`].
pub(crate) const CSS: &str = include_str!("../static/guts.css");
/// Where [`CSS`] is served (browsers may keep it for an hour).
pub(crate) const CSS_PATH: &str = "/-/guts.css";

/// The HTML document: head with the stylesheet, a skip link, `header`, `main`, footer.
pub(crate) fn document(title: &str, header: Markup, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · Guts" }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (header)
                (main)
                footer.site-footer { p { "Guts: peer-to-peer code collaboration." } }
            }
        }
    }
}

/// A page without a viewer (errors): the site header without a menu.
pub(crate) fn bare(title: &str, main: Markup) -> Html<String> {
    let header = html! {
        header.site-header { nav aria-label="Site" { a #home href="/" { "Guts" } } }
    };
    Html(document(title, header, main).into_string())
}

/// Percent-encodes `text` for a URL path: everything but unreserved characters and `/`.
pub(crate) fn path_escape(text: &str) -> String {
    escape(text, |b| b == b'/')
}

/// Percent-encodes `text` for a query value.
pub(crate) fn query_escape(text: &str) -> String {
    escape(text, |_| false)
}

fn escape(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_escaped() {
        assert_eq!(path_escape("a b/<c>.txt"), "a%20b/%3Cc%3E.txt");
        assert_eq!(query_escape("/o/r?x=1&y"), "%2Fo%2Fr%3Fx%3D1%26y");
        assert_eq!(path_escape("é"), "%C3%A9");
    }
}
