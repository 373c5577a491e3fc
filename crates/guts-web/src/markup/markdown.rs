//! GitHub-flavoured Markdown to HTML that is safe to put in a page.
//!
//! Two steps, each doing what it is good at: comrak parses GFM (tables, task lists,
//! strikethrough, autolinks, footnotes) and renders raw HTML through unchanged, so that
//! READMEs keep their `<details>` and `<img width=…>`; ammonia then parses the result
//! as a browser would and keeps only an allowlist of tags, attributes, classes and URL
//! schemes. Safety therefore rests on ammonia alone, whatever comrak lets through.
//!
//! Element ids (headings' anchors, footnotes) get a `user-content-` prefix so that a
//! document cannot take over the ids of the page around it; in-page links (`#name`)
//! get the same prefix so they still land.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use comrak::nodes::NodeValue;
use comrak::{Arena, Options, format_html, markdown_to_html, parse_document};

use super::escape_into;

#[cfg(test)]
mod tests;

/// The largest input rendered as Markdown. Past it the text is shown escaped, cut at
/// this size: a bound on the input is the bound on a page's render time. Measured in
/// release on a shared 2-core machine, the worst inputs found (256 KiB of bare `www.`
/// autolinks or of `*_**__a`) take 65-85 ms here and twice that at 512 KiB, while a
/// 100 KiB README takes about 5 ms.
pub const MAX_MARKDOWN_BYTES: usize = 256 * 1024;

/// The prefix of every id in rendered documents.
const ID_PREFIX: &str = "user-content-";

/// Where a repository file's relative Markdown links and images point, as on GitHub:
/// a link to the blob view, an image to the raw download, each of the document's
/// directory at its ref (`/o/r/blob/main/docs`, `/o/r/raw/main/docs`).
#[derive(Debug, Clone, Copy)]
pub struct Base<'a> {
    pub links: &'a str,
    pub images: &'a str,
}

/// Renders GitHub-flavoured Markdown as sanitised HTML (a fragment: block elements,
/// no `<html>` or `<body>`).
pub fn render(text: &str) -> String {
    render_with(text, None)
}

/// [`render`] for a file of a repository: relative link targets and image sources of
/// its Markdown are resolved against `base` (raw HTML in it is left as written).
pub fn render_at(text: &str, base: Base<'_>) -> String {
    render_with(text, Some(base))
}

fn render_with(text: &str, base: Option<Base<'_>>) -> String {
    if text.len() > MAX_MARKDOWN_BYTES {
        return too_large(text);
    }
    if quotes_deeper_than(text, MAX_DEPTH) {
        return too_deep(text);
    }
    let html = to_html(text, base);
    if nests_deeper_than(&html, MAX_DEPTH) {
        return too_deep(text);
    }
    SANITIZER.clean(&html).to_string()
}

/// comrak's HTML for `text`, relative links and images rebased on `base` when given.
fn to_html(text: &str, base: Option<Base<'_>>) -> String {
    let options = options();
    let Some(base) = base else {
        return markdown_to_html(text, &options);
    };
    let arena = Arena::new();
    let root = parse_document(&arena, text, &options);
    for node in root.descendants() {
        match &mut node.data_mut().value {
            NodeValue::Link(link) => rebase(&mut link.url, base.links),
            NodeValue::Image(link) => rebase(&mut link.url, base.images),
            _ => {}
        }
    }
    let mut html = String::new();
    // Writing to a `String` cannot fail.
    let _ = format_html(root, &options, &mut html);
    html
}

/// Prefixes `url` with `prefix` when it is relative to the document: not empty, not an
/// in-page `#anchor`, not rooted (`/…`), and without a scheme (`https:`, `mailto:`).
fn rebase(url: &mut String, prefix: &str) {
    let before_path = url.split(['/', '?', '#']).next().unwrap_or_default();
    if url.is_empty() || url.starts_with(['#', '/']) || before_path.contains(':') {
        return;
    }
    let relative = url.trim_start_matches("./");
    *url = format!("{}/{relative}", prefix.trim_end_matches('/'));
}

/// How deeply rendered elements may nest. The sanitiser's HTML parser (html5ever, as
/// a browser's) looks through the open elements for each new one, so its time grows
/// with depth times size: 64 KiB of `>` (65,000 nested quotes) took 17 s there. Real
/// documents nest a few levels; ones past this bound are shown as text.
const MAX_DEPTH: usize = 64;

