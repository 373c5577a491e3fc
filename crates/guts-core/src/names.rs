//! Validation rules for user-chosen names: logins, repository names and git ref names.
//!
//! These are shared by the API (which rejects bad input with a 422) and by the fold
//! (which rejects operations carrying bad names, whoever signed them). One set of rules
//! in the pure core means a name the API accepts is never one the fold refuses, and a
//! hostile peer cannot smuggle in a ref name git would choke on.

/// Longest GitHub login.
pub const MAX_LOGIN_LEN: usize = 39;
/// Longest repository name, as on GitHub.
pub const MAX_REPO_NAME_LEN: usize = 100;
/// Longest full ref name in bytes. Git itself has no hard limit; this one keeps ref
/// names well inside path limits of every file system a node might store them on.
pub const MAX_REF_NAME_LEN: usize = 1024;

/// The rule a name breaks. Each variant is one rule, so callers can report it
/// precisely (the API turns it into a GitHub-style validation error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} bytes, found {found}")]
    TooLong { max: usize, found: usize },
    #[error("invalid character {ch:?} at byte {position}")]
    InvalidChar { ch: char, position: usize },
    #[error("must not start or end with a hyphen")]
    EdgeHyphen,
    #[error("must not contain consecutive hyphens")]
    DoubleHyphen,
    #[error("must not be \".\" or \"..\"")]
    DotName,
    #[error("must not end with \".git\"")]
    GitSuffix,
    #[error("must start with \"refs/\"")]
    NotUnderRefs,
    #[error("must not contain \"..\"")]
    DoubleDot,
    #[error("must not contain \"@{{\"")]
    AtBrace,
    #[error("must not be \"@\"")]
    BareAt,
    #[error("must not contain an empty path component (\"//\")")]
    EmptyComponent,
    #[error("must not end with \"/\"")]
    TrailingSlash,
    #[error("must not end with \".\"")]
    TrailingDot,
    #[error("no path component may start with \".\"")]
    DotComponent,
    #[error("no path component may end with \".lock\"")]
    LockComponent,
    /// `HEAD` as a branch name: git refuses it (`check-ref-format --branch`), because
    /// `refs/heads/HEAD` would be shadowed by the symbolic `HEAD` in every rev lookup.
    #[error("must not be \"HEAD\"")]
    HeadBranch,
    /// A branch name starting with `-`: git refuses it, as it reads as an option on
    /// every command line that names the branch.
    #[error("must not start with \"-\"")]
    LeadingHyphen,
}

/// A GitHub login (user or organisation): 1 to 39 ASCII letters, digits and hyphens,
/// no leading, trailing or doubled hyphen.
pub fn validate_login(login: &str) -> Result<(), NameError> {
    check_length(login, MAX_LOGIN_LEN)?;
    if let Some((position, ch)) = login
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(NameError::InvalidChar { ch, position });
    }
    if login.starts_with('-') || login.ends_with('-') {
        return Err(NameError::EdgeHyphen);
    }
    if login.contains("--") {
        return Err(NameError::DoubleHyphen);
    }
    Ok(())
}

/// A repository name: 1 to 100 characters of `[A-Za-z0-9._-]`, not `.` or `..` (they
/// are path segments), not ending in `.git` (the git routes strip that suffix, so such
/// a repository could not be addressed).
pub fn validate_repo_name(name: &str) -> Result<(), NameError> {
    check_length(name, MAX_REPO_NAME_LEN)?;
    if let Some((position, ch)) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError::InvalidChar { ch, position });
    }
    if name == "." || name == ".." {
        return Err(NameError::DotName);
    }
    if name.ends_with(".git") {
        return Err(NameError::GitSuffix);
    }
    Ok(())
}

