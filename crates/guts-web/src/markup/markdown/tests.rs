//! Markdown rendering: GFM renders, nothing executable survives, big inputs stay cheap.

use proptest::prelude::*;

use super::{MAX_MARKDOWN_BYTES, TAGS, render};

/// Attributes the sanitiser may leave (`rel` and `class` it sets itself).
const ATTRIBUTES: &[&str] = &[
    "align",
    "alt",
    "aria-label",
    "checked",
    "class",
    "colspan",
    "disabled",
    "height",
    "href",
    "id",
    "lang",
    "open",
    "rel",
    "rowspan",
    "src",
    "start",
    "title",
    "type",
    "width",
];

/// Checks every tag of `html`: an allowed name, allowed attributes, no URL with a
/// scheme other than http, https or mailto. Text between tags holds no `<` by
/// construction (every `<` starts a tag here).
fn assert_safe(html: &str) {
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let closing = rest.starts_with('/');
        let body = rest.trim_start_matches('/');
        let name_end = body
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .unwrap_or(body.len());
        let name = &body[..name_end];
        assert!(
            TAGS.contains(&name) || (!closing && name == "pre") || name == "p",
            "tag {name:?} in {html}"
        );
        // Attributes: name="value" pairs up to the tag's end (html5ever always quotes).
        let mut attrs = &body[name_end..];
        loop {
            attrs = attrs.trim_start();
            if let Some(after) = attrs.strip_prefix("/>").or_else(|| attrs.strip_prefix('>')) {
                rest = after;
                break;
            }
            let end = attrs
                .find(|c: char| c == '=' || c == '>' || c.is_ascii_whitespace())
                .unwrap_or(attrs.len());
            let attr = &attrs[..end];
            assert!(ATTRIBUTES.contains(&attr), "attribute {attr:?} in {html}");
            attrs = &attrs[end..];
            if let Some(after) = attrs.strip_prefix("=\"") {
                let close = after.find('"').unwrap();
                let value = after[..close].to_ascii_lowercase();
                // Other attributes (title, alt) are text; only URLs are followed.
                if attr == "href" || attr == "src" {
                    let scheme = scheme(&value);
                    assert!(
                        scheme.is_none()
                            || matches!(scheme.as_deref(), Some("http" | "https" | "mailto")),
                        "url {value:?} in {html}"
                    );
                }
                attrs = &after[close + 1..];
            }
        }
    }
}

/// A URL's scheme as a browser reads it (leading spaces and controls skipped, tabs
/// and newlines ignored), or `None` for a relative URL.
fn scheme(url: &str) -> Option<String> {
    let cleaned: String = url
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let (scheme, _) = cleaned.split_once(':')?;
    let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then(|| scheme.to_ascii_lowercase())
}

const ATTACKS: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](java&#115;cript:alert(1))",
    "[x](  javascript:alert(1) \"t\")",
    "![x](javascript:alert(1))",
    "[x]: javascript:alert(1)\n\n[x]",
    "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
    "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    "<svg onload=alert(1)><circle/></svg>",
    "<iframe src=\"https://evil.example\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\">",
    "<style>body{display:none}</style>",
    "<form action=\"https://evil.example\"><input name=p type=password><button>go</button></form>",
    "<javascript:alert(1)>",
    "<div style=\"position:fixed\" onclick=\"alert(1)\">x</div>",
    "<details open ontoggle=alert(1)><summary>s</summary>x</details>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<object data=\"x.swf\"></object><embed src=\"x.swf\">",
    "<meta http-equiv=refresh content=\"0;url=https://evil.example\">",
    "<base href=\"https://evil.example/\">",
    "```\n</code></pre><script>alert(1)</script>\n```",
    "`<script>alert(1)</script>`",
];

#[test]
fn attacks_leave_nothing_executable() {
    for attack in ATTACKS {
        let html = render(attack);
        assert_safe(&html);
        let lower = html.to_ascii_lowercase();
        for bad in [
            "<script", "onerror", "onload", "onclick", "ontoggle", "<iframe", "<style", "<form",
            "<svg", "<math", "<meta", "<base", "<object", "<embed", "style=",
        ] {
            assert!(!lower.contains(bad), "{bad} survives {attack:?}: {html}");
        }
        // `javascript:` may remain as visible text (an autolink's label), never in a URL.
        assert!(
            !lower.contains("href=\"javascript") && !lower.contains("src=\"javascript"),
            "{html}"
        );
    }
    // An autolink to a javascript: URL keeps its text and loses its link.
    let html = render("<javascript:alert(1)>");
    assert!(!html.contains("href"), "{html}");
}

/// The `<input …>` tags of `html`.
fn inputs(html: &str) -> Vec<&str> {
    html.match_indices("<input")
        .map(|(at, _)| &html[at..at + html[at..].find('>').unwrap() + 1])
        .collect()
}

