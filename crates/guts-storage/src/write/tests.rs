//! Tests of the object writes: path rules as properties, tree editing and the file
//! edit checked against the real `git` binary (`ls-tree`, `fsck`).

use proptest::prelude::*;

use super::*;
use crate::git::GitRepos;
use crate::testing::git;

fn sig() -> Signature {
    Signature {
        name: "Octo Cat".into(),
        email: "octo@users.noreply.guts".into(),
        time_secs: 1_700_000_000,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    bare: std::path::PathBuf,
    repo: GitRepo,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repos = GitRepos::open(dir.path()).unwrap();
    let id = "ab".repeat(32);
    repos.create(&id, "refs/heads/main").unwrap();
    Fixture {
        bare: repos.path(&id),
        repo: repos.open_repo(&id).unwrap(),
        _dir: dir,
    }
}

fn h(id: &Oid) -> String {
    hex::encode(id)
}

fn set(path: &str, id: Oid) -> TreeEdit {
    TreeEdit {
        path: path.into(),
        mode: Mode::File,
        change: EntryChange::Object(id),
    }
}

/// `git ls-tree -r` of a tree: `mode type sha\tpath` lines.
fn ls(f: &Fixture, tree: &Oid) -> Vec<String> {
    git(&f.bare, &["ls-tree", "-r", "-t", &h(tree)])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn nested_paths_make_subtrees_and_base_tree_keeps_the_rest() {
    let f = fixture();
    let a = f.repo.create_blob(b"a\n").unwrap();
    let b = f.repo.create_blob(b"b\n").unwrap();
    assert_eq!(git(&f.bare, &["cat-file", "-p", &h(&a)]), "a");

    let first = f
        .repo
        .create_tree(
            None,
            &[
                set("README.md", a),
                set("a/b/c.txt", b),
                TreeEdit {
                    path: "bin/run".into(),
                    mode: Mode::Executable,
                    change: EntryChange::Content(b"#!/bin/sh\n".to_vec()),
                },
            ],
        )
        .unwrap();
    let listing = ls(&f, &first);
    assert_eq!(listing.len(), 6, "{listing:?}");
    assert!(
        listing
            .iter()
            .any(|l| l.starts_with("040000 tree") && l.ends_with("\ta/b"))
    );
    assert!(
        listing
            .iter()
            .any(|l| l.starts_with("100755 blob") && l.ends_with("\tbin/run"))
    );
    assert!(
        listing
            .iter()
            .any(|l| l.contains(&h(&b)) && l.ends_with("\ta/b/c.txt"))
    );

    // On top of the first tree: one file replaced, one deleted (its directories go
    // with it, as git cannot store an empty tree), one added deeper.
    let second = f
        .repo
        .create_tree(
            Some(&first),
            &[
                set("README.md", b),
                TreeEdit {
                    path: "a/b/c.txt".into(),
                    mode: Mode::File,
                    change: EntryChange::Remove,
                },
                set("docs/x/y/z.md", a),
                TreeEdit {
                    path: "never/there".into(),
                    mode: Mode::File,
                    change: EntryChange::Remove,
                },
            ],
        )
        .unwrap();
    let listing = ls(&f, &second);
    assert!(!listing.iter().any(|l| l.ends_with("\ta")), "{listing:?}");
    assert!(
        listing
            .iter()
            .any(|l| l.contains(&h(&b)) && l.ends_with("\tREADME.md"))
    );
    assert!(listing.iter().any(|l| l.ends_with("\tbin/run")));
    assert!(listing.iter().any(|l| l.ends_with("\tdocs/x/y/z.md")));

    // A commit of it, and a tag of the commit: git finds nothing wrong.
    let commit = f
        .repo
        .create_commit(&NewCommit {
            tree: second,
            parents: &[],
            author: &sig(),
            committer: &sig(),
            message: "Second tree",
        })
        .unwrap();
    let tag = f
        .repo
        .create_tag(&NewTag {
            name: "v1.0",
            message: "release",
            object: commit,
            object_type: "commit",
            tagger: &sig(),
        })
        .unwrap();
    assert_eq!(git(&f.bare, &["cat-file", "-t", &h(&tag)]), "tag");
    git(&f.bare, &["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn unknown_or_mistyped_objects_are_refused_and_nothing_is_written() {
    let f = fixture();
    let blob = f.repo.create_blob(b"x").unwrap();
    let missing = [7u8; 20];
    let count = || git(&f.bare, &["count-objects"]);
    let before = count();
    let err = f
        .repo
        .create_tree(
            None,
            &[
                TreeEdit {
                    path: "new.txt".into(),
                    mode: Mode::File,
                    change: EntryChange::Content(b"not kept".to_vec()),
                },
                set("gone", missing),
            ],
        )
        .unwrap_err();
    assert!(matches!(err, WriteError::Missing { .. }), "{err}");
    assert_eq!(count(), before, "a refused tree writes nothing");
    let err = f
        .repo
        .create_tree(
            None,
            &[TreeEdit {
                path: "d".into(),
                mode: Mode::Dir,
                change: EntryChange::Object(blob),
            }],
        )
        .unwrap_err();
    assert!(matches!(err, WriteError::WrongKind { .. }), "{err}");
    let deep = "d/".repeat(1_999) + "f";
    let many: Vec<TreeEdit> = (0..60).map(|i| set(&format!("{i}/{deep}"), blob)).collect();
    let err = f.repo.create_tree(None, &many).unwrap_err();
    assert!(matches!(err, WriteError::TooMany { .. }), "{err}");
    for name in [
        ".gitmodules",
        "sub/.GitAttributes",
        ".gitignore.",
        ".mailmap",
    ] {
        let link = TreeEdit {
            path: name.into(),
            mode: Mode::Symlink,
            change: EntryChange::Object(blob),
        };
        let err = f.repo.create_tree(None, &[link]).unwrap_err();
        assert!(
            matches!(err, WriteError::InvalidPath { .. }),
            "{name}: {err}"
        );
    }
    let err = f.repo.create_tree(Some(&blob), &[]).unwrap_err();
    assert!(matches!(err, WriteError::WrongKind { .. }), "{err}");
    for path in [
        "../x",
        ".git/config",
        "a//b",
        "/abs",
        "a\0b",
        "A/.GIT/hooks/x",
    ] {
        let err = f.repo.create_tree(None, &[set(path, blob)]).unwrap_err();
        assert!(
            matches!(err, WriteError::InvalidPath { .. }),
            "{path}: {err}"
        );
    }
    let err = f
        .repo
        .create_commit(&NewCommit {
            tree: blob,
            parents: &[],
            author: &sig(),
            committer: &sig(),
            message: "m",
        })
        .unwrap_err();
    assert!(matches!(err, WriteError::WrongKind { .. }), "{err}");
    let forged = Signature {
        name: "x>\ncommitter evil".into(),
        ..sig()
    };
    let empty = f.repo.create_tree(None, &[]).unwrap();
    let err = f
        .repo
        .create_commit(&NewCommit {
            tree: empty,
            parents: &[],
            author: &forged,
            committer: &sig(),
            message: "m",
        })
        .unwrap_err();
    assert!(matches!(err, WriteError::InvalidIdentity { .. }), "{err}");
    let err = f
        .repo
        .create_tag(&NewTag {
            name: "bad..name",
            message: "m",
            object: blob,
            object_type: "blob",
            tagger: &sig(),
        })
        .unwrap_err();
    assert!(matches!(err, WriteError::InvalidTagName(..)), "{err}");
    let err = f
        .repo
        .create_tag(&NewTag {
            name: "v1",
            message: "m",
            object: blob,
            object_type: "commit",
            tagger: &sig(),
        })
        .unwrap_err();
    assert!(matches!(err, WriteError::WrongKind { .. }), "{err}");
}

#[test]
fn a_file_edit_is_a_compare_and_swap_on_the_blob() {
    let f = fixture();
    let edit = |tip: Option<Oid>, path: &'static str, expected, content| FileEdit {
        tip,
        path,
        expected,
        content,
        message: "edit",
        author: &SIG,
        committer: &SIG,
    };
    static SIG: std::sync::LazyLock<Signature> = std::sync::LazyLock::new(sig);

    // First commit of an empty branch.
    let first = f
        .repo
        .edit_file(&edit(None, "docs/a.txt", None, Some(b"one\n".as_slice())))
        .unwrap();
    assert!(first.created);
    let blob = first.blob.unwrap();
    assert_eq!(
        git(
            &f.bare,
            &["show", &format!("{}:docs/a.txt", h(&first.commit))]
        ),
        "one"
    );
    // Updating needs the current blob's sha; a stale one is a mismatch.
    let err = f
        .repo
        .edit_file(&edit(
            Some(first.commit),
            "docs/a.txt",
            None,
            Some(b"two\n"),
        ))
        .unwrap_err();
    assert!(matches!(err, WriteError::ShaRequired), "{err}");
    let err = f
        .repo
        .edit_file(&edit(
            Some(first.commit),
            "docs/a.txt",
            Some([9; 20]),
            Some(b"two\n"),
        ))
        .unwrap_err();
    assert!(matches!(err, WriteError::ShaMismatch { .. }), "{err}");
    let second = f
        .repo
        .edit_file(&edit(
            Some(first.commit),
            "docs/a.txt",
            Some(blob),
            Some(b"two\n"),
        ))
        .unwrap();
    assert!(!second.created);
    assert_eq!(
        git(&f.bare, &["rev-parse", &format!("{}^", h(&second.commit))]),
        h(&first.commit)
    );
    // A directory or a path through a file is not a file.
    for path in ["docs", "docs/a.txt/b"] {
        let err = f
            .repo
            .edit_file(&edit(Some(second.commit), path, None, Some(b"x")))
            .unwrap_err();
        assert!(matches!(err, WriteError::NotAFile(_)), "{path}: {err}");
    }
    // Deleting: unknown paths are not found; the last file takes its directory along.
    let err = f
        .repo
        .edit_file(&edit(Some(second.commit), "nope.txt", Some(blob), None))
        .unwrap_err();
    assert!(matches!(err, WriteError::FileNotFound(_)), "{err}");
    let two = second.blob.unwrap();
    let third = f
        .repo
        .edit_file(&edit(Some(second.commit), "docs/a.txt", Some(two), None))
        .unwrap();
    assert_eq!(third.blob, None);
    assert_eq!(git(&f.bare, &["ls-tree", "-r", &h(&third.commit)]), "");
    git(&f.bare, &["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn path_rules_by_example() {
    for ok in [
        "a",
        "a/b/c.txt",
        ".github/workflows/ci.yml",
        "x.git",
        ".gitignore",
        "é/ü",
    ] {
        assert_eq!(validate_path(ok), Ok(()), "{ok}");
    }
    for (bad, rule) in [
        ("", PathError::Empty),
        ("/etc/passwd", PathError::Absolute),
        ("a/../b", PathError::DotComponent),
        ("./a", PathError::DotComponent),
        ("a//b", PathError::EmptyComponent),
        ("a/", PathError::EmptyComponent),
        (".git/config", PathError::GitComponent),
        ("x/.GiT/hooks", PathError::GitComponent),
        (".git. ", PathError::GitComponent),
        ("GIT~1/config", PathError::GitComponent),
        (".g\u{200c}it/config", PathError::GitComponent),
        ("a\0b", PathError::Control),
        ("a\nb", PathError::Control),
        ("a\\..\\b", PathError::Backslash),
    ] {
        assert_eq!(validate_path(bad), Err(rule), "{bad:?}");
    }
    assert_eq!(
        validate_path(&"a".repeat(MAX_COMPONENT_BYTES + 1)),
        Err(PathError::ComponentTooLong)
    );
    assert_eq!(
        validate_path(&"a/".repeat(MAX_PATH_BYTES / 2 + 1)),
        Err(PathError::TooLong)
    );
}

/// A path component from the dangerous classes, in some spelling.
fn dangerous_component() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(".".to_string()),
        Just("..".to_string()),
        "[.][gG][iI][tT][. ]{0,3}",
        "[gG][iI][tT]~1",
        "[a-z]{0,3}\u{0}[a-z]{0,3}",
        "[a-z]{0,3}[\\\\][a-z]{0,3}",
        "[a-z]{0,3}[\u{1}-\u{1f}][a-z]{0,3}",
        "[a-z]{256,300}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any string is answered (no panic), and an accepted path has none of the
    /// dangerous forms.
    #[test]
    fn any_string_is_answered(path in any::<String>()) {
        if validate_path(&path).is_ok() {
            prop_assert!(!path.is_empty() && !path.starts_with('/'));
            prop_assert!(!path.contains('\0') && !path.contains('\\'));
            for c in path.split('/') {
                prop_assert!(!c.is_empty() && c != "." && c != "..");
                prop_assert!(c.to_lowercase().trim_end_matches(['.', ' ']) != ".git");
            }
        }
    }

    /// A dangerous component anywhere in an otherwise fine path refuses it.
    #[test]
    fn a_dangerous_component_anywhere_is_refused(
        before in proptest::collection::vec("[a-zA-Z0-9_-]{1,8}", 0..4),
        bad in dangerous_component(),
        after in proptest::collection::vec("[a-zA-Z0-9_.-]{1,8}", 0..4),
    ) {
        let path = before.iter().chain(std::iter::once(&bad)).chain(after.iter())
            .cloned().collect::<Vec<_>>().join("/");
        prop_assert!(validate_path(&path).is_err(), "{path:?}");
        let absolute = format!("/{}", before.join("/"));
        prop_assert!(validate_path(&absolute).is_err(), "{absolute:?}");
    }

    /// Paths of plain components are accepted.
    #[test]
    fn plain_paths_are_accepted(parts in proptest::collection::vec("[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,20}", 1..8)) {
        let path = parts.join("/");
        prop_assume!(!parts.iter().any(|p| p == "." || p == ".."));
        prop_assert_eq!(validate_path(&path), Ok(()));
    }
}