/// A full ref name (`refs/heads/main`), by the rules of `git check-ref-format` without
/// options: under `refs/`; no `..`, `@{`, ASCII control character, space, `~ ^ : ? * [`
/// or `\`; no empty component, no component starting with `.` or ending with `.lock`;
/// not ending with `/` or `.`; not `@`; at most [`MAX_REF_NAME_LEN`] bytes.
pub fn validate_ref_name(name: &str) -> Result<(), NameError> {
    check_length(name, MAX_REF_NAME_LEN)?;
    if name == "@" {
        return Err(NameError::BareAt);
    }
    if let Some((position, ch)) = name.char_indices().find(|&(_, c)| forbidden_in_ref(c)) {
        return Err(NameError::InvalidChar { ch, position });
    }
    if !name.starts_with("refs/") {
        return Err(NameError::NotUnderRefs);
    }
    if name.contains("..") {
        return Err(NameError::DoubleDot);
    }
    if name.contains("@{") {
        return Err(NameError::AtBrace);
    }
    if name.ends_with('/') {
        return Err(NameError::TrailingSlash);
    }
    if name.ends_with('.') {
        return Err(NameError::TrailingDot);
    }
    for component in name.split('/') {
        if component.is_empty() {
            return Err(NameError::EmptyComponent);
        }
        if component.starts_with('.') {
            return Err(NameError::DotComponent);
        }
        if component.ends_with(".lock") {
            return Err(NameError::LockComponent);
        }
    }
    Ok(())
}

/// A short branch name (`main`, the default branch of a repository), by the rules of
/// `git check-ref-format --branch`: `refs/heads/{name}` must be a valid ref name, and
/// the name is neither `HEAD` nor starts with `-`. A repository whose default branch
/// git cannot create could never be cloned with that branch checked out.
pub fn validate_branch_name(name: &str) -> Result<(), NameError> {
    if name == "HEAD" {
        return Err(NameError::HeadBranch);
    }
    if name.starts_with('-') {
        return Err(NameError::LeadingHyphen);
    }
    validate_ref_name(&format!("refs/heads/{name}"))
}

/// Characters git refuses anywhere in a ref name.
fn forbidden_in_ref(c: char) -> bool {
    c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
}

