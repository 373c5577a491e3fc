//! The command of an SSH `exec` request, as git sends it: `git-upload-pack
//! '/owner/repo.git'` (from `ssh://host/owner/repo.git`) or `git-receive-pack
//! 'owner/repo.git'` (from the scp-like `git@host:owner/repo.git`).
//!
//! Pure: bytes in, a [`GitCommand`] or a [`CommandError`] out. Nothing of the request
//! reaches a shell or the file system: the only outcome is a service and two names,
//! which the use-case layer then looks up like any other repository name. Everything
//! else (other programs, options, `..`, more or fewer path segments, quoting git never
//! produces) is refused with a message the client's user can act on.

use guts_git::v0::Service;

/// Longest command accepted: two names and a service are far shorter.
pub const MAX_COMMAND_BYTES: usize = 1024;

/// A git command on one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCommand {
    pub service: Service,
    pub owner: String,
    /// The repository's name as sent (a trailing `.git` is the use case's to ignore).
    pub repo: String,
}

/// Why an `exec` request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command over {MAX_COMMAND_BYTES} bytes")]
    TooLong,
    #[error("command is not UTF-8")]
    NotUtf8,
    /// Anything but git's two services: Guts runs nothing else.
    #[error("Guts runs only git-upload-pack and git-receive-pack, not {0:?}")]
    NotGit(String),
    #[error("the repository path must be OWNER/REPO or OWNER/REPO.git, not {0:?}")]
    BadPath(String),
    #[error("unbalanced or unsupported quoting in the command")]
    Quoting,
}

/// Parses an `exec` request's command.
pub fn parse(command: &[u8]) -> Result<GitCommand, CommandError> {
    if command.len() > MAX_COMMAND_BYTES {
        return Err(CommandError::TooLong);
    }
    let text = std::str::from_utf8(command).map_err(|_| CommandError::NotUtf8)?;
    let words = split(text.trim())?;
    let (service, rest) = match words.as_slice() {
        [program, rest @ ..] if program == "git" => match rest {
            [sub, rest @ ..] => (service(&format!("git-{sub}"))?, rest),
            [] => return Err(CommandError::NotGit(text.trim().to_owned())),
        },
        [program, rest @ ..] => (service(program)?, rest),
        [] => return Err(CommandError::NotGit(String::new())),
    };
    let [path] = rest else {
        return Err(CommandError::BadPath(rest.join(" ")));
    };
    let (owner, repo) = repo_path(path)?;
    Ok(GitCommand {
        service,
        owner,
        repo,
    })
}

fn service(program: &str) -> Result<Service, CommandError> {
    match program {
        "git-upload-pack" => Ok(Service::UploadPack),
        "git-receive-pack" => Ok(Service::ReceivePack),
        other => Err(CommandError::NotGit(other.to_owned())),
    }
}

/// `[/]owner/repo[.git][/]` → (`owner`, `repo[.git]`). The names' own rules are the
/// use case's; this refuses only what can never be a name: empty segments, `.` and
/// `..`, a home directory (`~`), and anything but two segments.
fn repo_path(path: &str) -> Result<(String, String), CommandError> {
    let bad = || CommandError::BadPath(path.to_owned());
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let mut segments = trimmed.split('/');
    let (Some(owner), Some(repo), None) = (segments.next(), segments.next(), segments.next())
    else {
        return Err(bad());
    };
    for segment in [owner, repo] {
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.starts_with('~')
            || segment.starts_with('-')
            || segment.chars().any(|c| c.is_control() || c == '\\')
        {
            return Err(bad());
        }
    }
    Ok((owner.to_owned(), repo.to_owned()))
}

