//! The language tables the lexer reads, and the choice of a table from a file's path.
//!
//! Every language is data, not code: one [`Lang`] says which comment, string and
//! identifier rules apply, so adding a language is adding a table here. Word lists are
//! sorted (a test checks it) because the lexer looks words up by binary search.

use super::{Close, StrKind};

/// How a single quote behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SingleQuote {
    /// Not special (Go runes are still highlighted: see `Char`).
    None,
    /// Opens a string of this kind.
    Str(StrKind),
    /// Opens a string of this kind unless it follows a word character (YAML's
    /// `don't` in a plain scalar is no string).
    StrAtWordStart(StrKind),
    /// Rust: a char literal (`'a'`, `'\n'`) or else a lifetime (`'a`).
    RustChar,
}

/// Which identifiers directly before a quote make it a string prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prefixes {
    None,
    /// `b"…"`, `c"…"`, `b'x'`, and raw strings `r"…"`, `r#"…"#`, `br"…"`, `cr"…"`.
    Rust,
    /// Up to two of `r b u f` in either case (`rb"…"`, `f'…'`).
    Python,
}

/// What a `#` at the start of a token means besides a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HashMeta {
    None,
    /// C preprocessor: `#` first on the line, then a directive word.
    Directive,
    /// Rust attributes: `#[path` and `#![path`.
    Attribute,
}

/// One language's lexical rules.
#[derive(Debug)]
pub(super) struct Lang {
    /// The name shown to people (e.g. above a blob).
    pub(super) name: &'static str,
    pub(super) keywords: &'static [&'static str],
    pub(super) types: &'static [&'static str],
    /// Words shown like numbers: `true`, `null`, `None`.
    pub(super) literals: &'static [&'static str],
    /// Words compare lowercased (SQL, Dockerfile); the lists are then lowercase.
    pub(super) case_insensitive: bool,
    pub(super) line_comments: &'static [&'static str],
    /// `#` comments only at the start of a line or after whitespace (shell's `$#`,
    /// YAML's `a#b`).
    pub(super) hash_comment_after_space: bool,
    pub(super) block_comment: Option<(&'static str, &'static str)>,
    /// Block comments nest (Rust).
    pub(super) nested_comments: bool,
    pub(super) double_quote: Option<StrKind>,
    pub(super) single_quote: SingleQuote,
    pub(super) backtick: Option<StrKind>,
    /// `"""…"""` (and `'''…'''` where single quotes open strings).
    pub(super) triple_quotes: bool,
    pub(super) prefixes: Prefixes,
    pub(super) hash_meta: HashMeta,
    /// `@name` is meta: decorators, annotations, CSS at-rules.
    pub(super) at_meta: bool,
    /// `$name`, `${…}`, `$(…)` are meta: shell and make variables.
    pub(super) dollar_vars: bool,
    /// Capitalised identifiers are types.
    pub(super) caps_types: bool,
    /// `-` continues an identifier (CSS properties, YAML keys).
    pub(super) dash_idents: bool,
    /// A word or string followed by this byte is a key (`key:` in YAML and JSON,
    /// `key =` in TOML).
    pub(super) key_sep: Option<u8>,
    /// The key separator must be followed by whitespace (YAML's `image: nginx:1.2`).
    pub(super) key_sep_needs_space: bool,
    /// `name(` is a function and Rust's `name!` a macro.
    pub(super) calls: bool,
}

const fn s(close: Close, escapes: bool, multiline: bool) -> Option<StrKind> {
    Some(StrKind {
        close,
        escapes,
        multiline,
    })
}

const fn sq(close: Close, escapes: bool, multiline: bool) -> SingleQuote {
    SingleQuote::Str(StrKind {
        close,
        escapes,
        multiline,
    })
}

const DQ: Close = Close::Byte(b'"');
const SQ: Close = Close::Byte(b'\'');
const BT: Close = Close::Byte(b'`');

/// The defaults the tables below start from: nothing is special.
const NONE: Lang = Lang {
    name: "Text",
    keywords: &[],
    types: &[],
    literals: &[],
    case_insensitive: false,
    line_comments: &[],
    hash_comment_after_space: false,
    block_comment: None,
    nested_comments: false,
    double_quote: None,
    single_quote: SingleQuote::None,
    backtick: None,
    triple_quotes: false,
    prefixes: Prefixes::None,
    hash_meta: HashMeta::None,
    at_meta: false,
    dollar_vars: false,
    caps_types: false,
    dash_idents: false,
    key_sep: None,
    key_sep_needs_space: false,
    calls: false,
};