#[test]
fn gfm_renders() {
    let html = render(
        "# Title\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n\n- [x] done\n- [ ] todo\n\n```rust\nfn main() {}\n```\n\n~~old~~ and https://example.com and [rel](docs/a.md) and <mailto:a@b.c>\n\nNote[^1].\n\n[^1]: The note.\n\n<details><summary>More</summary>\n\nHidden *text*.\n\n</details>\n",
    );
    assert_safe(&html);
    for want in [
        "<h1 id=\"user-content-title\">",
        "<a href=\"#user-content-title\"",
        "<table>",
        "<th align=\"left\">a</th>",
        "<td align=\"right\">2</td>",
        "<pre lang=\"rust\"><code>fn main() {}",
        "<del>old</del>",
        "<a href=\"https://example.com\" rel=\"nofollow noopener noreferrer\">https://example.com</a>",
        "<a href=\"docs/a.md\" rel=\"nofollow noopener noreferrer\">rel</a>",
        "href=\"mailto:a@b.c\"",
        "<details><summary>More</summary>",
        "<em>text</em>",
        "href=\"#user-content-fn-1\"",
        "id=\"user-content-fn-1\"",
        "class=\"footnotes\"",
    ] {
        assert!(html.contains(want), "{want:?} missing from {html}");
    }
    // Unchecked boxes are disabled too; a hand-written input becomes one.
    let boxes = inputs(&html);
    assert_eq!(boxes.len(), 2, "{html}");
    assert!(
        boxes
            .iter()
            .all(|b| b.contains("type=\"checkbox\"") && b.contains("disabled=\"\""))
    );
    assert!(boxes[0].contains("checked") && !boxes[1].contains("checked"));
    let input = render("<input type=\"text\" value=\"x\" name=\"n\">");
    assert_safe(&input);
    assert!(
        inputs(&input) == ["<input disabled=\"\" type=\"checkbox\">"]
            || inputs(&input) == ["<input type=\"checkbox\" disabled=\"\">"]
                && !input.contains("text")
                && !input.contains("name="),
        "{input}"
    );
}

#[test]
fn deep_nesting_is_shown_as_text() {
    let quotes = render("> > quoted twice");
    assert_eq!(quotes.matches("<blockquote>").count(), 2, "{quotes}");
    for deep in [
        ">".repeat(65),
        "> ".repeat(100),
        "<div>".repeat(65) + "x",
        (0..70)
            .map(|d| format!("{}- x\n", "  ".repeat(d)))
            .collect::<String>(),
    ] {
        let html = render(&deep);
        assert!(html.contains("nested too deeply"), "{html}");
        assert!(
            !html.contains("<div") && !html.contains("<blockquote"),
            "{html}"
        );
    }
    let fine = render(&"<div>".repeat(20));
    assert!(!fine.contains("nested too deeply"));
}

#[test]
fn oversized_input_is_escaped_text_with_a_notice() {
    let mut text = "<script>alert(1)</script> é\n".repeat(MAX_MARKDOWN_BYTES / 10);
    text.push('€');
    assert!(text.len() > MAX_MARKDOWN_BYTES);
    let html = render(&text);
    assert!(html.contains("too large to render"));
    assert!(!html.contains("<script"));
    assert!(html.contains("&lt;script&gt;"));
    assert!(html.len() < MAX_MARKDOWN_BYTES * 2);
}

/// Inputs that make naive Markdown parsers quadratic or recursion-deep, at the cap's
/// size: each renders within the bound even in a debug build (comrak and ammonia are
/// dependencies, built optimised).
/// The adversarial inputs render to safe HTML (their time is measured by the
/// `markup_timing` example, not asserted here).
#[test]
fn pathological_inputs_render_safely() {
    for (name, text) in crate::markup::adversarial::markdown_inputs() {
        assert!(text.len() <= MAX_MARKDOWN_BYTES, "{name}");
        let html = render(&text);
        assert!(!html.contains("<script"), "{name}");
        assert!(!html.is_empty(), "{name}");
    }
}

/// Text dense in Markdown and HTML syntax, with the attacks mixed in.
fn markdown_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(ATTACKS).prop_map(str::to_owned),
        prop::sample::select(
            &[
                "<a href=",
                "<img src=",
                " on",
                "error=",
                "javascript:",
                "JaVaScRiPt:",
                "&#106;",
                "data:",
                "\"",
                "'",
                "`",
                "```",
                "[",
                "](",
                ")",
                "![",
                "<",
                ">",
                "</",
                "*",
                "_",
                "~~",
                "|",
                "-",
                "\n",
                "\n\n",
                "> ",
                "- [ ] ",
                "http://",
                "www.",
                "<details>",
                "<summary>",
                "<input ",
                "type=",
                "style=",
                "&",
                "#",
                "[^1]",
                "[^1]: ",
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-z <>=\"'/:]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rendered_markdown_is_always_safe(text in markdown_text()) {
        let html = render(&text);
        assert_safe(&html);
        let lower = html.to_ascii_lowercase();
        prop_assert!(!lower.contains("<script") && !lower.contains("<iframe") && !lower.contains("<style"));
    }
}

#[test]
fn relative_links_and_images_resolve_against_the_base() {
    let base = super::Base {
        links: "/o/r/blob/main/docs",
        images: "/o/r/raw/main/docs/",
    };
    let html = super::render_at(
        "[guide](guide.md) [up](../LICENSE) [here](./x.md#part) [top](#intro) \
         [abs](/o/r/issues) [web](https://example.com/a) [mail](mailto:a@b.c) \
         [js](javascript:alert(1)) ![logo](img/logo.png) ![remote](https://e.x/i.png)",
        base,
    );
    for wanted in [
        "href=\"/o/r/blob/main/docs/guide.md\"",
        "href=\"/o/r/blob/main/docs/../LICENSE\"",
        "href=\"/o/r/blob/main/docs/x.md#part\"",
        "href=\"#user-content-intro\"",
        "href=\"/o/r/issues\"",
        "href=\"https://example.com/a\"",
        "href=\"mailto:a@b.c\"",
        "src=\"/o/r/raw/main/docs/img/logo.png\"",
        "src=\"https://e.x/i.png\"",
    ] {
        assert!(html.contains(wanted), "{wanted} in {html}");
    }
    assert!(!html.to_ascii_lowercase().contains("javascript:"), "{html}");
    // Without a base, relative URLs stay as written.
    assert!(render("[g](guide.md)").contains("href=\"guide.md\""));
}
