//! Syntax highlighting for the blob view: a small lexer per language, one pass over
//! the text, no regular expressions and no grammar files.
//!
//! The goal is GitHub's look for everyday files, not a parser: a table per language
//! ([`langs`]) says which comments, strings and words are special, and one linear
//! scan ([`Highlighter::line`]) colours them. Constructs that span lines (block
//! comments, Python's triple quotes, Rust's raw strings, JavaScript's template literals,
//! tags across lines in HTML) carry their state to the next line; every line's HTML is
//! still balanced on its own, so the page can put each line in its own table row.
//!
//! All text is HTML-escaped (`& < > " '`); the only markup produced is
//! `<span class="hl-…">` and `</span>`. The classes, for the page's stylesheet:
//!
//! | class  | what |
//! |--------|------|
//! | `hl-k` | keyword (`fn`, `if`, `return`); tag names in HTML/XML |
//! | `hl-t` | type: built-in types (`u32`, `int`), capitalised names, Rust lifetimes |
//! | `hl-s` | string and character literal, escapes included |
//! | `hl-c` | comment |
//! | `hl-n` | number and literal constant (`true`, `null`, `None`) |
//! | `hl-f` | function or macro name at a call or definition (`name(`, `name!`) |
//! | `hl-m` | meta: preprocessor directive, attribute, decorator, `$variable` |
//! | `hl-a` | key or attribute name (`key:` in YAML/JSON, `key =` in TOML, HTML attributes) |
//!
//! Cost: each byte is looked at a bounded number of times, so time is linear in the
//! text's size (see the timing test in `tests.rs`).

mod langs;
#[cfg(test)]
mod tests;

use langs::{HashMeta, Lang, Prefixes, SingleQuote, Syntax};

use super::escape_into;

const KEYWORD: &str = "hl-k";
const TYPE: &str = "hl-t";
const STRING: &str = "hl-s";
const COMMENT: &str = "hl-c";
const NUMBER: &str = "hl-n";
const FUNCTION: &str = "hl-f";
const META: &str = "hl-m";
const KEY: &str = "hl-a";

/// Highlights a whole file: one HTML fragment per line, as [`str::lines`] splits it
/// (a final newline ends the last line rather than starting an empty one; a `\r` before
/// a newline stays in its line's text).
pub fn highlight(path: &str, text: &str) -> Vec<String> {
    let mut highlighter = Highlighter::for_path(path);
    if text.is_empty() {
        return Vec::new();
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.split('\n')
        .map(|line| highlighter.line(line))
        .collect()
}

/// The name of the language a path is highlighted as (`"Rust"`), or `None` when it is
/// shown plain.
pub fn language(path: &str) -> Option<&'static str> {
    match langs::detect(path) {
        Syntax::Plain => None,
        Syntax::Markup => Some("HTML/XML"),
        Syntax::Code(lang) => Some(lang.name),
    }
}

/// A highlighter fed one line at a time, for callers that do not hold the whole text
/// (a diff's lines of one side). It remembers what the previous line left open.
#[derive(Debug, Clone)]
pub struct Highlighter {
    syntax: Syntax,
    carry: Carry,
}

impl Highlighter {
    /// A highlighter for the language of `path` (plain when unknown).
    pub fn for_path(path: &str) -> Highlighter {
        Highlighter {
            syntax: langs::detect(path),
            carry: Carry::None,
        }
    }

    /// The HTML of the next line (`line` holds no `\n`; if it does, the `\n` is treated
    /// as ordinary text and the fragment stays balanced).
    pub fn line(&mut self, line: &str) -> String {
        match self.syntax {
            Syntax::Plain => {
                let mut html = String::with_capacity(line.len() + 8);
                escape_into(&mut html, line);
                html
            }
            Syntax::Markup => markup_line(&mut self.carry, line),
            Syntax::Code(lang) => code_line(lang, &mut self.carry, line),
        }
    }
}

/// How a string ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// At the next unescaped byte (`"`, `'`, `` ` ``).
    Byte(u8),
    /// At three of it in a row (`"""`, `'''`).
    Triple(u8),
    /// At `"` followed by this many `#` (Rust raw strings).
    Raw(u8),
}

/// One kind of string literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StrKind {
    close: Close,
    /// A backslash escapes the next byte (and, at the end of a line, continues the
    /// string on the next one).
    escapes: bool,
    /// The string may run past the end of a line.
    multiline: bool,
}