pub(super) const RUST: Lang = Lang {
    name: "Rust",
    keywords: &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
        "pub", "ref", "return", "self", "static", "struct", "super", "trait", "type", "union",
        "unsafe", "use", "where", "while", "yield",
    ],
    types: &[
        "bool", "char", "f32", "f64", "i128", "i16", "i32", "i64", "i8", "isize", "str", "u128",
        "u16", "u32", "u64", "u8", "usize",
    ],
    literals: &["false", "true"],
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    nested_comments: true,
    double_quote: s(DQ, true, true),
    single_quote: SingleQuote::RustChar,
    prefixes: Prefixes::Rust,
    hash_meta: HashMeta::Attribute,
    caps_types: true,
    calls: true,
    ..NONE
};

pub(super) const C: Lang = Lang {
    name: "C/C++",
    keywords: &[
        "alignas",
        "alignof",
        "auto",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "constexpr",
        "continue",
        "decltype",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "explicit",
        "extern",
        "for",
        "friend",
        "goto",
        "if",
        "inline",
        "namespace",
        "new",
        "noexcept",
        "operator",
        "private",
        "protected",
        "public",
        "register",
        "return",
        "sizeof",
        "static",
        "static_assert",
        "struct",
        "switch",
        "template",
        "this",
        "throw",
        "try",
        "typedef",
        "typename",
        "union",
        "using",
        "virtual",
        "volatile",
        "while",
    ],
    types: &[
        "bool", "char", "double", "float", "int", "int16_t", "int32_t", "int64_t", "int8_t",
        "long", "short", "signed", "size_t", "ssize_t", "uint16_t", "uint32_t", "uint64_t",
        "uint8_t", "unsigned", "void", "wchar_t",
    ],
    literals: &["NULL", "false", "nullptr", "true"],
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    double_quote: s(DQ, true, false),
    single_quote: sq(SQ, true, false),
    hash_meta: HashMeta::Directive,
    calls: true,
    ..NONE
};

pub(super) const GO: Lang = Lang {
    name: "Go",
    keywords: &[
        "break",
        "case",
        "chan",
        "const",
        "continue",
        "default",
        "defer",
        "else",
        "fallthrough",
        "for",
        "func",
        "go",
        "goto",
        "if",
        "import",
        "interface",
        "map",
        "package",
        "range",
        "return",
        "select",
        "struct",
        "switch",
        "type",
        "var",
    ],
    types: &[
        "any",
        "bool",
        "byte",
        "complex128",
        "complex64",
        "error",
        "float32",
        "float64",
        "int",
        "int16",
        "int32",
        "int64",
        "int8",
        "rune",
        "string",
        "uint",
        "uint16",
        "uint32",
        "uint64",
        "uint8",
        "uintptr",
    ],
    literals: &["false", "iota", "nil", "true"],
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    double_quote: s(DQ, true, false),
    single_quote: sq(SQ, true, false),
    backtick: s(BT, false, true),
    calls: true,
    ..NONE
};

pub(super) const PYTHON: Lang = Lang {
    name: "Python",
    keywords: &[
        "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
        "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
        "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with",
        "yield",
    ],
    types: &[
        "bool", "bytes", "dict", "float", "int", "list", "object", "set", "str", "tuple",
    ],
    literals: &["False", "None", "True"],
    line_comments: &["#"],
    double_quote: s(DQ, true, false),
    single_quote: sq(SQ, true, false),
    triple_quotes: true,
    prefixes: Prefixes::Python,
    at_meta: true,
    caps_types: true,
    calls: true,
    ..NONE
};

pub(super) const JAVASCRIPT: Lang = Lang {
    name: "JavaScript/TypeScript",
    keywords: &[
        "abstract",
        "as",
        "async",
        "await",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "declare",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "finally",
        "for",
        "from",
        "function",
        "if",
        "implements",
        "import",
        "in",
        "instanceof",
        "interface",
        "let",
        "new",
        "of",
        "private",
        "protected",
        "public",
        "readonly",
        "return",
        "static",
        "super",
        "switch",
        "this",
        "throw",
        "try",
        "type",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
    ],
    types: &[
        "any", "bigint", "boolean", "never", "number", "object", "string", "symbol", "unknown",
    ],
    literals: &["Infinity", "NaN", "false", "null", "true", "undefined"],
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    double_quote: s(DQ, true, false),
    single_quote: sq(SQ, true, false),
    backtick: s(BT, true, true),
    at_meta: true,
    caps_types: true,
    calls: true,
    ..NONE
};

