//! The highlighter's tests: word lists, each language's tricky constructs, and the
//! properties every output keeps (escaped, balanced per line, lossless).

use proptest::prelude::*;

use super::langs::{ALL, Syntax, detect};
use super::{Highlighter, highlight, language};

const CLASSES: &[&str] = &[
    "hl-k", "hl-t", "hl-s", "hl-c", "hl-n", "hl-f", "hl-m", "hl-a",
];

/// The text of a fragment, unescaped, after checking that its only markup is balanced
/// `<span class="hl-…">` … `</span>` and that its text has nothing left unescaped.
pub(crate) fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut depth = 0usize;
    let mut rest = html;
    while let Some(at) = rest.find(['<', '&']) {
        let plain = &rest[..at];
        assert!(!plain.contains(['>', '"', '\'']), "unescaped in {html:?}");
        text.push_str(plain);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("</span>") {
            assert!(depth > 0, "unbalanced {html:?}");
            depth -= 1;
            rest = after;
        } else if let Some(after) = rest.strip_prefix("<span class=\"") {
            let end = after.find("\">").unwrap();
            assert!(CLASSES.contains(&&after[..end]), "class in {html:?}");
            depth += 1;
            rest = &after[end + 2..];
        } else {
            let (entity, ch) = [
                ("&amp;", '&'),
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
                ("&#39;", '\''),
            ]
            .into_iter()
            .find(|(e, _)| rest.starts_with(e))
            .unwrap_or_else(|| panic!("stray markup in {html:?}"));
            text.push(ch);
            rest = &rest[entity.len()..];
        }
    }
    assert!(!rest.contains(['>', '"', '\'']), "unescaped in {html:?}");
    text.push_str(rest);
    assert_eq!(depth, 0, "unbalanced {html:?}");
    text
}

/// The (class, text) spans of a fragment, for readable expectations.
fn spans(html: &str) -> Vec<(String, String)> {
    html.split("<span class=\"")
        .skip(1)
        .map(|s| {
            let (class, rest) = s.split_once("\">").unwrap();
            let inner = rest.split_once("</span>").unwrap().0;
            (class.to_owned(), text_of(inner))
        })
        .collect()
}

fn has(html: &str, class: &str, text: &str) -> bool {
    spans(html).iter().any(|(c, t)| c == class && t == text)
}

#[test]
fn word_lists_are_sorted_for_binary_search() {
    for lang in ALL {
        for list in [lang.keywords, lang.types, lang.literals] {
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "{}: {list:?}",
                lang.name
            );
            if lang.case_insensitive {
                assert!(list.iter().all(|w| *w == w.to_lowercase()), "{}", lang.name);
            }
        }
    }
}

#[test]
fn languages_come_from_names_and_extensions() {
    assert_eq!(language("src/main.rs"), Some("Rust"));
    assert_eq!(language("a/b/Makefile"), Some("Makefile"));
    assert_eq!(language("Dockerfile"), Some("Dockerfile"));
    assert_eq!(language("x/INCLUDE.H"), Some("C/C++"));
    assert_eq!(language("web/app.tsx"), Some("JavaScript/TypeScript"));
    assert_eq!(language("index.html"), Some("HTML/XML"));
    assert_eq!(language("README.md"), None);
    assert_eq!(language("LICENSE"), None);
    assert!(matches!(detect("weird.unknownext"), Syntax::Plain));
}

#[test]
fn rust_tokens() {
    let lines = highlight(
        "lib.rs",
        "#[derive(Debug)]\npub fn f<'a>(x: &'a str) -> u32 { let c = '\\n'; 0x1F + 1.5e-3 } // done\nprintln!(\"{}\\\"\", Foo::BAR);",
    );
    assert_eq!(lines.len(), 3);
    assert!(has(&lines[0], "hl-m", "#[derive"));
    assert!(has(&lines[1], "hl-k", "pub"));
    assert!(has(&lines[1], "hl-k", "fn"));
    assert!(has(&lines[1], "hl-t", "'a"));
    assert!(has(&lines[1], "hl-t", "u32"));
    assert!(has(&lines[1], "hl-s", "'\\n'"));
    assert!(has(&lines[1], "hl-n", "0x1F"));
    assert!(has(&lines[1], "hl-n", "1.5e-3"));
    assert!(has(&lines[1], "hl-c", "// done"));
    assert!(has(&lines[2], "hl-f", "println"));
    assert!(has(&lines[2], "hl-s", "\"{}\\\"\""));
    assert!(has(&lines[2], "hl-t", "Foo"));
}

#[test]
fn multi_line_constructs_carry_over_and_close_per_line() {
    let rust = highlight(
        "a.rs",
        "let s = r#\"one \"quoted\"\ntwo\"#; /* a /* nested */\nstill */ x",
    );
    assert!(has(&rust[0], "hl-s", "r#\"one \"quoted\""));
    assert!(has(&rust[1], "hl-s", "two\"#"));
    assert!(has(&rust[1], "hl-c", "/* a /* nested */"));
    assert!(has(&rust[2], "hl-c", "still */"));
    assert!(!rust[2].ends_with("x</span>"));

    let py = highlight("a.py", "s = f'''a\n# not a comment\n''' # comment");
    assert!(has(&py[0], "hl-s", "f'''a"));
    assert!(has(&py[1], "hl-s", "# not a comment"));
    assert!(has(&py[2], "hl-s", "'''"));
    assert!(has(&py[2], "hl-c", "# comment"));

    let js = highlight("a.js", "const t = `x ${y}\n</script>`; // end");
    assert!(has(&js[0], "hl-s", "`x ${y}"));
    assert!(has(&js[1], "hl-s", "</script>`"));
    assert!(js[1].contains("&lt;/script&gt;"));

    let c = highlight(
        "a.c",
        "#include <stdio.h>\n/* a\n * b */ int main(void) { return \"s\\\n t\"; }",
    );
    assert!(has(&c[0], "hl-m", "#include"));
    assert!(has(&c[1], "hl-c", "/* a"));
    assert!(has(&c[2], "hl-c", " * b */"));
    assert!(has(&c[2], "hl-t", "int"));
    assert!(has(&c[2], "hl-f", "main"));
    // A backslash at the end continues a C string on the next line.
    assert_eq!(
        spans(&c[2]).last().unwrap(),
        &("hl-s".to_owned(), "\"s\\".to_owned())
    );
}