fn check_length(name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            max,
            found: name.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn logins() {
        for ok in ["a", "octocat", "Octo-Cat", "a1-b2-c3", &"x".repeat(39)] {
            assert_eq!(validate_login(ok), Ok(()), "{ok}");
        }
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            (&"x".repeat(40), NameError::TooLong { max: 39, found: 40 }),
            ("-abc", NameError::EdgeHyphen),
            ("abc-", NameError::EdgeHyphen),
            ("a--b", NameError::DoubleHyphen),
            (
                "a_b",
                NameError::InvalidChar {
                    ch: '_',
                    position: 1,
                },
            ),
            (
                "a.b",
                NameError::InvalidChar {
                    ch: '.',
                    position: 1,
                },
            ),
            (
                "ünï",
                NameError::InvalidChar {
                    ch: 'ü',
                    position: 0,
                },
            ),
        ];
        for (bad, want) in cases {
            assert_eq!(validate_login(bad).as_ref(), Err(want), "{bad}");
        }
    }

    #[test]
    fn repo_names() {
        for ok in [
            "r", "guts", "my.repo", "a_b-c.d", ".github", "..a", "git", "x.gi",
        ] {
            assert_eq!(validate_repo_name(ok), Ok(()), "{ok}");
        }
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            (
                &"x".repeat(101),
                NameError::TooLong {
                    max: 100,
                    found: 101,
                },
            ),
            (".", NameError::DotName),
            ("..", NameError::DotName),
            ("repo.git", NameError::GitSuffix),
            (".git", NameError::GitSuffix),
            (
                "a b",
                NameError::InvalidChar {
                    ch: ' ',
                    position: 1,
                },
            ),
            (
                "a/b",
                NameError::InvalidChar {
                    ch: '/',
                    position: 1,
                },
            ),
        ];
        for (bad, want) in cases {
            assert_eq!(validate_repo_name(bad).as_ref(), Err(want), "{bad}");
        }
    }

    /// The cases of git's own `t1402-check-ref-format.sh` that apply to full ref names
    /// without options, plus the prefix and length rules of our own.
    #[test]
    fn branch_names_follow_git_check_ref_format_branch() {
        for ok in ["main", "a/b", "@", "head", "a/HEAD", "x-", "résumé"] {
            assert_eq!(validate_branch_name(ok), Ok(()), "{ok}");
        }
        let cases: &[(&str, NameError)] = &[
            ("HEAD", NameError::HeadBranch),
            ("-x", NameError::LeadingHyphen),
            ("-", NameError::LeadingHyphen),
            ("a..b", NameError::DoubleDot),
            ("a.lock", NameError::LockComponent),
            ("", NameError::TrailingSlash),
            ("/a", NameError::EmptyComponent),
        ];
        for (bad, want) in cases {
            assert_eq!(validate_branch_name(bad).as_ref(), Err(want), "{bad}");
        }
    }

    #[test]
    fn ref_names_follow_git_check_ref_format() {
        let valid = [
            "refs/heads/main",
            "refs/heads/feature/x",
            "refs/tags/v1.0.0",
            "refs/heads/foo.bar",
            "refs/heads/ü-unicode",
            "refs/heads/@",
            "refs/heads/a@b",
            "refs/heads/x.lockx",
            "refs/heads/{brace}",
            "refs/pull/12/head",
        ];
        for ok in valid {
            assert_eq!(validate_ref_name(ok), Ok(()), "{ok}");
        }
        let long = format!("refs/heads/{}", "x".repeat(1014));
        assert_eq!(long.len(), 1025);
        let invalid: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            (
                &long,
                NameError::TooLong {
                    max: 1024,
                    found: 1025,
                },
            ),
            ("@", NameError::BareAt),
            ("heads/main", NameError::NotUnderRefs),
            ("main", NameError::NotUnderRefs),
            ("refs", NameError::NotUnderRefs),
            ("/refs/heads/main", NameError::NotUnderRefs),
            ("refs/", NameError::TrailingSlash),
            ("refs/heads/", NameError::TrailingSlash),
            ("refs/heads//main", NameError::EmptyComponent),
            ("refs/heads/a..b", NameError::DoubleDot),
            ("refs/heads/main.", NameError::TrailingDot),
            ("refs/heads/.hidden", NameError::DotComponent),
            ("refs/./heads", NameError::DotComponent),
            ("refs/heads/main.lock", NameError::LockComponent),
            ("refs/heads.lock/main", NameError::LockComponent),
            ("refs/heads/a@{1}", NameError::AtBrace),
            (
                "refs/heads/a b",
                NameError::InvalidChar {
                    ch: ' ',
                    position: 12,
                },
            ),
            (
                "refs/heads/a~1",
                NameError::InvalidChar {
                    ch: '~',
                    position: 12,
                },
            ),
            (
                "refs/heads/a^",
                NameError::InvalidChar {
                    ch: '^',
                    position: 12,
                },
            ),
            (
                "refs/heads/a:b",
                NameError::InvalidChar {
                    ch: ':',
                    position: 12,
                },
            ),
            (
                "refs/heads/a?",
                NameError::InvalidChar {
                    ch: '?',
                    position: 12,
                },
            ),
            (
                "refs/heads/a*",
                NameError::InvalidChar {
                    ch: '*',
                    position: 12,
                },
            ),
            (
                "refs/heads/a[b",
                NameError::InvalidChar {
                    ch: '[',
                    position: 12,
                },
            ),
            (
                "refs/heads/a\\b",
                NameError::InvalidChar {
                    ch: '\\',
                    position: 12,
                },
            ),
            (
                "refs/heads/a\tb",
                NameError::InvalidChar {
                    ch: '\t',
                    position: 12,
                },
            ),
            (
                "refs/heads/a\u{7f}",
                NameError::InvalidChar {
                    ch: '\u{7f}',
                    position: 12,
                },
            ),
            (
                "refs/heads/\0",
                NameError::InvalidChar {
                    ch: '\0',
                    position: 11,
                },
            ),
        ];
        for (bad, want) in invalid {
            assert_eq!(validate_ref_name(bad).as_ref(), Err(want), "{bad:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn validation_never_panics(text in "\\PC{0,60}") {
            let _ = validate_login(&text);
            let _ = validate_repo_name(&text);
            let _ = validate_ref_name(&text);
        }

        /// Every accepted ref name is accepted by the rules restated independently.
        #[test]
        fn accepted_ref_names_have_no_forbidden_sequence(text in "refs/[a-z./@{~]{0,12}") {
            if validate_ref_name(&text).is_ok() {
                let clean = !text.contains("..") && !text.contains("@{") && !text.contains("//");
                prop_assert!(clean);
                prop_assert!(!text.ends_with('/') && !text.ends_with('.'));
                prop_assert!(!text.contains("/."));
            }
        }
    }
}