/// What the previous line left open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carry {
    None,
    /// A block comment, nested this deep.
    Comment(u32),
    Str(StrKind),
    /// Inside an HTML tag, after its name.
    Tag,
    /// Inside a quoted attribute value.
    TagStr(u8),
    /// Inside `<!-- … -->`.
    MarkupComment,
}

/// One line's HTML, built left to right: text between spans is escaped lazily, in one
/// piece, when the next span starts.
struct Out<'a> {
    line: &'a str,
    html: String,
    plain_from: usize,
}

impl<'a> Out<'a> {
    fn new(line: &'a str) -> Out<'a> {
        Out {
            line,
            html: String::with_capacity(line.len() + line.len() / 2 + 16),
            plain_from: 0,
        }
    }

    fn flush(&mut self, upto: usize) {
        if upto > self.plain_from {
            escape_into(
                &mut self.html,
                self.line.get(self.plain_from..upto).unwrap_or(""),
            );
            self.plain_from = upto;
        }
    }

    fn span(&mut self, class: &str, start: usize, end: usize) {
        if end <= start {
            return;
        }
        self.flush(start);
        self.html.push_str("<span class=\"");
        self.html.push_str(class);
        self.html.push_str("\">");
        escape_into(&mut self.html, self.line.get(start..end).unwrap_or(""));
        self.html.push_str("</span>");
        self.plain_from = end;
    }

    fn finish(mut self) -> String {
        self.flush(self.line.len());
        self.html
    }
}

fn starts(b: &[u8], at: usize, pat: &[u8]) -> bool {
    b.get(at..).is_some_and(|rest| rest.starts_with(pat))
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// The end of the word starting at `at`.
fn word_end(lang: &Lang, b: &[u8], at: usize) -> usize {
    let mut j = at;
    while let Some(&c) = b.get(j) {
        if is_word(c)
            || (lang.dash_idents && c == b'-' && b.get(j + 1).is_some_and(|&d| is_word(d)))
        {
            j += 1;
        } else {
            break;
        }
    }
    j
}

/// Scans a string's body from `from`; returns where it ends and whether it is still
/// open at the end of the line.
fn scan_string(b: &[u8], from: usize, kind: StrKind) -> (usize, bool) {
    let n = b.len();
    let mut i = from;
    while let Some(&c) = b.get(i) {
        if kind.escapes && c == b'\\' {
            if i + 1 >= n {
                return (n, true);
            }
            i += 2;
            continue;
        }
        match kind.close {
            Close::Byte(q) if c == q => return (i + 1, false),
            Close::Triple(q) if c == q && starts(b, i, &[q, q, q]) => return (i + 3, false),
            Close::Raw(hashes) if c == b'"' => {
                let end = i + 1 + usize::from(hashes);
                if b.get(i + 1..end)
                    .is_some_and(|h| h.iter().all(|&x| x == b'#'))
                {
                    return (end, false);
                }
            }
            _ => {}
        }
        i += 1;
    }
    (n, kind.multiline)
}

/// Scans a block comment's body from `from`, `depth` levels deep; returns where it
/// ends and the depth still open at the end of the line (0 when closed).
fn scan_comment(lang: &Lang, b: &[u8], from: usize, mut depth: u32) -> (usize, u32) {
    let Some((open, close)) = lang.block_comment else {
        return (b.len(), 0);
    };
    let (open, close) = (open.as_bytes(), close.as_bytes());
    let mut i = from;
    while i < b.len() {
        if starts(b, i, close) {
            depth = depth.saturating_sub(1);
            i += close.len();
            if depth == 0 {
                return (i, 0);
            }
        } else if lang.nested_comments && starts(b, i, open) {
            depth = depth.saturating_add(1);
            i += open.len();
        } else {
            i += 1;
        }
    }
    (b.len(), depth)
}

/// Looks `word` up in a sorted list (lowercased first for case-insensitive languages).
fn lookup(lang: &Lang, list: &[&str], word: &[u8]) -> bool {
    if list.is_empty() {
        return false;
    }
    if lang.case_insensitive {
        let mut buf = [0u8; 24];
        let Some(lower) = buf.get_mut(..word.len()) else {
            return false;
        };
        lower.copy_from_slice(word);
        lower.make_ascii_lowercase();
        list.binary_search_by(|k| k.as_bytes().cmp(lower)).is_ok()
    } else {
        list.binary_search_by(|k| k.as_bytes().cmp(word)).is_ok()
    }
}

fn is_key(lang: &Lang, b: &[u8], end: usize) -> bool {
    let Some(sep) = lang.key_sep else {
        return false;
    };
    let Some(at) = b
        .get(end..)
        .and_then(|rest| rest.iter().position(|c| *c != b' ' && *c != b'\t'))
    else {
        return false;
    };
    let at = end + at;
    // YAML's `image: nginx:1.2`: a key's colon is followed by a space or the line's end.
    b.get(at) == Some(&sep)
        && (!lang.key_sep_needs_space || b.get(at + 1).is_none_or(|c| c.is_ascii_whitespace()))
}

/// The class of the word `b[i..j]`, if it has one.
fn classify(lang: &Lang, b: &[u8], i: usize, j: usize) -> Option<&'static str> {
    let word = b.get(i..j)?;
    if is_key(lang, b, j) {
        return Some(KEY);
    }
    if lookup(lang, lang.keywords, word) {
        return Some(KEYWORD);
    }
    if lookup(lang, lang.literals, word) {
        return Some(NUMBER);
    }
    if lookup(lang, lang.types, word) {
        return Some(TYPE);
    }
    if lang.caps_types && word.first().is_some_and(u8::is_ascii_uppercase) {
        return Some(TYPE);
    }
    if lang.calls {
        match b.get(j) {
            Some(b'(') => return Some(FUNCTION),
            Some(b'!') if lang.prefixes == Prefixes::Rust && b.get(j + 1) != Some(&b'=') => {
                return Some(FUNCTION);
            }
            _ => {}
        }
    }
    None
}

/// The string a quote at `at` opens, and where its body starts.
fn string_start(lang: &Lang, b: &[u8], at: usize) -> Option<(StrKind, usize)> {
    let c = *b.get(at)?;
    let triple = lang.triple_quotes && starts(b, at, &[c, c, c]);
    let kind = match c {
        b'"' => lang.double_quote?,
        b'\'' => match lang.single_quote {
            SingleQuote::Str(kind) => kind,
            SingleQuote::StrAtWordStart(kind) => {
                if at > 0 && b.get(at - 1).is_some_and(|&p| is_word(p)) {
                    return None;
                }
                kind
            }
            SingleQuote::None | SingleQuote::RustChar => return None,
        },
        b'`' => lang.backtick?,
        _ => return None,
    };
    if triple && c != b'`' {
        let kind = StrKind {
            close: Close::Triple(c),
            escapes: kind.escapes,
            multiline: true,
        };
        return Some((kind, at + 3));
    }
    Some((kind, at + 1))
}

/// A string opened by a prefix word `b[i..j]` (`r#"`, `b'`, `f"`): its kind and where
/// its body starts.
fn prefixed_string(lang: &Lang, b: &[u8], i: usize, j: usize) -> Option<(StrKind, usize)> {
    let word = b.get(i..j)?;
    let next = *b.get(j)?;
    match lang.prefixes {
        Prefixes::None => None,
        Prefixes::Rust => match (word, next) {
            (b"r" | b"br" | b"cr", b'"' | b'#') => {
                let hashes = b.get(j..)?.iter().take_while(|c| **c == b'#').count();
                if b.get(j + hashes) != Some(&b'"') {
                    return None;
                }
                let kind = StrKind {
                    close: Close::Raw(u8::try_from(hashes).ok()?),
                    escapes: false,
                    multiline: true,
                };
                Some((kind, j + hashes + 1))
            }
            (b"b" | b"c", b'"') => string_start(lang, b, j),
            (b"b", b'\'') => {
                let kind = StrKind {
                    close: Close::Byte(b'\''),
                    escapes: true,
                    multiline: false,
                };
                Some((kind, j + 1))
            }
            _ => None,
        },
        Prefixes::Python => {
            let is_prefix = word.len() <= 2 && word.iter().all(|c| b"rRbBuUfF".contains(c));
            if is_prefix && (next == b'"' || next == b'\'') {
                string_start(lang, b, j)
            } else {
                None
            }
        }
    }
}

/// Rust after a `'`: a char literal (`'a'`, `'\n'`, `'é'`) or a lifetime (`'a`). Returns
/// the class and end of the token, or `None` for a lone quote.
fn rust_quote(line: &str, b: &[u8], at: usize) -> Option<(&'static str, usize)> {
    if b.get(at + 1) == Some(&b'\\') {
        let kind = StrKind {
            close: Close::Byte(b'\''),
            escapes: true,
            multiline: false,
        };
        return Some((STRING, scan_string(b, at + 1, kind).0));
    }
    let ch = line.get(at + 1..)?.chars().next()?;
    let after = at + 1 + ch.len_utf8();
    if b.get(after) == Some(&b'\'') {
        return Some((STRING, after + 1));
    }
    if ch.is_alphabetic() || ch == '_' {
        let mut j = at + 1;
        while b.get(j).is_some_and(|&c| is_word(c)) {
            j += 1;
        }
        return Some((TYPE, j));
    }
    None
}

/// `$name`, `${…}`, `$(…)`, `$1`, `$@`: the end of the variable starting at `at`.
fn dollar_var(b: &[u8], at: usize) -> Option<usize> {
    let next = *b.get(at + 1)?;
    let close = match next {
        b'{' => b'}',
        b'(' => b')',
        c if is_word_start(c) => {
            let mut j = at + 1;
            while b.get(j).is_some_and(|&c| is_word(c)) {
                j += 1;
            }
            return Some(j);
        }
        c if c.is_ascii_digit() || b"@*#?$!-".contains(&c) => return Some(at + 2),
        _ => return None,
    };
    let end = b.get(at + 2..)?.iter().position(|c| *c == close);
    Some(end.map_or(b.len(), |p| at + 2 + p + 1))
}

/// `#include`, `#[derive`, `#![allow`: the end of the meta token at `at`, if it is one.
fn hash_meta(lang: &Lang, b: &[u8], at: usize) -> Option<usize> {
    let after = match lang.hash_meta {
        HashMeta::None => return None,
        HashMeta::Directive => {
            if !b.get(..at)?.iter().all(u8::is_ascii_whitespace) {
                return None;
            }
            let spaces = b.get(at + 1..)?.iter().take_while(|c| **c == b' ').count();
            at + 1 + spaces
        }
        HashMeta::Attribute => {
            if starts(b, at, b"#[") {
                at + 2
            } else if starts(b, at, b"#![") {
                at + 3
            } else {
                return None;
            }
        }
    };
    Some(word_end(lang, b, after))
}

fn is_line_comment(lang: &Lang, b: &[u8], at: usize) -> bool {
    lang.line_comments.iter().any(|lc| {
        starts(b, at, lc.as_bytes())
            && (*lc != "#"
                || !lang.hash_comment_after_space
                || at == 0
                || b.get(at - 1).is_some_and(u8::is_ascii_whitespace))
    })
}

/// Finishes a string whose body starts at `body`: colours it from `start`, as a key
/// when a key separator follows, and carries it over when it stays open.
fn string_token(
    lang: &Lang,
    out: &mut Out<'_>,
    carry: &mut Carry,
    start: usize,
    body: usize,
    kind: StrKind,
) -> usize {
    let b = out.line.as_bytes();
    let (end, open) = scan_string(b, body, kind);
    if open {
        *carry = Carry::Str(kind);
    }
    let class = if !open && is_key(lang, b, end) {
        KEY
    } else {
        STRING
    };
    out.span(class, start, end);
    end
}

/// One line of a programming language.
fn code_line(lang: &Lang, carry: &mut Carry, line: &str) -> String {
    let b = line.as_bytes();
    let n = b.len();
    let mut out = Out::new(line);
    let mut i = 0;
    match std::mem::replace(carry, Carry::None) {
        Carry::Comment(depth) => {
            let (end, left) = scan_comment(lang, b, 0, depth);
            out.span(COMMENT, 0, end);
            if left > 0 {
                *carry = Carry::Comment(left);
            }
            i = end;
        }
        Carry::Str(kind) => i = string_token(lang, &mut out, carry, 0, 0, kind),
        _ => {}
    }
    while let Some(&c) = b.get(i) {
        // Spaces and the punctuation that starts no token in any language: skipped
        // without asking the language's rules.
        if c == b' ' || c == b'\t' || (c.is_ascii_punctuation() && !b"/#-\"'`@$".contains(&c)) {
            i += 1;
            continue;
        }
        if c == b'#'
            && let Some(end) = hash_meta(lang, b, i)
        {
            out.span(META, i, end);
            i = end;
            continue;
        }
        if is_line_comment(lang, b, i) {
            out.span(COMMENT, i, n);
            break;
        }
        if let Some((open, _)) = lang.block_comment
            && starts(b, i, open.as_bytes())
        {
            let (end, left) = scan_comment(lang, b, i + open.len(), 1);
            out.span(COMMENT, i, end);
            if left > 0 {
                *carry = Carry::Comment(left);
            }
            i = end;
            continue;
        }
        if c == b'\'' && lang.single_quote == SingleQuote::RustChar {
            if let Some((class, end)) = rust_quote(line, b, i) {
                out.span(class, i, end);
                i = end;
            } else {
                i += 1;
            }
            continue;
        }
        if let Some((kind, body)) = string_start(lang, b, i) {
            i = string_token(lang, &mut out, carry, i, body, kind);
            continue;
        }
        if c.is_ascii_digit() {
            let hex = c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X'));
            let mut j = i + 1;
            while let Some(&d) = b.get(j) {
                let exponent =
                    (d == b'+' || d == b'-') && !hex && matches!(b.get(j - 1), Some(b'e' | b'E'));
                if d.is_ascii_alphanumeric()
                    || d == b'_'
                    || exponent
                    || (d == b'.' && b.get(j + 1).is_some_and(u8::is_ascii_digit))
                {
                    j += 1;
                } else {
                    break;
                }
            }
            out.span(NUMBER, i, j);
            i = j;
            continue;
        }
        if is_word_start(c) {
            let j = word_end(lang, b, i);
            if let Some((kind, body)) = prefixed_string(lang, b, i, j) {
                i = string_token(lang, &mut out, carry, i, body, kind);
                continue;
            }
            if let Some(class) = classify(lang, b, i, j) {
                out.span(class, i, j);
            }
            i = j;
            continue;
        }
        if c == b'@' && lang.at_meta && b.get(i + 1).is_some_and(|&d| is_word_start(d)) {
            let end = word_end(lang, b, i + 1);
            out.span(META, i, end);
            i = end;
            continue;
        }
        if c == b'$'
            && lang.dollar_vars
            && let Some(end) = dollar_var(b, i)
        {
            out.span(META, i, end);
            i = end;
            continue;
        }
        i += 1;
    }
    out.finish()
}

fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    let rest = b.get(from..)?;
    rest.windows(pat.len())
        .position(|w| w == pat)
        .map(|p| from + p)
}