pub(super) const JAVA: Lang = Lang {
    name: "Java",
    keywords: &[
        "abstract",
        "assert",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "default",
        "do",
        "else",
        "enum",
        "extends",
        "final",
        "finally",
        "for",
        "goto",
        "if",
        "implements",
        "import",
        "instanceof",
        "interface",
        "native",
        "new",
        "package",
        "private",
        "protected",
        "public",
        "record",
        "return",
        "static",
        "strictfp",
        "super",
        "switch",
        "synchronized",
        "this",
        "throw",
        "throws",
        "transient",
        "try",
        "var",
        "void",
        "volatile",
        "while",
        "yield",
    ],
    types: &[
        "boolean", "byte", "char", "double", "float", "int", "long", "short",
    ],
    literals: &["false", "null", "true"],
    line_comments: &["//"],
    block_comment: Some(("/*", "*/")),
    double_quote: s(DQ, true, false),
    single_quote: sq(SQ, true, false),
    triple_quotes: true,
    at_meta: true,
    caps_types: true,
    calls: true,
    ..NONE
};

pub(super) const SHELL: Lang = Lang {
    name: "Shell",
    keywords: &[
        "case", "do", "done", "elif", "else", "esac", "exit", "export", "fi", "for", "function",
        "if", "in", "local", "readonly", "return", "select", "then", "until", "while",
    ],
    line_comments: &["#"],
    hash_comment_after_space: true,
    double_quote: s(DQ, true, true),
    single_quote: sq(SQ, false, true),
    dollar_vars: true,
    ..NONE
};

pub(super) const TOML: Lang = Lang {
    name: "TOML",
    literals: &["false", "true"],
    line_comments: &["#"],
    double_quote: s(DQ, true, false),
    single_quote: sq(SQ, false, false),
    triple_quotes: true,
    dash_idents: true,
    key_sep: Some(b'='),
    ..NONE
};

pub(super) const YAML: Lang = Lang {
    name: "YAML",
    literals: &["false", "null", "true"],
    line_comments: &["#"],
    hash_comment_after_space: true,
    double_quote: s(DQ, true, false),
    single_quote: SingleQuote::StrAtWordStart(StrKind {
        close: SQ,
        escapes: false,
        multiline: false,
    }),
    dash_idents: true,
    key_sep: Some(b':'),
    key_sep_needs_space: true,
    ..NONE
};

pub(super) const JSON: Lang = Lang {
    name: "JSON",
    literals: &["false", "null", "true"],
    double_quote: s(DQ, true, false),
    key_sep: Some(b':'),
    ..NONE
};

pub(super) const CSS: Lang = Lang {
    name: "CSS",
    block_comment: Some(("/*", "*/")),
    double_quote: s(DQ, true, false),
    single_quote: sq(SQ, true, false),
    at_meta: true,
    dash_idents: true,
    key_sep: Some(b':'),
    ..NONE
};

pub(super) const SQL: Lang = Lang {
    name: "SQL",
    keywords: &[
        "add",
        "all",
        "alter",
        "and",
        "as",
        "asc",
        "begin",
        "between",
        "by",
        "case",
        "check",
        "column",
        "commit",
        "constraint",
        "create",
        "database",
        "default",
        "delete",
        "desc",
        "distinct",
        "drop",
        "else",
        "end",
        "exists",
        "foreign",
        "from",
        "full",
        "group",
        "having",
        "if",
        "in",
        "index",
        "inner",
        "insert",
        "into",
        "is",
        "join",
        "key",
        "left",
        "like",
        "limit",
        "not",
        "offset",
        "on",
        "or",
        "order",
        "outer",
        "primary",
        "references",
        "right",
        "rollback",
        "select",
        "set",
        "table",
        "then",
        "transaction",
        "union",
        "unique",
        "update",
        "using",
        "values",
        "view",
        "when",
        "where",
        "with",
    ],
    types: &[
        "bigint",
        "blob",
        "boolean",
        "char",
        "date",
        "decimal",
        "double",
        "float",
        "int",
        "integer",
        "numeric",
        "real",
        "smallint",
        "text",
        "timestamp",
        "varchar",
    ],
    literals: &["false", "null", "true"],
    case_insensitive: true,
    line_comments: &["--"],
    block_comment: Some(("/*", "*/")),
    double_quote: s(DQ, false, false),
    single_quote: sq(SQ, false, true),
    backtick: s(BT, false, false),
    calls: true,
    ..NONE
};