/// Elements that never hold content, so never deepen the tree.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// Whether the elements of `html` may nest deeper than `limit`: every start tag but a
/// void one opens an element and every end tag closes one. Implied end tags, which
/// would make the tree shallower, are not modelled, so the answer errs towards yes.
fn nests_deeper_than(html: &str, limit: usize) -> bool {
    let b = html.as_bytes();
    let mut depth = 0usize;
    let mut from = 0;
    while let Some(at) = b
        .get(from..)
        .and_then(|rest| rest.iter().position(|c| *c == b'<'))
    {
        let at = from + at;
        from = at + 1;
        match b.get(at + 1) {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(c) if c.is_ascii_alphabetic() => {
                let name = b.get(at + 1..).unwrap_or_default();
                let len = name
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .count();
                let name = name.get(..len).unwrap_or_default();
                if !VOID.iter().any(|v| v.as_bytes().eq_ignore_ascii_case(name)) {
                    depth += 1;
                    if depth > limit {
                        return true;
                    }
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether a line of `text` opens more than `limit` block quotes (`> > > …`): caught
/// before parsing, as comrak spends a large multiple of such a line's length on it.
fn quotes_deeper_than(text: &str, limit: usize) -> bool {
    text.lines().any(|line| {
        line.bytes()
            .take_while(|c| matches!(c, b'>' | b' ' | b'\t'))
            .filter(|c| *c == b'>')
            .count()
            > limit
    })
}

fn too_deep(text: &str) -> String {
    as_text(
        text,
        "This document is nested too deeply to render; it is shown as plain text.",
    )
}

fn too_large(text: &str) -> String {
    as_text(
        text,
        "This document is too large to render (over 256 KiB); its beginning is shown as plain text.",
    )
}

/// A notice and the input (at most [`MAX_MARKDOWN_BYTES`] of it) as preformatted text.
fn as_text(text: &str, notice: &str) -> String {
    let mut cut = MAX_MARKDOWN_BYTES.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut html = String::with_capacity(cut + cut / 8 + 200);
    html.push_str("<p class=\"markup-notice\">");
    escape_into(&mut html, notice);
    html.push_str("</p>\n<pre class=\"markup-raw\">");
    escape_into(&mut html, text.get(..cut).unwrap_or(""));
    html.push_str("</pre>\n");
    html
}

/// GFM as GitHub renders it, with raw HTML passed through for the sanitiser.
fn options() -> Options<'static> {
    let mut options = Options::default();
    options.extension.strikethrough = true;
    options.extension.table = true;
    options.extension.autolink = true;
    options.extension.tasklist = true;
    options.extension.footnotes = true;
    options.extension.header_id_prefix = Some(String::new());
    // Safe only because every output goes through SANITIZER.
    options.render.r#unsafe = true;
    // `<pre lang="rust">` rather than `class="language-rust"`: the sanitiser keeps
    // `lang` without allowing classes it cannot list.
    options.render.github_pre_lang = true;
    options.render.tasklist_classes = true;
    options
}

/// The tags Markdown produces, and the harmless ones READMEs write by hand.
const TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "input",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "q",
    "rp",
    "rt",
    "ruby",
    "s",
    "samp",
    "section",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
];

/// Tags dropped with everything inside them: their content is code or a document of
/// its own, never text meant for the reader.
const DROPPED: &[&str] = &[
    "iframe", "math", "noembed", "noframes", "noscript", "object", "script", "style", "svg",
    "template", "textarea", "title", "xmp",
];

/// Attributes per tag; everything else (event handlers, `style`, `srcdoc`, …) goes.
const ATTRIBUTES: &[(&str, &[&str])] = &[
    ("a", &["href", "aria-label"]),
    ("img", &["src", "alt", "width", "height", "align"]),
    ("input", &["checked"]),
    ("ol", &["start"]),
    ("pre", &["lang"]),
    ("td", &["align", "colspan", "rowspan"]),
    ("th", &["align", "colspan", "rowspan"]),
    ("div", &["align"]),
    ("p", &["align"]),
    ("h1", &["align"]),
    ("h2", &["align"]),
    ("h3", &["align"]),
    ("details", &["open"]),
];

/// Classes comrak sets for task lists, footnotes and heading anchors.
const CLASSES: &[(&str, &[&str])] = &[
    ("a", &["anchor", "footnote-backref"]),
    ("input", &["task-list-item-checkbox"]),
    ("li", &["task-list-item"]),
    ("ul", &["contains-task-list"]),
    ("ol", &["contains-task-list"]),
    ("section", &["footnotes"]),
    ("sup", &["footnote-ref"]),
];

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::default();
    builder
        .tags(TAGS.iter().copied().collect())
        .clean_content_tags(DROPPED.iter().copied().collect())
        .generic_attributes(HashSet::from(["id", "lang", "title"]))
        .tag_attributes(
            ATTRIBUTES
                .iter()
                .map(|(tag, attrs)| (*tag, attrs.iter().copied().collect()))
                .collect::<HashMap<_, HashSet<_>>>(),
        )
        .allowed_classes(
            CLASSES
                .iter()
                .map(|(tag, classes)| (*tag, classes.iter().copied().collect()))
                .collect::<HashMap<_, HashSet<_>>>(),
        )
        // A task list's box is shown, never used: whatever a document writes, an
        // `<input>` becomes a disabled checkbox.
        .set_tag_attribute_value("input", "type", "checkbox")
        .set_tag_attribute_value("input", "disabled", "")
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some("nofollow noopener noreferrer"))
        .id_prefix(Some(ID_PREFIX))
        .attribute_filter(|_element, attribute, value| match attribute {
            "href" => Some(prefix_fragment(value)),
            // A code block's language comes from its info string, free text: keep it
            // only when it looks like a language name.
            "lang" => is_language_name(value).then_some(Cow::Borrowed(value)),
            _ => Some(Cow::Borrowed(value)),
        });
    builder
});

/// `#name` → `#user-content-name`, matching the prefixed ids; other URLs unchanged.
fn prefix_fragment(href: &str) -> Cow<'_, str> {
    match href.strip_prefix('#') {
        Some(name) if !name.starts_with(ID_PREFIX) => Cow::Owned(format!("#{ID_PREFIX}{name}")),
        _ => Cow::Borrowed(href),
    }
}

fn is_language_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+#._-".contains(&c))
}
