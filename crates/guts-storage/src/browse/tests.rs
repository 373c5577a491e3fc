//! Tests of browsing, each against what git itself answers for the same repository
//! (log, show, ls-tree, diff, merge-base), and of the read budget.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::git::GitRepos;

/// A work tree made with the real `git` under `repos/t.git`, so [`GitRepos`]
/// opens it, with commit dates set by the test.
struct Fixture {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    repos: GitRepos,
}

const DAY: i64 = 86_400;
const T0: i64 = 1_600_000_000;

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let repos = GitRepos::open(tmp.path()).unwrap();
        let work = repos.path("t");
        std::fs::create_dir_all(&work).unwrap();
        let fx = Fixture {
            _tmp: tmp,
            work,
            repos,
        };
        fx.git(&["init", "--quiet", "-b", "main"]);
        fx
    }

    fn git_at(&self, date: i64, author: &str, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(&self.work)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", author)
            .env("GIT_AUTHOR_EMAIL", format!("{author}@example.com"))
            .env("GIT_COMMITTER_NAME", "Committer")
            .env("GIT_COMMITTER_EMAIL", "c@example.com")
            .env("GIT_AUTHOR_DATE", format!("@{date} +0200"))
            .env("GIT_COMMITTER_DATE", format!("@{date} +0200"))
            .args(["-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn git(&self, args: &[&str]) -> String {
        self.git_at(T0, "Alice", args)
    }

    /// Writes (`Some`) or deletes (`None`) files, commits everything at `date`.
    fn commit(&self, files: &[(&str, Option<&str>)], date: i64, author: &str) -> Oid {
        for (path, content) in files {
            let path = self.work.join(path);
            match content {
                Some(text) => {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, text).unwrap();
                }
                None => std::fs::remove_file(&path).unwrap(),
            }
        }
        self.git(&["add", "-A"]);
        self.git_at(
            date,
            author,
            &["commit", "--quiet", "--allow-empty", "-m", "m"],
        );
        self.oid("HEAD")
    }

    fn oid(&self, rev: &str) -> Oid {
        let hex = self.git(&["rev-parse", rev]);
        gix::ObjectId::from_hex(hex.as_bytes())
            .unwrap()
            .as_bytes()
            .try_into()
            .unwrap()
    }

    fn browser(&self) -> Browser {
        Browser::open(&self.repos, "t").unwrap()
    }

    /// `git <args>` output lines as object ids.
    fn oids(&self, args: &[&str]) -> Vec<Oid> {
        self.git(args).lines().map(|l| self.oid(l.trim())).collect()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// c1 adds a.txt and b/c.txt, c2 edits a.txt, c3 edits b/c.txt, c4 removes a.txt,
/// c5 adds d.txt; one day apart; c3 by Bob.
fn linear() -> (Fixture, Vec<Oid>) {
    let fx = Fixture::new();
    let ids = vec![
        fx.commit(
            &[("a.txt", Some("1\n2\n3\n")), ("b/c.txt", Some("x\n"))],
            T0,
            "Alice",
        ),
        fx.commit(&[("a.txt", Some("1\ntwo\n3\n4\n"))], T0 + DAY, "Alice"),
        fx.commit(&[("b/c.txt", Some("y\n"))], T0 + 2 * DAY, "Bob"),
        fx.commit(&[("a.txt", None)], T0 + 3 * DAY, "Alice"),
        fx.commit(&[("d.txt", Some("d\n"))], T0 + 4 * DAY, "Alice"),
    ];
    (fx, ids)
}

#[test]
fn log_with_a_path_lists_what_git_log_lists() {
    let (fx, ids) = linear();
    let b = fx.browser();
    let head = ids[4];
    for p in ["a.txt", "b", "b/c.txt", "d.txt", "nothing"] {
        let query = LogQuery {
            path: Some(p.to_string()),
            ..LogQuery::default()
        };
        let expected = fx.oids(&["log", "--format=%H", "--", p]);
        assert_eq!(b.log(&head, &query).unwrap(), expected, "path {p}");
    }
    assert_eq!(
        b.log(&head, &LogQuery::default()).unwrap(),
        fx.oids(&["log", "--format=%H"])
    );
    let a_history = LogQuery {
        path: Some("a.txt".into()),
        ..LogQuery::default()
    };
    assert_eq!(
        b.log(&head, &a_history).unwrap(),
        vec![ids[3], ids[1], ids[0]]
    );
}

#[test]
fn log_filters_by_date_and_author() {
    let (fx, ids) = linear();
    let b = fx.browser();
    let since = LogQuery {
        since: Some(T0 + 2 * DAY),
        ..LogQuery::default()
    };
    assert_eq!(
        b.log(&ids[4], &since).unwrap(),
        vec![ids[4], ids[3], ids[2]]
    );
    let until = LogQuery {
        until: Some(T0 + DAY),
        ..LogQuery::default()
    };
    assert_eq!(b.log(&ids[4], &until).unwrap(), vec![ids[1], ids[0]]);
    let window = LogQuery {
        since: Some(T0 + DAY),
        until: Some(T0 + 3 * DAY - 1),
        ..LogQuery::default()
    };
    assert_eq!(b.log(&ids[4], &window).unwrap(), vec![ids[2], ids[1]]);
    let bob = LogQuery {
        author: Some("BOB@example".into()),
        ..LogQuery::default()
    };
    assert_eq!(b.log(&ids[4], &bob).unwrap(), vec![ids[2]]);
    let by_name = LogQuery {
        author: Some("bob".into()),
        ..LogQuery::default()
    };
    assert_eq!(b.log(&ids[4], &by_name).unwrap(), vec![ids[2]]);
}

#[test]
fn commit_is_decoded_as_git_shows_it() {
    let (fx, ids) = linear();
    let c = fx.browser().commit(&ids[2]).unwrap();
    assert_eq!(c.parents, vec![ids[1]]);
    assert_eq!(c.tree, fx.oid(&format!("{}^{{tree}}", hex(&ids[2]))));
    assert_eq!(c.author.name, "Bob");
    assert_eq!(c.author.email, "Bob@example.com");
    assert_eq!(c.author.seconds, T0 + 2 * DAY);
    assert_eq!(c.author.offset, 7200);
    assert_eq!(c.committer.name, "Committer");
    assert_eq!(c.message, "m");
    assert!(matches!(
        fx.browser().commit(&c.tree),
        Err(BrowseError::NotFound { kind: "commit", .. })
    ));
}

#[test]
fn resolve_names_branches_tags_and_shas() {
    let (fx, ids) = linear();
    fx.git(&["tag", "-a", "-m", "v1", "v1", &hex(&ids[1])]);
    fx.git(&["tag", "light", &hex(&ids[2])]);
    fx.git(&["branch", "topic", &hex(&ids[3])]);
    let b = fx.browser();
    assert_eq!(b.resolve("main").unwrap(), ids[4]);
    assert_eq!(b.resolve("topic").unwrap(), ids[3]);
    assert_eq!(b.resolve("refs/heads/topic").unwrap(), ids[3]);
    assert_eq!(b.resolve("v1").unwrap(), ids[1]);
    assert_eq!(b.resolve("light").unwrap(), ids[2]);
    assert_eq!(b.resolve(&hex(&ids[0])).unwrap(), ids[0]);
    assert_eq!(b.resolve(&hex(&ids[0])[..10]).unwrap(), ids[0]);
    for bad in [
        "nope",
        "0000000000000000000000000000000000000000",
        "zz",
        "",
        "../x",
    ] {
        assert!(
            matches!(b.resolve(bad), Err(BrowseError::UnknownRevision(_))),
            "{bad}"
        );
    }
    // A tree's sha is an object but not a commit.
    let tree = hex(&b.commit(&ids[0]).unwrap().tree);
    assert!(b.resolve(&tree).is_err());
}

#[test]
fn trees_list_as_git_ls_tree_does() {
    let fx = Fixture::new();
    fx.commit(
        &[
            ("z.txt", Some("z\n")),
            ("a/b/c.txt", Some("abc\n")),
            ("a/b.txt", Some("hello\n")),
            ("a-b", Some("dash\n")),
        ],
        T0,
        "Alice",
    );
    let head = fx.oid("HEAD");
    let b = fx.browser();
    let names = |l: &TreeListing| l.entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
    let flat = b.tree(&head, false).unwrap();
    let git_flat: Vec<String> = fx
        .git(&["ls-tree", "--name-only", "HEAD"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(names(&flat), git_flat);
    assert_eq!(flat.id, fx.oid("HEAD^{tree}"));
    let deep = b.tree(&flat.id, true).unwrap();
    let git_deep: Vec<String> = fx
        .git(&["ls-tree", "-r", "-t", "--name-only", "HEAD"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(names(&deep), git_deep);
    assert!(!deep.truncated);
    for e in &deep.entries {
        let spec = format!("HEAD:{}", e.path);
        assert_eq!(e.id, fx.oid(&spec), "{}", e.path);
        match e.kind {
            EntryKind::File => {
                let size: u64 = fx.git(&["cat-file", "-s", &spec]).parse().unwrap();
                assert_eq!(e.size, Some(size));
                assert_eq!(e.mode, 0o100644);
            }
            _ => assert_eq!((e.kind, e.size, e.mode), (EntryKind::Dir, None, 0o40000)),
        }
    }
    let blob = deep.entries.iter().find(|e| e.path == "a/b.txt").unwrap();
    assert_eq!(b.blob(&blob.id, MAX_BLOB_BYTES).unwrap(), b"hello\n");
    assert!(matches!(
        b.blob(&blob.id, 3),
        Err(BrowseError::TooLarge { size: 6, .. })
    ));
    assert!(b.blob(&flat.id, MAX_BLOB_BYTES).is_err());
    assert!(b.tree(&blob.id, false).is_err());
}

#[test]
fn changes_match_git_diff_numstat_and_name_status() {
    let fx = Fixture::new();
    let lines: String = (0..50).map(|i| format!("line {i}\n")).collect();
    let base = fx.commit(
        &[
            ("keep.txt", Some(&lines)),
            ("gone.txt", Some("bye\n")),
            ("moved.txt", Some("I move\nintact\n")),
            ("bin.dat", Some("a\0b")),
        ],
        T0,
        "Alice",
    );
    let edited = lines.replace("line 10\n", "ten\n").replace("line 30\n", "") + "end\n";
    let head = fx.commit(
        &[
            ("keep.txt", Some(&edited)),
            ("gone.txt", None),
            ("moved.txt", None),
            ("dir/moved.txt", Some("I move\nintact\n")),
            ("new.txt", Some("n1\nn2\n")),
            ("bin.dat", Some("a\0c")),
        ],
        T0 + DAY,
        "Alice",
    );
    let b = fx.browser();
    let commit = b.commit(&head).unwrap();
    assert_eq!(commit.parents, vec![base]);
    let changes = b.commit_changes(&commit).unwrap();
    let status = |c: &FileChange| match c.status {
        ChangeStatus::Added => "A",
        ChangeStatus::Modified => "M",
        ChangeStatus::Removed => "D",
        ChangeStatus::Renamed => "R100",
    };
    let mut ours: Vec<String> = changes
        .iter()
        .map(|c| match &c.previous_path {
            Some(old) => format!("{}\t{old}\t{}", status(c), c.path),
            None => format!("{}\t{}", status(c), c.path),
        })
        .collect();
    ours.sort();
    let mut theirs: Vec<String> = fx
        .git(&["diff", "--name-status", "-M100%", "HEAD~", "HEAD"])
        .lines()
        .map(String::from)
        .collect();
    theirs.sort();
    assert_eq!(ours, theirs);
    for line in fx
        .git(&["diff", "--numstat", "-M100%", "HEAD~", "HEAD"])
        .lines()
    {
        let mut parts = line.split('\t');
        let (adds, dels, name) = (parts.next().unwrap(), parts.next().unwrap(), line);
        let change = changes
            .iter()
            .find(|c| name.ends_with(&c.path) || name.contains(&format!("=> {}", c.path)))
            .unwrap_or_else(|| panic!("{line}"));
        let expect = |n: &str| if n == "-" { 0 } else { n.parse().unwrap() };
        assert_eq!(
            (change.additions, change.deletions),
            (expect(adds), expect(dels)),
            "{line}"
        );
    }
    let root = b.commit_changes(&b.commit(&base).unwrap()).unwrap();
    assert!(root.iter().all(|c| c.status == ChangeStatus::Added));
    assert_eq!(root.len(), 4);
}

#[test]
fn compare_counts_ahead_and_behind_like_git() {
    let (fx, ids) = linear();
    fx.git(&["checkout", "--quiet", "-b", "topic", &hex(&ids[2])]);
    let t1 = fx.commit(&[("t.txt", Some("t\n"))], T0 + 10 * DAY, "Alice");
    let t2 = fx.commit(&[("t.txt", Some("tt\n"))], T0 + 11 * DAY, "Alice");
    let b = fx.browser();
    let diverged = b.compare(&ids[4], &t2).unwrap();
    assert_eq!(diverged.merge_base, Some(ids[2]));
    assert_eq!(diverged.ahead, vec![t1, t2]);
    assert_eq!(diverged.behind_by, 2);
    let counts = fx.git(&["rev-list", "--left-right", "--count", "main...topic"]);
    assert_eq!(counts, "2\t2");

    let behind = b.compare(&ids[4], &ids[1]).unwrap();
    assert_eq!((behind.ahead.len(), behind.behind_by), (0, 3));
    let ahead = b.compare(&ids[1], &ids[4]).unwrap();
    assert_eq!(ahead.ahead, vec![ids[2], ids[3], ids[4]]);
    assert_eq!((ahead.merge_base, ahead.behind_by), (Some(ids[1]), 0));
    let same = b.compare(&ids[3], &ids[3]).unwrap();
    assert_eq!((same.ahead.len(), same.behind_by), (0, 0));

    // A merge back into main: git log with a path keeps git's simplification.
    fx.git(&["checkout", "--quiet", "main"]);
    fx.git_at(
        T0 + 12 * DAY,
        "Alice",
        &["merge", "--quiet", "--no-edit", "topic"],
    );
    let head = fx.oid("HEAD");
    for p in ["t.txt", "a.txt", "b/c.txt", "d.txt"] {
        let query = LogQuery {
            path: Some(p.to_string()),
            ..LogQuery::default()
        };
        assert_eq!(
            b.log(&head, &query).unwrap(),
            fx.oids(&["log", "--format=%H", "--", p]),
            "path {p} at {}",
            path(&fx.work)
        );
    }
    assert_eq!(
        b.log(&head, &LogQuery::default()).unwrap(),
        fx.oids(&["log", "--format=%H"])
    );
}

#[test]
fn paths_resolve_to_files_directories_or_nothing() {
    let (fx, ids) = linear();
    let b = fx.browser();
    match b.at_path(&ids[4], "b/c.txt", MAX_BLOB_BYTES).unwrap() {
        Some(PathContent::Blob { entry, data }) => {
            assert_eq!(
                (entry.path.as_str(), data.as_deref()),
                ("b/c.txt", Some(&b"y\n"[..]))
            );
        }
        other => panic!("{other:?}"),
    }
    match b.at_path(&ids[4], "/b/", MAX_BLOB_BYTES).unwrap() {
        Some(PathContent::Dir(entries)) => assert_eq!(entries[0].path, "b/c.txt"),
        other => panic!("{other:?}"),
    }
    match b.at_path(&ids[4], "", MAX_BLOB_BYTES).unwrap() {
        Some(PathContent::Dir(entries)) => {
            let names: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(names, ["b", "d.txt"]);
        }
        other => panic!("{other:?}"),
    }
    for missing in ["a.txt", "b/c.txt/x", "b/nope", "zz/y"] {
        assert_eq!(
            b.at_path(&ids[4], missing, MAX_BLOB_BYTES).unwrap(),
            None,
            "{missing}"
        );
    }
}

#[test]
fn line_changes_count_a_minimal_diff() {
    assert_eq!(line_changes(b"", b""), (0, 0));
    assert_eq!(line_changes(b"", b"a\nb\n"), (2, 0));
    assert_eq!(line_changes(b"a\nb\n", b""), (0, 2));
    assert_eq!(line_changes(b"a\nb\nc\n", b"a\nB\nc\n"), (1, 1));
    assert_eq!(line_changes(b"a\nb\nc\nd\n", b"b\nc\nd\ne\n"), (1, 1));
    assert_eq!(line_changes(b"a\nb", b"a\nb\n"), (1, 1));
    assert_eq!(line_changes(b"x\ny\nz\n", b"z\ny\nx\n"), (2, 2));
}

/// `git diff` of one path between HEAD~ and HEAD, from its first hunk on, as
/// GitHub's `patch` holds it (no trailing newline).
fn git_patch(fx: &Fixture, path: &str) -> String {
    let diff = fx.git(&["diff", "-U3", "HEAD~", "HEAD", "--", path]);
    let at = diff.find("@@").unwrap_or_else(|| panic!("no hunk: {diff}"));
    diff[at..].to_string()
}

#[test]
fn patches_are_git_diffs_hunks() {
    let fx = Fixture::new();
    let long: String = (0..60).map(|i| format!("line {i}\n")).collect();
    let code: String = std::iter::once("fn main() {\n".to_string())
        .chain((0..6).map(|i| format!("    let x{i} = {i};\n")))
        .chain(std::iter::once("}\n".to_string()))
        .collect();
    fx.commit(
        &[
            ("long.txt", Some(&long)),
            ("code.rs", Some(&code)),
            ("tail.txt", Some("a\nb\nc")),
            ("gone.txt", Some("one\ntwo\n")),
        ],
        T0,
        "Alice",
    );
    // Two changes far apart (two hunks), two close together (one hunk), a line
    // appended, a last line without its newline, a removal, an addition.
    let edited = long
        .replace("line 3\n", "three\n")
        .replace("line 30\n", "")
        .replace("line 34\n", "thirty-four\nmore\n")
        + "end\n";
    let code2 = code.replace("let x4 = 4;", "let x4 = 40;");
    let head = fx.commit(
        &[
            ("long.txt", Some(&edited)),
            ("code.rs", Some(&code2)),
            ("tail.txt", Some("a\nB\nc")),
            ("gone.txt", None),
            ("new.txt", Some("n1\nn2")),
        ],
        T0 + DAY,
        "Alice",
    );
    let b = fx.browser();
    let changes = b.commit_changes(&b.commit(&head).unwrap()).unwrap();
    assert_eq!(changes.len(), 5);
    for change in &changes {
        let patch = change
            .patch
            .as_deref()
            .unwrap_or_else(|| panic!("{change:?}"));
        assert_eq!(patch, git_patch(&fx, &change.path), "{}", change.path);
        let plus = patch.lines().filter(|l| l.starts_with('+')).count();
        let minus = patch.lines().filter(|l| l.starts_with('-')).count();
        assert_eq!((change.additions, change.deletions), (plus, minus));
    }
    let code = changes.iter().find(|c| c.path == "code.rs").unwrap();
    assert!(
        code.patch
            .as_deref()
            .unwrap()
            .starts_with("@@ -3,6 +3,6 @@ fn main() {\n"),
        "{code:?}"
    );
}

#[test]
fn big_blobs_are_listed_without_patch_and_never_inflated() {
    let fx = Fixture::new();
    fx.commit(&[("small.txt", Some("a\n"))], T0, "Alice");
    let big = "\n".repeat(MAX_DIFF_BLOB_BYTES as usize + 1);
    let head = fx.commit(
        &[("small.txt", Some("a\nb\n")), ("big.txt", Some(&big))],
        T0 + DAY,
        "Alice",
    );
    let b = fx.browser();
    let changes = b.commit_changes(&b.commit(&head).unwrap()).unwrap();
    let big = changes.iter().find(|c| c.path == "big.txt").unwrap();
    assert_eq!(big.status, ChangeStatus::Added);
    assert_eq!(
        (big.additions, big.deletions, big.patch.as_deref()),
        (0, 0, None)
    );
    let small = changes.iter().find(|c| c.path == "small.txt").unwrap();
    assert_eq!((small.additions, small.deletions), (1, 0));
    assert_eq!(small.patch.as_deref(), Some("@@ -1 +1,2 @@\n a\n+b"));
    // Only the small file's two sides were read.
    assert_eq!(b.budget_left(), READ_BUDGET_BYTES - 2 - 4);
}

#[test]
fn patches_stop_at_the_line_limits() {
    let fx = Fixture::new();
    fx.commit(&[("seed.txt", Some("s\n"))], T0, "Alice");
    let lines =
        |n: usize, tag: &str| -> String { (0..n).map(|i| format!("{tag} {i}\n")).collect() };
    let over = lines(MAX_PATCH_LINES_PER_FILE + 1, "over");
    let at_limit = lines(MAX_PATCH_LINES_PER_FILE, "at");
    // 2,999 changed lines each: six fit in 20,000, the seventh does not.
    let files: Vec<(String, String)> = (0..7)
        .map(|i| (format!("f{i}.txt"), lines(2_999, &format!("f{i}"))))
        .collect();
    let mut edits: Vec<(&str, Option<&str>)> =
        vec![("a-over.txt", Some(&over)), ("a-at.txt", Some(&at_limit))];
    edits.extend(files.iter().map(|(p, c)| (p.as_str(), Some(c.as_str()))));
    let head = fx.commit(&edits, T0 + DAY, "Alice");
    let b = fx.browser();
    let changes = b.commit_changes(&b.commit(&head).unwrap()).unwrap();
    let find = |p: &str| changes.iter().find(|c| c.path == p).unwrap();
    let over = find("a-over.txt");
    assert_eq!((over.additions, over.patch.is_none()), (3_001, true));
    let at = find("a-at.txt");
    assert_eq!((at.additions, at.patch.is_some()), (3_000, true));
    // 3,000 + 5 × 2,999 = 17,995 lines of patches; the sixth file would make
    // 20,994.
    let with_patch: Vec<&str> = changes
        .iter()
        .filter(|c| c.path.starts_with('f') && c.patch.is_some())
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(
        with_patch,
        ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt"]
    );
    assert!(
        changes
            .iter()
            .all(|c| c.path == "seed.txt" || c.additions > 0)
    );
}

#[test]
fn a_request_reads_at_most_its_budget() {
    let fx = Fixture::new();
    fx.commit(&[("seed.txt", Some("s\n"))], T0, "Alice");
    // 33 files of 1 MiB each (the largest diffed): 33 MiB, one more than the budget.
    let files: Vec<(String, String)> = (0..33)
        .map(|i| {
            let line = format!("{i:07}\n");
            (
                format!("f{i:02}.txt"),
                line.repeat(MAX_DIFF_BLOB_BYTES as usize / 8),
            )
        })
        .collect();
    let edits: Vec<(&str, Option<&str>)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), Some(c.as_str())))
        .collect();
    let head = fx.commit(&edits, T0 + DAY, "Alice");
    let b = fx.browser();
    let changes = b.commit_changes(&b.commit(&head).unwrap()).unwrap();
    let counted = changes.iter().filter(|c| c.additions > 0).count();
    assert_eq!(counted, 32, "the 33rd file is past the budget");
    assert_eq!(b.budget_left(), 0);
    // And a served blob is refused, from its header, once nothing is left.
    let blob = changes[0].new_id.unwrap();
    assert!(matches!(
        b.blob(&blob, MAX_BLOB_BYTES),
        Err(BrowseError::TooLarge { max: 0, .. })
    ));
    // A fresh request may read it.
    assert_eq!(
        fx.browser().blob(&blob, MAX_BLOB_BYTES).unwrap().len(),
        1 << 20
    );
}

/// Resolving a delta holds its base and result at once; gix checks their declared
/// sizes against the budget before allocating, so a blob whose header looks small
/// enough cannot make a request hold more (here two 20 MiB blobs, one a delta of
/// the other: 40 MiB to resolve it).
#[test]
fn a_delta_is_refused_when_resolving_it_would_exceed_the_budget() {
    let fx = Fixture::new();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let base: Vec<u8> = (0..20 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let mut longer = base.clone();
    longer.extend_from_slice(b"and a little more");
    for (content, message) in [(&base, "base"), (&longer, "longer")] {
        std::fs::write(fx.work.join("data.bin"), content).unwrap();
        fx.git(&["add", "data.bin"]);
        fx.git_at(T0, "Alice", &["commit", "--quiet", "-m", message]);
    }
    fx.git(&["repack", "-a", "-d", "-f", "-q"]);
    let ids = [fx.oid("HEAD~:data.bin"), fx.oid("HEAD:data.bin")];
    // git stored one of them as a delta of the other.
    let bases = Command::new("git")
        .current_dir(&fx.work)
        .args(["cat-file", "--batch-check=%(objectname) %(deltabase)"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            for id in &ids {
                writeln!(stdin, "{}", hex(id))?;
            }
            drop(stdin);
            child.wait_with_output()
        })
        .unwrap();
    let bases = String::from_utf8(bases.stdout).unwrap();
    let delta = ids
        .iter()
        .find(|id| {
            bases.contains(&format!("{} {}", hex(id), hex(&ids[0])))
                || bases.contains(&format!("{} {}", hex(id), hex(&ids[1])))
        })
        .unwrap_or_else(|| panic!("no delta: {bases}"));
    let whole = ids.iter().find(|id| *id != delta).unwrap();
    let b = fx.browser();
    match b.blob(delta, MAX_BLOB_BYTES) {
        Err(BrowseError::TooLarge { size, max, .. }) => {
            assert!(size < READ_BUDGET_BYTES && max == READ_BUDGET_BYTES)
        }
        other => panic!("{other:?}"),
    }
    // The one stored whole is within the budget.
    let data = fx.browser().blob(whole, MAX_BLOB_BYTES).unwrap();
    assert!(data.len() >= base.len());
}

#[test]
fn objects_over_the_budget_are_refused_without_inflating() {
    let fx = Fixture::new();
    let huge = vec![0u8; READ_BUDGET_BYTES as usize + 1];
    std::fs::write(fx.work.join("huge.bin"), &huge).unwrap();
    fx.git(&["add", "huge.bin"]);
    fx.git_at(T0, "Alice", &["commit", "--quiet", "-m", "huge"]);
    let head = fx.oid("HEAD");
    let id = fx.oid("HEAD:huge.bin");
    let b = fx.browser();
    assert!(matches!(
        b.blob(&id, MAX_BLOB_BYTES),
        Err(BrowseError::TooLarge {
            max: READ_BUDGET_BYTES,
            ..
        })
    ));
    // Asking for it as a commit or a revision inflates nothing either.
    assert!(matches!(
        b.resolve(&hex(&id)),
        Err(BrowseError::UnknownRevision(_))
    ));
    assert!(matches!(b.commit(&id), Err(BrowseError::TooLarge { .. })));
    assert_eq!(b.budget_left(), READ_BUDGET_BYTES);
    // Its entry is still listed, with its size, and a diff names it.
    let changes = b.commit_changes(&b.commit(&head).unwrap()).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].patch, None);
    match b.at_path(&head, "huge.bin", MAX_BLOB_BYTES).unwrap() {
        Some(PathContent::Blob { entry, data: None }) => {
            assert_eq!(entry.size, Some(READ_BUDGET_BYTES + 1));
        }
        other => panic!("{other:?}"),
    }
}

/// The cursor reads a tree's entries as the whole listing does (kinds, modes, sizes,
/// paths under the prefix), and the README, languages and authors reads find what git
/// holds.
#[test]
fn cursor_readme_languages_and_authors() {
    let fx = Fixture::new();
    fx.commit(
        &[
            ("README.md", Some("# t\n")),
            ("docs/readme.rst", Some("docs\n")),
            ("src/lib.rs", Some("fn f() {}\n")),
            ("run.sh", Some("echo\n")),
        ],
        T0,
        "Alice",
    );
    use std::os::unix::fs::PermissionsExt as _;
    let exec = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(fx.work.join("run.sh"), exec).unwrap();
    std::os::unix::fs::symlink("README.md", fx.work.join("link")).unwrap();
    let head = fx.commit(&[("x.py", Some("print(1)\n"))], T0 + DAY, "Bob");
    let b = fx.browser();
    let root = b.commit(&head).unwrap().tree;
    let mut cursor = b.tree_cursor(&root, "pre").unwrap();
    let mut seen = Vec::new();
    while let Some(e) = cursor.next(&b).unwrap() {
        seen.push(e);
    }
    assert_eq!(seen, b.entries(&root, "pre").unwrap());
    assert!(
        seen.iter()
            .any(|e| e.kind == EntryKind::Symlink && e.mode == 0o120000)
    );
    assert!(
        seen.iter()
            .any(|e| e.path == "pre/run.sh" && e.mode == 0o100755)
    );

    let readme = b.readme(&head, None, 1024).unwrap().unwrap();
    assert_eq!(readme.entry.path, "README.md");
    assert_eq!(readme.data.as_deref(), Some(&b"# t\n"[..]));
    let docs = b.readme(&head, Some("docs"), 1024).unwrap().unwrap();
    assert_eq!(docs.entry.path, "docs/readme.rst");
    assert!(b.readme(&head, Some("src"), 1024).unwrap().is_none());

    assert_eq!(
        b.languages(&head).unwrap(),
        vec![("Rust", 10), ("Python", 9), ("Shell", 5)]
    );
    let authors = b.authors(&head).unwrap();
    assert!(!authors.truncated);
    let names: Vec<_> = authors
        .authors
        .iter()
        .map(|a| (a.email.as_str(), a.commits))
        .collect();
    assert_eq!(names, [("Bob@example.com", 1), ("Alice@example.com", 1)]);
}