pub(super) const RUBY: Lang = Lang {
    name: "Ruby",
    keywords: &[
        "BEGIN", "END", "alias", "and", "begin", "break", "case", "class", "def", "do", "else",
        "elsif", "end", "ensure", "for", "if", "in", "module", "next", "not", "or", "redo",
        "rescue", "retry", "return", "self", "super", "then", "undef", "unless", "until", "when",
        "while", "yield",
    ],
    literals: &["false", "nil", "true"],
    line_comments: &["#"],
    double_quote: s(DQ, true, true),
    single_quote: sq(SQ, true, true),
    backtick: s(BT, true, true),
    at_meta: true,
    caps_types: true,
    ..NONE
};

pub(super) const MAKE: Lang = Lang {
    name: "Makefile",
    keywords: &[
        "define", "else", "endef", "endif", "export", "ifdef", "ifeq", "ifndef", "ifneq",
        "include", "override", "unexport",
    ],
    line_comments: &["#"],
    double_quote: s(DQ, true, false),
    single_quote: sq(SQ, false, false),
    dollar_vars: true,
    ..NONE
};

pub(super) const DOCKER: Lang = Lang {
    name: "Dockerfile",
    keywords: &[
        "add",
        "arg",
        "as",
        "cmd",
        "copy",
        "entrypoint",
        "env",
        "expose",
        "from",
        "healthcheck",
        "label",
        "maintainer",
        "onbuild",
        "run",
        "shell",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    ],
    case_insensitive: true,
    line_comments: &["#"],
    hash_comment_after_space: true,
    double_quote: s(DQ, true, false),
    single_quote: sq(SQ, false, false),
    dollar_vars: true,
    ..NONE
};

/// What a path's name says about its contents.
#[derive(Debug, Clone, Copy)]
pub(super) enum Syntax {
    /// No highlighting (unknown languages, Markdown, plain text).
    Plain,
    /// HTML, XML, SVG: tags, attributes, comments.
    Markup,
    Code(&'static Lang),
}

/// The syntax for a path: its file name first (`Makefile`, `Dockerfile`), then its
/// extension, compared without case.
pub(super) fn detect(path: &str) -> Syntax {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    let by_name = match lower.as_str() {
        "makefile" | "gnumakefile" => Some(&MAKE),
        "dockerfile" | "containerfile" => Some(&DOCKER),
        "cargo.lock" | "pipfile" | "poetry.lock" => Some(&TOML),
        "rakefile" | "gemfile" | "vagrantfile" => Some(&RUBY),
        ".bashrc" | ".bash_profile" | ".profile" | ".zshrc" | "pkgbuild" => Some(&SHELL),
        _ => None,
    };
    if let Some(lang) = by_name {
        return Syntax::Code(lang);
    }
    if lower.starts_with("dockerfile.") {
        return Syntax::Code(&DOCKER);
    }
    let Some((_, ext)) = lower.rsplit_once('.') else {
        return Syntax::Plain;
    };
    let lang = match ext {
        "rs" => &RUST,
        "c" | "h" | "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh" | "hxx" | "h++" | "ino" => &C,
        "go" => &GO,
        "py" | "pyi" | "pyw" => &PYTHON,
        "js" | "mjs" | "cjs" | "jsx" | "ts" | "mts" | "cts" | "tsx" => &JAVASCRIPT,
        "java" | "kt" | "kts" | "scala" | "groovy" | "gradle" | "cs" => &JAVA,
        "sh" | "bash" | "zsh" | "ksh" | "fish" => &SHELL,
        "toml" | "ini" | "cfg" => &TOML,
        "yml" | "yaml" => &YAML,
        "json" | "jsonc" | "json5" | "geojson" | "ipynb" => &JSON,
        "css" | "scss" | "sass" | "less" => &CSS,
        "sql" => &SQL,
        "rb" | "rake" | "gemspec" | "ru" => &RUBY,
        "mk" | "mak" => &MAKE,
        "dockerfile" => &DOCKER,
        "html" | "htm" | "xhtml" | "xml" | "svg" | "xsl" | "xslt" | "plist" | "vue" => {
            return Syntax::Markup;
        }
        _ => return Syntax::Plain,
    };
    Syntax::Code(lang)
}

/// Every table, for the tests that check the word lists.
#[cfg(test)]
pub(super) const ALL: &[&Lang] = &[
    &RUST,
    &C,
    &GO,
    &PYTHON,
    &JAVASCRIPT,
    &JAVA,
    &SHELL,
    &TOML,
    &YAML,
    &JSON,
    &CSS,
    &SQL,
    &RUBY,
    &MAKE,
    &DOCKER,
];