#[test]
fn other_languages() {
    let go = highlight("m.go", "func main() { s := `raw\nline` }");
    assert!(has(&go[0], "hl-k", "func") && has(&go[1], "hl-s", "line`"));
    let sh = highlight("x.sh", "echo \"$HOME\" $# ${x} # note");
    assert!(has(&sh[0], "hl-m", "$#") && has(&sh[0], "hl-m", "${x}"));
    assert!(has(&sh[0], "hl-c", "# note"));
    let toml = highlight("Cargo.toml", "[package]\nname = \"guts\" # c\nok = true");
    assert!(has(&toml[1], "hl-a", "name") && has(&toml[1], "hl-s", "\"guts\""));
    assert!(has(&toml[2], "hl-n", "true"));
    let yaml = highlight("a.yml", "image: nginx:1.2 # c\nit: don't");
    assert!(has(&yaml[0], "hl-a", "image") && !has(&yaml[0], "hl-a", "nginx"));
    assert!(!yaml[1].contains("hl-s"));
    let json = highlight("a.json", "{\"k\": [1, null, \"v\"]}");
    assert!(has(&json[0], "hl-a", "\"k\"") && has(&json[0], "hl-s", "\"v\""));
    let sql = highlight("q.sql", "SELECT id FROM t WHERE x = 'a' -- c");
    assert!(has(&sql[0], "hl-k", "SELECT") && has(&sql[0], "hl-c", "-- c"));
    let html = highlight("i.html", "<a href=\"x\"\n  class='y'>t</a><!-- c\n-->");
    assert!(has(&html[0], "hl-k", "a") && has(&html[0], "hl-a", "href"));
    assert!(has(&html[1], "hl-s", "'y'") && has(&html[1], "hl-c", "<!-- c"));
    assert!(has(&html[2], "hl-c", "-->"));
    let css = highlight("s.css", "@media x { a { color: #fff; } } /* c */");
    assert!(has(&css[0], "hl-m", "@media") && has(&css[0], "hl-a", "color"));
    let make = highlight("Makefile", "all: $(OUT)\nifeq ($(X),1) # c");
    assert!(has(&make[0], "hl-m", "$(OUT)") && has(&make[1], "hl-k", "ifeq"));
    let docker = highlight("Dockerfile", "FROM rust AS build\nRUN echo hi");
    assert!(has(&docker[0], "hl-k", "FROM") && has(&docker[1], "hl-k", "RUN"));
    let rb = highlight("a.rb", "def f; @x = nil; end");
    assert!(has(&rb[0], "hl-k", "def") && has(&rb[0], "hl-m", "@x"));
    let java = highlight("A.java", "@Override public String s() { return \"\"; }");
    assert!(has(&java[0], "hl-m", "@Override") && has(&java[0], "hl-t", "String"));
}

#[test]
fn lines_follow_str_lines_and_keep_carriage_returns() {
    assert!(highlight("a.rs", "").is_empty());
    assert_eq!(highlight("a.rs", "\n"), vec![String::new()]);
    assert_eq!(
        highlight("a.txt", "a\r\nb\n"),
        vec!["a\r".to_owned(), "b".to_owned()]
    );
    assert_eq!(
        highlight("a.txt", "<&>\"'"),
        vec!["&lt;&amp;&gt;&quot;&#39;".to_owned()]
    );
}

#[test]
fn a_line_fed_with_a_newline_stays_balanced() {
    let mut h = Highlighter::for_path("a.rs");
    let html = h.line("/* a\nb */ \"x\ny\"");
    assert_eq!(text_of(&html), "/* a\nb */ \"x\ny\"");
}

const PATHS: &[&str] = &[
    "a.rs",
    "a.c",
    "a.go",
    "a.py",
    "a.ts",
    "A.java",
    "a.sh",
    "a.toml",
    "a.yaml",
    "a.json",
    "a.css",
    "a.sql",
    "a.rb",
    "Makefile",
    "Dockerfile",
    "a.html",
    "a.md",
    "a.unknown",
];

/// Text dense in the bytes the lexers care about, with some non-ASCII.
fn code_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_ \t\n\r\"'`#/*\\\\<>&=!$@{}()\\[\\].:;,+-]{0,300}",
        any::<String>(),
        "([\"'`#/*\\\\rbf]|é|€|😀|\"\"\"|'''|r#\"|\"#|/\\*|\\*/|<!--|-->|\n){0,80}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn highlighting_is_escaped_balanced_and_lossless(path in prop::sample::select(PATHS), text in code_text()) {
        let lines = highlight(path, &text);
        let expected: Vec<&str> = if text.is_empty() {
            Vec::new()
        } else {
            text.strip_suffix('\n').unwrap_or(&text).split('\n').collect()
        };
        prop_assert_eq!(lines.len(), expected.len());
        for (html, line) in lines.iter().zip(expected) {
            prop_assert_eq!(text_of(html), line);
        }
    }
}