/// One line of HTML or XML: tag names, attribute names and values, comments.
fn markup_line(carry: &mut Carry, line: &str) -> String {
    let b = line.as_bytes();
    let n = b.len();
    let mut out = Out::new(line);
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match *carry {
            Carry::MarkupComment => {
                let end = find(b, i, b"-->").map_or(n, |p| {
                    *carry = Carry::None;
                    p + 3
                });
                out.span(COMMENT, i, end);
                i = end;
            }
            Carry::TagStr(q) => {
                let end = b
                    .get(i..)
                    .and_then(|r| r.iter().position(|x| *x == q))
                    .map_or(n, |p| {
                        *carry = Carry::Tag;
                        i + p + 1
                    });
                out.span(STRING, i, end);
                i = end;
            }
            Carry::Tag => match c {
                b'>' => {
                    *carry = Carry::None;
                    i += 1;
                }
                b'"' | b'\'' => {
                    *carry = Carry::TagStr(c);
                    i += 1;
                    let end = b
                        .get(i..)
                        .and_then(|r| r.iter().position(|x| *x == c))
                        .map_or(n, |p| {
                            *carry = Carry::Tag;
                            i + p + 1
                        });
                    out.span(STRING, i - 1, end);
                    i = end;
                }
                b'/' | b'=' | b'?' => i += 1,
                c if c.is_ascii_whitespace() => i += 1,
                _ => {
                    let mut j = i;
                    while b
                        .get(j)
                        .is_some_and(|&d| !(d.is_ascii_whitespace() || b"=>/\"'".contains(&d)))
                    {
                        j += 1;
                    }
                    out.span(KEY, i, j);
                    i = j;
                }
            },
            Carry::None | Carry::Comment(_) | Carry::Str(_) => {
                let Some(p) = b.get(i..).and_then(|r| r.iter().position(|x| *x == b'<')) else {
                    break;
                };
                let p = i + p;
                if starts(b, p, b"<!--") {
                    *carry = Carry::MarkupComment;
                    let end = find(b, p + 4, b"-->").map_or(n, |e| {
                        *carry = Carry::None;
                        e + 3
                    });
                    out.span(COMMENT, p, end);
                    i = end;
                    continue;
                }
                let mut j = p + 1;
                if matches!(b.get(j), Some(b'/' | b'!' | b'?')) {
                    j += 1;
                }
                let mut k = j;
                while b
                    .get(k)
                    .is_some_and(|&d| d.is_ascii_alphanumeric() || b"-:_.".contains(&d))
                {
                    k += 1;
                }
                if b.get(j).is_some_and(u8::is_ascii_alphabetic) {
                    out.span(KEYWORD, j, k);
                    *carry = Carry::Tag;
                    i = k;
                } else {
                    i = p + 1;
                }
            }
        }
    }
    out.finish()
}