/// Splits a command into words the way a POSIX shell would for what git sends: bare
/// words separated by spaces, and single-quoted words (git quotes the path with
/// `'…'`, and a quote inside as `'\''`). Double quotes, other backslashes and shell
/// metacharacters are refused rather than interpreted.
fn split(text: &str) -> Result<Vec<String>, CommandError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(CommandError::Quoting),
                    }
                }
            }
            '\\' => {
                // Only git's `'\''` (an escaped quote between quoted parts).
                match chars.next() {
                    Some('\'') => {
                        in_word = true;
                        word.push('\'');
                    }
                    _ => return Err(CommandError::Quoting),
                }
            }
            '"' | '`' | '$' | ';' | '&' | '|' | '<' | '>' | '(' | ')' | '\n' | '\r' | '*' | '?'
            | '[' | '{' | '#' => return Err(CommandError::Quoting),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(command: &str) -> GitCommand {
        parse(command.as_bytes()).unwrap()
    }

    #[test]
    fn what_git_sends_is_understood() {
        let upload = ok("git-upload-pack '/alice/tools.git'");
        assert_eq!(upload.service, Service::UploadPack);
        assert_eq!(
            (upload.owner.as_str(), upload.repo.as_str()),
            ("alice", "tools.git")
        );
        let receive = ok("git-receive-pack 'alice/tools.git'");
        assert_eq!(receive.service, Service::ReceivePack);
        assert_eq!(receive.repo, "tools.git");
        assert_eq!(ok("git upload-pack alice/tools").repo, "tools");
        assert_eq!(ok("git-upload-pack '/alice/tools/'").repo, "tools");
        assert_eq!(ok("  git-upload-pack   'alice/tools'  ").owner, "alice");
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for (command, want) in [
            ("ls -la", CommandError::NotGit("ls".into())),
            (
                "git-upload-archive 'a/b'",
                CommandError::NotGit("git-upload-archive".into()),
            ),
            ("git", CommandError::NotGit("git".into())),
            ("", CommandError::NotGit(String::new())),
            (
                "git-upload-pack '/a/../b'",
                CommandError::BadPath("/a/../b".into()),
            ),
            (
                "git-upload-pack '../a/b'",
                CommandError::BadPath("../a/b".into()),
            ),
            (
                "git-upload-pack 'a/b/c'",
                CommandError::BadPath("a/b/c".into()),
            ),
            ("git-upload-pack 'a'", CommandError::BadPath("a".into())),
            ("git-upload-pack '~/a'", CommandError::BadPath("~/a".into())),
            (
                "git-upload-pack 'a//b'",
                CommandError::BadPath("a//b".into()),
            ),
            (
                "git-upload-pack --help a/b",
                CommandError::BadPath("--help a/b".into()),
            ),
            (
                "git-upload-pack '-x/b'",
                CommandError::BadPath("-x/b".into()),
            ),
            (
                "git-upload-pack 'a/b' 'c/d'",
                CommandError::BadPath("a/b c/d".into()),
            ),
            ("git-upload-pack 'a/b", CommandError::Quoting),
            ("git-upload-pack \"a/b\"", CommandError::Quoting),
            ("git-upload-pack a/b; rm -rf /", CommandError::Quoting),
            ("git-upload-pack $(id)/b", CommandError::Quoting),
        ] {
            assert_eq!(parse(command.as_bytes()), Err(want), "{command}");
        }
        assert_eq!(parse(&[0xff, 0xfe]), Err(CommandError::NotUtf8));
        assert_eq!(
            parse(&vec![b'a'; MAX_COMMAND_BYTES + 1]),
            Err(CommandError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_never_escape_two_names(
            bytes in proptest::collection::vec(any::<u8>(), 0..200)
        ) {
            if let Ok(command) = parse(&bytes) {
                for name in [&command.owner, &command.repo] {
                    prop_assert!(!name.is_empty());
                    prop_assert!(!name.contains('/'));
                    prop_assert!(name != "." && name != "..");
                }
            }
        }

        #[test]
        fn git_quoting_round_trips(owner in "[A-Za-z0-9][A-Za-z0-9-]{0,20}", repo in "[A-Za-z0-9_.-]{1,20}") {
            prop_assume!(repo != "." && repo != ".." && !repo.starts_with('-'));
            let command = format!("git-receive-pack '/{owner}/{repo}'");
            let parsed = parse(command.as_bytes()).unwrap();
            prop_assert_eq!(parsed.owner, owner);
            prop_assert_eq!(parsed.repo, repo);
        }
    }
}
