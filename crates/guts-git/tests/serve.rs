//! In-process tests of the git servers (`guts_git::serve`) without HTTP: repositories
//! are made with the real `git` binary, opened through guts-storage, and what the
//! servers select, send and accept is checked against what git itself says (rev-list,
//! index-pack, verify-pack, cat-file).

#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use guts_core::{Keypair, RepoId};
use guts_git::pktline::{self, Band, Packet, PktReader};
use guts_git::serve::walk::{self, Graph, Plan, PlanCache, WalkRequest};
use guts_git::serve::{Protocol, PushOutcome, ServeError, ingest, receive_pack, upload_pack};
use guts_git::{Deepen, Oid};
use guts_storage::{
    GitRepo, GitRepos, RefCommand, Repositories, StorageMetrics, Store, WriterHandle,
};

// Commit `n` of a fixture is made at `T0 + 10 n`: distinct, increasing times, so the
// walk's newest-first order is known.
mod common;
use common::{T0, git, git_bytes, try_git};

/// The repository id (directory name) the fixtures use under `repos/`.
fn repo_id() -> String {
    "ab".repeat(32)
}

// ---------------------------------------------------------------------------------
// Running git
// ---------------------------------------------------------------------------------

/// The first word of each line (the object id, in `rev-list --objects` output).
fn first_words(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------

/// A `git fast-import` stream. Commit `n` is made at `T0 + 10 n` with message
/// `commit n`, so ids are the same every run.
#[derive(Debug, Default, Clone)]
struct History {
    stream: String,
}

impl History {
    fn data(&mut self, content: &str) {
        self.stream
            .push_str(&format!("data {}\n{content}\n", content.len()));
    }

    fn commit(mut self, mark: u32, branch: &str, parents: &[u32], files: &[(&str, &str)]) -> Self {
        if parents.is_empty() {
            self.stream
                .push_str(&format!("reset refs/heads/{branch}\n\n"));
        }
        let time = T0 + 10 * i64::from(mark);
        self.stream.push_str(&format!(
            "commit refs/heads/{branch}\nmark :{mark}\ncommitter t <t@t> {time} +0000\n"
        ));
        self.data(&format!("commit {mark}\n"));
        for (i, parent) in parents.iter().enumerate() {
            let word = if i == 0 { "from" } else { "merge" };
            self.stream.push_str(&format!("{word} :{parent}\n"));
        }
        for (path, content) in files {
            self.stream.push_str(&format!("M 100644 inline {path}\n"));
            self.data(content);
        }
        self.stream.push('\n');
        self
    }
}

/// A bare repository at `<data>/repos/<repo_id>.git`, filled by fast-import.
#[derive(Debug)]
struct Fixture {
    tmp: tempfile::TempDir,
    data: PathBuf,
    git_dir: PathBuf,
    marks: BTreeMap<u32, String>,
}

impl Fixture {
    fn new(history: &History) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("repos")).unwrap();
        let git_dir = data.join("repos").join(format!("{}.git", repo_id()));
        git(
            tmp.path(),
            &[
                "init",
                "-q",
                "--bare",
                "-b",
                "main",
                git_dir.to_str().unwrap(),
            ],
        );
        let marks_file = tmp.path().join("marks");
        let export = format!("--export-marks={}", marks_file.display());
        git_bytes(
            &git_dir,
            &["fast-import", "--quiet", &export],
            history.stream.as_bytes(),
        );
        let marks = std::fs::read_to_string(&marks_file)
            .unwrap()
            .lines()
            .map(|l| {
                let (mark, id) = l.split_once(' ').unwrap();
                (mark.trim_start_matches(':').parse().unwrap(), id.to_owned())
            })
            .collect();
        Fixture {
            tmp,
            data,
            git_dir,
            marks,
        }
    }

    /// Commit `mark`'s id in hex.
    fn at(&self, mark: u32) -> String {
        self.marks
            .get(&mark)
            .cloned()
            .unwrap_or_else(|| panic!("no commit :{mark}"))
    }

    fn oid(&self, mark: u32) -> Oid {
        oid(&self.at(mark))
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.git_dir, args)
    }

    fn repos(&self) -> GitRepos {
        GitRepos::open(&self.data).unwrap()
    }

    fn open(&self) -> GitRepo {
        self.repos().open_repo(&repo_id()).unwrap()
    }

    /// An empty repository beside the fixture's, opened the same way.
    fn empty_repo(&self) -> GitRepo {
        let id = "cd".repeat(32);
        let path = self.data.join("repos").join(format!("{id}.git"));
        git(
            self.tmp.path(),
            &["init", "-q", "--bare", "-b", "main", path.to_str().unwrap()],
        );
        self.repos().open_repo(&id).unwrap()
    }

    /// `git rev-list --objects <args>`, as a set of ids.
    fn rev_list(&self, args: &[&str]) -> BTreeSet<String> {
        let mut full = vec!["rev-list", "--objects"];
        full.extend_from_slice(args);
        first_words(&self.git(&full))
    }

    /// The commits of `git rev-list <args>`, in git's order.
    fn commits(&self, args: &[&str]) -> Vec<String> {
        let mut full = vec!["rev-list"];
        full.extend_from_slice(args);
        self.git(&full).lines().map(str::to_owned).collect()
    }

    /// Commit `rev`'s root tree and every tree and blob below it.
    fn tree_objects(&self, rev: &str) -> BTreeSet<String> {
        let mut set: BTreeSet<String> = self
            .git(&["ls-tree", "-r", "-t", rev])
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            .map(str::to_owned)
            .collect();
        set.insert(self.git(&["rev-parse", &format!("{rev}^{{tree}}")]));
        set
    }

    /// `git pack-objects --stdout <args>` with `input` on stdin.
    fn pack_objects(&self, args: &[&str], input: &str) -> Vec<u8> {
        let mut full = vec!["pack-objects", "--stdout", "-q"];
        full.extend_from_slice(args);
        git_bytes(&self.git_dir, &full, input.as_bytes())
    }

    fn quarantines_left(&self) -> Vec<PathBuf> {
        quarantines_left(&self.data)
    }
}

fn quarantines_left(data: &Path) -> Vec<PathBuf> {
    // GitRepos::open creates `repos/.tmp`; quarantines are made in it.
    std::fs::read_dir(data.join("repos").join(".tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("incoming-"))
        })
        .collect()
}

fn oid(hex: &str) -> Oid {
    Oid::from_hex(hex.as_bytes()).unwrap()
}

fn gix_id(hex: &str) -> gix::ObjectId {
    gix::ObjectId::from_hex(hex.as_bytes()).unwrap()
}

fn hexes(ids: &[gix::ObjectId]) -> BTreeSet<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// Two branches joined by a merge, a third with a disjoint root, and tags:
///
/// ```text
/// main:  1 -- 2 -- 3 -- 5 (merge of 3 and 4)      tag v1 (annotated) -> 2
///         \            /                          tag light          -> 4
/// side:    `--- 4 ----'                           tag ot (annotated)  -> 6
/// other: 6 -- 7  (no common history)
/// ```
fn rich() -> Fixture {
    let history = History::default()
        .commit(
            1,
            "main",
            &[],
            &[
                ("a.txt", "one\n"),
                ("dir/b.txt", "b\n"),
                ("dir/sub/c.txt", "c\n"),
            ],
        )
        .commit(2, "main", &[1], &[("a.txt", "two\n")])
        .commit(3, "main", &[2], &[("dir/sub/d.txt", "d\n")])
        .commit(4, "side", &[1], &[("dir/b.txt", "b2\n")])
        .commit(5, "main", &[3, 4], &[("dir/b.txt", "b2\n")])
        .commit(6, "other", &[], &[("x.txt", "x\n")])
        // Shares a blob with commit 1 (a.txt = one).
        .commit(7, "other", &[6], &[("x.txt", "y\n"), ("a.txt", "one\n")]);
    let f = Fixture::new(&history);
    f.git(&["tag", "-a", "-m", "v1", "v1", &f.at(2)]);
    f.git(&["tag", "light", &f.at(4)]);
    f.git(&["tag", "-a", "-m", "ot", "ot", &f.at(6)]);
    f
}

/// A linear history of `n` commits on main, each changing `a.txt` and `dir/n.txt`
/// (so every commit has a new root tree, a new `dir` tree and new blobs), with a file
/// that never changes.
fn linear(n: u32) -> Fixture {
    let mut history = History::default();
    for i in 1..=n {
        let a = format!("version {i}\n");
        let num = format!("{i}\n");
        let mut files = vec![("a.txt", a.as_str()), ("dir/n.txt", num.as_str())];
        if i == 1 {
            files.push(("same.txt", "unchanged\n"));
        }
        let parents: Vec<u32> = if i == 1 { vec![] } else { vec![i - 1] };
        history = history.commit(i, "main", &parents, &files);
    }
    Fixture::new(&history)
}

/// A linear history of `n` commits, each editing a few lines of a 16 KiB file, so
/// `pack-objects` stores later versions as deltas (and `--thin` against earlier ones).
fn big_linear(n: u32) -> Fixture {
    let mut history = History::default();
    let mut lines: Vec<String> = (0..300)
        .map(|i| format!("line {i:03} of a file large enough to be worth a delta\n"))
        .collect();
    for i in 1..=n {
        for k in 0..3 {
            let at = (i as usize * 37 + k * 101) % lines.len();
            lines[at] = format!("line {at:03} edited by commit {i}\n");
        }
        let big: String = lines.concat();
        let num = format!("{i}\n");
        let parents: Vec<u32> = if i == 1 { vec![] } else { vec![i - 1] };
        history = history.commit(
            i,
            "main",
            &parents,
            &[("big.txt", big.as_str()), ("n.txt", num.as_str())],
        );
    }
    Fixture::new(&history)
}

// ---------------------------------------------------------------------------------
// Packs and pkt-lines
// ---------------------------------------------------------------------------------

/// Indexes `pack` alone with `git index-pack` (which refuses a thin or corrupt pack)
/// and lists its objects with `git verify-pack`.
fn objects_of_pack(pack: &[u8]) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.pack"), pack).unwrap();
    git(dir.path(), &["index-pack", "p.pack"]);
    let listing = git(dir.path(), &["verify-pack", "-v", "p.idx"]);
    let objects: BTreeSet<String> = listing
        .lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            let id = words.next().unwrap_or_default();
            let kind = words.next().unwrap_or_default();
            id.len() == 40 && ["commit", "tree", "blob", "tag"].contains(&kind)
        })
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        pack_header_count(pack),
        objects.len(),
        "the pack header's object count"
    );
    objects
}

fn pack_header_count(pack: &[u8]) -> usize {
    assert_eq!(pack.get(..4), Some(&b"PACK"[..]), "not a pack");
    let count: [u8; 4] = pack[8..12].try_into().unwrap();
    u32::from_be_bytes(count) as usize
}

fn pkt_line(out: &mut Vec<u8>, text: &str) {
    pktline::write_data(out, format!("{text}\n").as_bytes()).unwrap();
}

fn flush(out: &mut Vec<u8>) {
    pktline::write_flush(out).unwrap();
}

fn delim(out: &mut Vec<u8>) {
    pktline::write_delim(out).unwrap();
}

/// An upload-pack response: its pkt-lines (`<flush>` and `<delim>` marked), and what
/// came in side-band bands 1 (the pack) and 2 (progress).
#[derive(Debug, Default)]
struct Response {
    lines: Vec<String>,
    pack: Vec<u8>,
    progress: String,
    errors: String,
}

/// Parses a response whose pack, if any, is side-band multiplexed.
fn parse_sideband_response(out: &[u8]) -> Response {
    let mut response = Response::default();
    let mut in_pack = false;
    for packet in PktReader::new(out) {
        match packet.unwrap() {
            Packet::Data(data) if in_pack || matches!(data.first(), Some(1..=3)) => {
                in_pack = true;
                let (band, bytes) = pktline::split_sideband(data).unwrap();
                match band {
                    Band::Data => response.pack.extend_from_slice(bytes),
                    Band::Progress => response.progress.push_str(&String::from_utf8_lossy(bytes)),
                    Band::Error => response.errors.push_str(&String::from_utf8_lossy(bytes)),
                }
            }
            Packet::Data(data) => response
                .lines
                .push(String::from_utf8(pktline::chomp(data).to_vec()).unwrap()),
            Packet::Flush => response.lines.push("<flush>".to_owned()),
            Packet::Delim => response.lines.push("<delim>".to_owned()),
            Packet::ResponseEnd => response.lines.push("<response-end>".to_owned()),
        }
    }
    response
}

fn serve_upload(
    repo: &GitRepo,
    protocol: Protocol,
    body: &[u8],
) -> (Vec<u8>, Result<usize, ServeError>) {
    let mut out = Vec::new();
    let plans = PlanCache::new(0);
    let result = upload_pack(repo, &plans, protocol, &mut &body[..], &mut out, 1 << 20)
        .map(|o| o.pack.map(|p| p.objects).unwrap_or(0));
    (out, result)
}

fn graph_commits_parsed(graph: &Graph<'_>) -> usize {
    // `Graph`'s Debug shows how many commits it has parsed: the only public window on
    // how much history a walk read.
    let debug = format!("{graph:?}");
    debug
        .split("commits:")
        .nth(1)
        .and_then(|rest| rest.trim().trim_end_matches('}').trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected Debug of Graph: {debug}"))
}

// ---------------------------------------------------------------------------------
// 1. walk::plan and PlanCache for a full clone
// ---------------------------------------------------------------------------------

#[test]
fn full_clone_plan_is_exactly_rev_list_objects_with_commits_first() {
    let f = rich();
    let repo = f.open();
    let mut graph = Graph::new(repo.gix());

    let req = WalkRequest {
        wants: vec![f.oid(5), f.oid(7)],
        ..WalkRequest::default()
    };
    let plan = walk::plan(&mut graph, &req).unwrap();
    let expected = f.rev_list(&[&f.at(5), &f.at(7)]);
    // Every commit, tree and blob of both histories (7 commits, shared blobs once).
    assert!(expected.len() > 15, "{expected:?}");
    assert_eq!(hexes(&plan.objects), expected);
    assert_eq!(plan.objects.len(), expected.len(), "no object twice");
    assert!(plan.shallow.is_empty() && plan.unshallow.is_empty());

    // Commits first, newest first (times increase with the mark), then no commit.
    assert_eq!(plan.commits, 7);
    let newest_first: Vec<String> = [7, 6, 5, 4, 3, 2, 1].iter().map(|m| f.at(*m)).collect();
    let head: Vec<String> = plan.objects[..plan.commits]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(head, newest_first);
    for id in &plan.objects[plan.commits..] {
        let kind = repo.gix().find_header(*id).unwrap().kind();
        assert_ne!(kind, gix::object::Kind::Commit, "{id} after the commits");
    }

    // An annotated tag wanted: the tag object and its commit's history.
    let v1 = f.git(&["rev-parse", "refs/tags/v1"]);
    let plan = walk::plan(
        &mut graph,
        &WalkRequest {
            wants: vec![oid(&v1)],
            ..WalkRequest::default()
        },
    )
    .unwrap();
    assert_eq!(hexes(&plan.objects), f.rev_list(&[&v1]));
    assert!(hexes(&plan.objects).contains(&v1));

    // A tree wanted: the tree and everything below it.
    let tree = f.git(&["rev-parse", &format!("{}^{{tree}}", f.at(3))]);
    let plan = walk::plan(
        &mut graph,
        &WalkRequest {
            wants: vec![oid(&tree)],
            ..WalkRequest::default()
        },
    )
    .unwrap();
    assert_eq!(hexes(&plan.objects), f.rev_list(&[&tree]));
    assert_eq!(plan.commits, 0);

    // An unknown want is refused, naming it.
    let unknown = "1234567890123456789012345678901234567890";
    let err = walk::plan(
        &mut graph,
        &WalkRequest {
            wants: vec![oid(unknown)],
            ..WalkRequest::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, ServeError::Refused(m) if m.contains(unknown)),
        "{err:?}"
    );
}

#[test]
fn plan_cache_serves_repeated_full_clones_and_applies_include_tag_per_request() {
    let f = rich();
    let repo = f.open();
    let empty = f.empty_repo();
    let mut graph = Graph::new(repo.gix());
    // A graph over an empty repository cannot plan anything: a plan obtained through it
    // can only have come from the cache.
    let mut empty_graph = Graph::new(empty.gix());

    let v1 = f.git(&["rev-parse", "refs/tags/v1"]);
    let ot = f.git(&["rev-parse", "refs/tags/ot"]);
    let tags = vec![(vec![oid(&v1)], f.oid(2)), (vec![oid(&ot)], f.oid(6))];
    let clone = WalkRequest {
        wants: vec![f.oid(5)],
        include_tags: tags.clone(),
        ..WalkRequest::default()
    };
    assert!(walk::plan(&mut empty_graph, &clone).is_err());

    let history = f.rev_list(&[&f.at(5)]);
    let mut with_v1 = history.clone();
    with_v1.insert(v1.clone());

    let cache = PlanCache::new(4);
    let first = cache.plan("rich", &mut graph, &clone).unwrap();
    // v1 tags commit 2, which is sent; ot tags commit 6, which is not.
    assert_eq!(hexes(&first.objects), with_v1);
    assert_eq!(
        first.objects.last().map(ToString::to_string),
        Some(v1.clone())
    );

    // Second time, from the cache: the same plan, though the graph knows nothing.
    let second = cache.plan("rich", &mut empty_graph, &clone).unwrap();
    assert_eq!(second.objects, first.objects);
    assert_eq!(second.commits, first.commits);

    // include-tag is applied per request, not cached: without tags, no tag object.
    let untagged = WalkRequest {
        include_tags: Vec::new(),
        ..clone.clone()
    };
    let third = cache.plan("rich", &mut empty_graph, &untagged).unwrap();
    assert_eq!(hexes(&third.objects), history);

    // The wants are a set: order and duplicates do not miss the cache.
    let dup = WalkRequest {
        wants: vec![f.oid(5), f.oid(5)],
        ..clone.clone()
    };
    let fourth = cache.plan("rich", &mut empty_graph, &dup).unwrap();
    assert_eq!(hexes(&fourth.objects), with_v1);

    // Another repository key, other wants, or a request that is not a plain full clone
    // (haves, shallow) is not served from the cache.
    assert!(cache.plan("other", &mut empty_graph, &clone).is_err());
    let other_wants = WalkRequest {
        wants: vec![f.oid(5), f.oid(7)],
        ..clone.clone()
    };
    assert!(cache.plan("rich", &mut empty_graph, &other_wants).is_err());
    let incremental = WalkRequest {
        common: vec![f.oid(2)],
        ..clone.clone()
    };
    assert!(cache.plan("rich", &mut empty_graph, &incremental).is_err());
    let shallow = WalkRequest {
        deepen: Some(Deepen::Depth(1)),
        ..clone.clone()
    };
    assert!(cache.plan("rich", &mut empty_graph, &shallow).is_err());

    // A cache of capacity 0 keeps nothing.
    let none = PlanCache::new(0);
    none.plan("rich", &mut graph, &clone).unwrap();
    assert!(none.plan("rich", &mut empty_graph, &clone).is_err());
}

// ---------------------------------------------------------------------------------
// 2. Incremental fetches
// ---------------------------------------------------------------------------------

/// Plans an incremental fetch of `want` by a client having `haves` and checks what
/// any correct pack needs: every object git lists (`rev-list --objects <want> --not
/// <haves>`) is sent, no object twice, commits first. Returns the plan, git's list, and
/// what is sent that the client has: commits reachable from the haves and objects in
/// their trees (git itself resends the latter when a have is not at the edge of the
/// sent commits, e.g. a have from a disjoint history).
fn incremental(
    f: &Fixture,
    graph: &mut Graph<'_>,
    want: u32,
    haves: &[u32],
) -> (Plan, BTreeSet<String>, BTreeSet<String>) {
    let req = WalkRequest {
        wants: vec![f.oid(want)],
        common: haves.iter().map(|h| f.oid(*h)).collect(),
        ..WalkRequest::default()
    };
    let plan = walk::plan(graph, &req).unwrap();
    let sent = hexes(&plan.objects);
    assert_eq!(plan.objects.len(), sent.len(), "no object twice");
    let mut args: Vec<String> = vec![f.at(want), "--not".to_owned()];
    args.extend(haves.iter().map(|h| f.at(*h)));
    let expected = f.rev_list(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let lacking: Vec<&String> = expected.difference(&sent).collect();
    assert!(
        lacking.is_empty(),
        "{want} --not {haves:?}: not sent: {lacking:?}"
    );
    for (i, id) in plan.objects.iter().enumerate() {
        let is_commit = graph.commit(id).unwrap().is_some();
        assert_eq!(is_commit, i < plan.commits, "{id} at {i}");
    }
    let mut theirs: BTreeSet<String> = BTreeSet::new();
    for have in haves {
        theirs.extend(f.commits(&[&f.at(*have)]));
        theirs.extend(f.tree_objects(&f.at(*have)));
    }
    let resent = theirs.intersection(&sent).cloned().collect();
    (plan, expected, resent)
}

/// Incremental cases, (want, haves): over the merge of `rich`, and along `linear(8)`.
const RICH_INCREMENTAL: &[(u32, &[u32])] = &[
    (5, &[2]),
    (5, &[3, 4]),
    (5, &[4]),
    (5, &[5]),
    (5, &[7]),
    (3, &[1]),
];
const LINEAR_INCREMENTAL: &[(u32, &[u32])] = &[(8, &[5]), (8, &[7]), (8, &[1]), (6, &[8])];

#[test]
fn incremental_plan_sends_everything_the_client_lacks() {
    let f = rich();
    let repo = f.open();
    let mut graph = Graph::new(repo.gix());
    for (want, haves) in RICH_INCREMENTAL {
        incremental(&f, &mut graph, *want, haves);
    }
    // Have 2: 3, 4 and the merge 5 are new, newest first.
    let (plan, _, _) = incremental(&f, &mut graph, 5, &[2]);
    let first: Vec<String> = plan.objects[..3].iter().map(ToString::to_string).collect();
    assert_eq!(first, vec![f.at(5), f.at(4), f.at(3)]);

    let l = linear(8);
    let repo = l.open();
    let mut graph = Graph::new(repo.gix());
    for (want, haves) in LINEAR_INCREMENTAL {
        incremental(&l, &mut graph, *want, haves);
    }
}

#[test]
fn incremental_plan_sends_nothing_the_client_has() {
    let mut wrong = Vec::new();
    let f = rich();
    let rich_repo = f.open();
    let mut graph = Graph::new(rich_repo.gix());
    for (want, haves) in RICH_INCREMENTAL {
        let (plan, expected, resent) = incremental(&f, &mut graph, *want, haves);
        let sent = hexes(&plan.objects);
        if sent != expected {
            wrong.push(format!(
                "rich {want} --not {haves:?}: resent {resent:?}, beyond rev-list {:?}",
                sent.difference(&expected).collect::<Vec<_>>()
            ));
        }
    }
    let l = linear(8);
    let linear_repo = l.open();
    let mut linear_graph = Graph::new(linear_repo.gix());
    for (want, haves) in LINEAR_INCREMENTAL {
        let (plan, expected, resent) = incremental(&l, &mut linear_graph, *want, haves);
        let sent = hexes(&plan.objects);
        if sent != expected {
            wrong.push(format!(
                "linear {want} --not {haves:?}: resent {resent:?}, beyond rev-list {:?}",
                sent.difference(&expected).collect::<Vec<_>>()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The shapes, spelled out: have 2, the three new commits; both parents of the
    // merge, the merge commit with its root and dir trees; everything, nothing.
    let (plan, _, _) = incremental(&f, &mut graph, 5, &[2]);
    assert_eq!(plan.commits, 3);
    let (plan, _, _) = incremental(&f, &mut graph, 5, &[3, 4]);
    assert_eq!((plan.commits, plan.objects.len()), (1, 3));
    let (plan, _, _) = incremental(&f, &mut graph, 5, &[5]);
    assert!(plan.objects.is_empty(), "{:?}", plan.objects);
}

/// ARCHITECTURE.md: "an incremental fetch reads the new commits and a few old ones".
#[test]
fn incremental_plan_reads_only_the_new_commits_and_a_few_old_ones() {
    let f = linear(60);
    let repo = f.open();
    let mut graph = Graph::new(repo.gix());
    let plan = walk::plan(
        &mut graph,
        &WalkRequest {
            wants: vec![f.oid(60)],
            common: vec![f.oid(59)],
            ..WalkRequest::default()
        },
    )
    .unwrap();
    assert!(plan.commits >= 1);
    let parsed = graph_commits_parsed(&graph);
    assert!(
        parsed <= 5,
        "an incremental fetch of 1 commit over 59 parsed {parsed} commits"
    );
}

// ---------------------------------------------------------------------------------
// 3. Shallow
// ---------------------------------------------------------------------------------

#[test]
fn shallow_depth_relative_deepening_and_unshallow() {
    let f = linear(5);
    let repo = f.open();
    let mut graph = Graph::new(repo.gix());
    let (c3, c4, c5) = (f.at(3), f.at(4), f.at(5));

    // depth 1: the tip alone, announced shallow.
    let plan = walk::plan(
        &mut graph,
        &WalkRequest {
            wants: vec![f.oid(5)],
            deepen: Some(Deepen::Depth(1)),
            ..WalkRequest::default()
        },
    )
    .unwrap();
    assert_eq!(plan.shallow, vec![f.oid(5)]);
    assert!(plan.unshallow.is_empty());
    assert_eq!(plan.commits, 1);
    let mut expected = f.tree_objects(&c5);
    expected.insert(c5.clone());
    assert_eq!(hexes(&plan.objects), expected);
    assert_eq!(plan.objects[0].to_string(), c5);

    // depth 2: the tip and its parent, the parent shallow.
    let plan = walk::plan(
        &mut graph,
        &WalkRequest {
            wants: vec![f.oid(5)],
            deepen: Some(Deepen::Depth(2)),
            ..WalkRequest::default()
        },
    )
    .unwrap();
    assert_eq!(plan.shallow, vec![f.oid(4)]);
    let mut expected: BTreeSet<String> = f.tree_objects(&c5);
    expected.extend(f.tree_objects(&c4));
    expected.extend([c5.clone(), c4.clone()]);
    assert_eq!(hexes(&plan.objects), expected);

    // The client has depth 2 (4 shallow) and deepens by 1 relative to it: 3 becomes the
    // boundary, 4 is shallow no more, and only 3 and what its tree adds to 4's are sent.
    let mut expected: BTreeSet<String> = f
        .tree_objects(&c3)
        .difference(&f.tree_objects(&c4))
        .cloned()
        .collect();
    expected.insert(c3.clone());
    let relative = WalkRequest {
        wants: vec![f.oid(5)],
        common: vec![f.oid(5), f.oid(4)],
        client_shallows: vec![f.oid(4)],
        deepen: Some(Deepen::Depth(1)),
        deepen_relative: true,
        ..WalkRequest::default()
    };
    let plan = walk::plan(&mut graph, &relative).unwrap();
    assert_eq!(plan.shallow, vec![f.oid(3)]);
    assert_eq!(plan.unshallow, vec![f.oid(4)]);
    assert_eq!(plan.commits, 1);
    assert_eq!(hexes(&plan.objects), expected);

    // The same boundary asked as an absolute depth of 3.
    let absolute = WalkRequest {
        deepen: Some(Deepen::Depth(3)),
        deepen_relative: false,
        ..relative.clone()
    };
    let plan = walk::plan(&mut graph, &absolute).unwrap();
    assert_eq!(plan.shallow, vec![f.oid(3)]);
    assert_eq!(plan.unshallow, vec![f.oid(4)]);
    assert_eq!(hexes(&plan.objects), expected);

    // Relative depth 2 from 4: 2 becomes the boundary.
    let plan = walk::plan(
        &mut graph,
        &WalkRequest {
            deepen: Some(Deepen::Depth(2)),
            ..relative.clone()
        },
    )
    .unwrap();
    assert_eq!(plan.shallow, vec![f.oid(2)]);
    assert_eq!(plan.unshallow, vec![f.oid(4)]);
    assert_eq!(plan.commits, 2);

    // --unshallow (depth 2^31-1): 4 is unshallowed, its parents and everything behind
    // them are sent, nothing is shallow.
    let plan = walk::plan(
        &mut graph,
        &WalkRequest {
            deepen: Some(Deepen::Depth(0x7fff_ffff)),
            deepen_relative: false,
            ..relative.clone()
        },
    )
    .unwrap();
    assert!(plan.shallow.is_empty(), "{:?}", plan.shallow);
    assert_eq!(plan.unshallow, vec![f.oid(4)]);
    assert_eq!(plan.commits, 3);
    let sent = hexes(&plan.objects);
    for parent in [f.at(3), f.at(2), f.at(1)] {
        assert!(sent.contains(&parent), "{parent} not sent");
    }
    let expected: BTreeSet<String> = f
        .rev_list(&[&c3])
        .difference(&f.tree_objects(&c4))
        .cloned()
        .collect();
    assert_eq!(sent, expected);
    assert!(!sent.contains(&c4) && !sent.contains(&c5));
}

// ---------------------------------------------------------------------------------
// 4. ready
// ---------------------------------------------------------------------------------

#[test]
fn ready_when_every_want_reaches_a_common_commit() {
    let f = rich();
    let repo = f.open();
    let mut graph = Graph::new(repo.gix());
    let common = |marks: &[u32]| -> gix::hashtable::HashSet<gix::ObjectId> {
        marks.iter().map(|m| gix_id(&f.at(*m))).collect()
    };

    assert!(walk::ready(&mut graph, &[f.oid(5)], &common(&[2])).unwrap());
    assert!(walk::ready(&mut graph, &[f.oid(5)], &common(&[4])).unwrap());
    assert!(walk::ready(&mut graph, &[f.oid(3)], &common(&[1])).unwrap());
    // 7's history is disjoint from main's.
    assert!(!walk::ready(&mut graph, &[f.oid(7)], &common(&[2])).unwrap());
    assert!(!walk::ready(&mut graph, &[f.oid(5), f.oid(7)], &common(&[2])).unwrap());
    assert!(walk::ready(&mut graph, &[f.oid(5), f.oid(7)], &common(&[2, 6])).unwrap());
    // 4 (side) does not reach 2 (main).
    assert!(!walk::ready(&mut graph, &[f.oid(4)], &common(&[2])).unwrap());
    // No common commit: never ready.
    assert!(!walk::ready(&mut graph, &[f.oid(5)], &common(&[])).unwrap());
    // An annotated tag wanted whose commit reaches a common one.
    let v1 = oid(&f.git(&["rev-parse", "refs/tags/v1"]));
    assert!(walk::ready(&mut graph, &[v1], &common(&[1])).unwrap());
}

/// git's `ok_to_give_up` (can_all_from_reach_with_flag) peels a wanted tag and tests
/// its commit; only wants that peel to no commit are taken as reached.
#[test]
fn ready_peels_a_wanted_tag() {
    let f = rich();
    let repo = f.open();
    let mut graph = Graph::new(repo.gix());
    // ot tags 6, whose history is disjoint from main's.
    let ot = oid(&f.git(&["rev-parse", "refs/tags/ot"]));
    let common: gix::hashtable::HashSet<gix::ObjectId> = [gix_id(&f.at(2))].into_iter().collect();
    assert!(!walk::ready(&mut graph, &[ot], &common).unwrap());
}

// ---------------------------------------------------------------------------------
// 5. upload_pack without HTTP
// ---------------------------------------------------------------------------------

fn v2_fetch_body(args: &[String]) -> Vec<u8> {
    let mut body = Vec::new();
    pkt_line(&mut body, "command=fetch");
    pkt_line(&mut body, "object-format=sha1");
    delim(&mut body);
    for arg in args {
        pkt_line(&mut body, arg);
    }
    flush(&mut body);
    body
}

/// An incremental pack (`want`, client having `have`) as sent: holds everything git
/// lists and exactly what `walk::plan` selects, and nothing of the have or its tree.
/// (Exactly git's list is `incremental_plan_sends_nothing_the_client_has`, ignored for a
/// bug.)
fn check_incremental_pack(
    f: &Fixture,
    repo: &GitRepo,
    pack: &BTreeSet<String>,
    count: usize,
    want: u32,
    have: u32,
) {
    assert_eq!(pack.len(), count, "objects reported sent");
    let expected = f.rev_list(&[&f.at(want), "--not", &f.at(have)]);
    let lacking: Vec<&String> = expected.difference(pack).collect();
    assert!(lacking.is_empty(), "not sent: {lacking:?}");
    let plan = walk::plan(
        &mut Graph::new(repo.gix()),
        &WalkRequest {
            wants: vec![f.oid(want)],
            common: vec![f.oid(have)],
            ..WalkRequest::default()
        },
    )
    .unwrap();
    assert_eq!(*pack, hexes(&plan.objects));
    assert!(!pack.contains(&f.at(have)));
    let theirs = f.tree_objects(&f.at(have));
    let resent: Vec<&String> = theirs.intersection(pack).collect();
    assert!(
        resent.is_empty(),
        "objects of the have's tree sent: {resent:?}"
    );
}

#[test]
fn upload_pack_v2_fetch_sends_a_pack_git_accepts() {
    let f = rich();
    let repo = f.open();

    // A full fetch of two branches.
    let body = v2_fetch_body(&[
        format!("want {}", f.at(5)),
        format!("want {}", f.at(7)),
        "ofs-delta".to_owned(),
        "done".to_owned(),
    ]);
    let (out, result) = serve_upload(&repo, Protocol::V2, &body);
    let expected = f.rev_list(&[&f.at(5), &f.at(7)]);
    assert_eq!(result.unwrap(), expected.len());
    let response = parse_sideband_response(&out);
    assert_eq!(response.lines, vec!["packfile", "<flush>"]);
    assert!(
        response.progress.contains("Enumerating objects"),
        "{response:?}"
    );
    assert!(response.errors.is_empty());
    assert_eq!(objects_of_pack(&response.pack), expected);

    // Negotiation without done: common haves are acknowledged, "ready", then the pack
    // of what the client lacks. An unknown have is not acknowledged.
    let unknown = "1111111111111111111111111111111111111111";
    let body = v2_fetch_body(&[
        format!("want {}", f.at(5)),
        "no-progress".to_owned(),
        format!("have {unknown}"),
        format!("have {}", f.at(2)),
    ]);
    let (out, result) = serve_upload(&repo, Protocol::V2, &body);
    let count = result.unwrap();
    let response = parse_sideband_response(&out);
    assert_eq!(
        response.lines,
        vec![
            "acknowledgments".to_owned(),
            format!("ACK {}", f.at(2)),
            "ready".to_owned(),
            "<delim>".to_owned(),
            "packfile".to_owned(),
            "<flush>".to_owned(),
        ]
    );
    assert!(
        response.progress.is_empty(),
        "no-progress: {:?}",
        response.progress
    );
    check_incremental_pack(&f, &repo, &objects_of_pack(&response.pack), count, 5, 2);

    // Only unknown haves: NAK, and no pack yet.
    let body = v2_fetch_body(&[format!("want {}", f.at(5)), format!("have {unknown}")]);
    let (out, result) = serve_upload(&repo, Protocol::V2, &body);
    assert_eq!(result.unwrap(), 0);
    let response = parse_sideband_response(&out);
    assert_eq!(response.lines, vec!["acknowledgments", "NAK", "<flush>"]);
    assert!(response.pack.is_empty());

    // A shallow fetch announces its boundary in shallow-info.
    let body = v2_fetch_body(&[
        format!("want {}", f.at(5)),
        "deepen 1".to_owned(),
        "done".to_owned(),
    ]);
    let (out, result) = serve_upload(&repo, Protocol::V2, &body);
    result.unwrap();
    let response = parse_sideband_response(&out);
    assert_eq!(
        response.lines,
        vec![
            "shallow-info".to_owned(),
            format!("shallow {}", f.at(5)),
            "<delim>".to_owned(),
            "packfile".to_owned(),
            "<flush>".to_owned(),
        ]
    );
    let mut expected = f.tree_objects(&f.at(5));
    expected.insert(f.at(5));
    assert_eq!(objects_of_pack(&response.pack), expected);
}

#[test]
fn upload_pack_v0_sends_a_pack_git_accepts() {
    let f = rich();
    let repo = f.open();

    // A clone: wants (capabilities on the first), flush, done; side-band-64k.
    let mut body = Vec::new();
    pkt_line(
        &mut body,
        &format!(
            "want {} multi_ack_detailed no-done side-band-64k ofs-delta agent=test",
            f.at(5)
        ),
    );
    pkt_line(&mut body, &format!("want {}", f.at(7)));
    flush(&mut body);
    pkt_line(&mut body, "done");
    let (out, result) = serve_upload(&repo, Protocol::V0, &body);
    let expected = f.rev_list(&[&f.at(5), &f.at(7)]);
    assert_eq!(result.unwrap(), expected.len());
    let response = parse_sideband_response(&out);
    assert_eq!(response.lines, vec!["NAK", "<flush>"]);
    assert!(response.progress.contains("Total"), "{response:?}");
    assert_eq!(objects_of_pack(&response.pack), expected);

    // An incremental fetch without side-band: ACK of the last common have, then the
    // pack raw to the end of the response.
    let mut body = Vec::new();
    pkt_line(
        &mut body,
        &format!("want {} multi_ack_detailed ofs-delta", f.at(5)),
    );
    flush(&mut body);
    pkt_line(&mut body, &format!("have {}", f.at(1)));
    pkt_line(&mut body, &format!("have {}", f.at(2)));
    pkt_line(&mut body, "done");
    let (out, result) = serve_upload(&repo, Protocol::V0, &body);
    let count = result.unwrap();
    let mut reader = PktReader::new(&out);
    let first = reader.next_packet().unwrap().unwrap();
    assert_eq!(first.line(), Some(format!("ACK {}", f.at(2)).as_bytes()));
    check_incremental_pack(&f, &repo, &objects_of_pack(reader.rest()), count, 5, 2);

    // A negotiation round (no done) with multi_ack_detailed: common, ready, NAK, and
    // with no-done the final ACK and the pack.
    let mut body = Vec::new();
    pkt_line(
        &mut body,
        &format!("want {} multi_ack_detailed no-done side-band-64k", f.at(5)),
    );
    flush(&mut body);
    pkt_line(&mut body, &format!("have {}", f.at(2)));
    flush(&mut body);
    let (out, result) = serve_upload(&repo, Protocol::V0, &body);
    let count = result.unwrap();
    let response = parse_sideband_response(&out);
    assert_eq!(
        response.lines,
        vec![
            format!("ACK {} common", f.at(2)),
            format!("ACK {} ready", f.at(2)),
            "NAK".to_owned(),
            format!("ACK {}", f.at(2)),
            "<flush>".to_owned(),
        ]
    );
    check_incremental_pack(&f, &repo, &objects_of_pack(&response.pack), count, 5, 2);
}

#[test]
fn upload_pack_refuses_an_unknown_want_with_an_err_packet() {
    let f = rich();
    let repo = f.open();
    let unknown = "1234567890123456789012345678901234567890";
    let check = |out: &[u8], result: Result<usize, ServeError>| {
        assert!(
            matches!(&result, Err(ServeError::Refused(m)) if m.contains(unknown)),
            "{result:?}"
        );
        let mut reader = PktReader::new(out);
        let packet = reader.next_packet().unwrap().unwrap();
        let message = pktline::err_message(packet.data().unwrap())
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .unwrap_or_else(|| panic!("not an ERR packet: {packet:?}"));
        assert!(message.contains(unknown), "{message}");
        assert!(reader.is_at_end(), "nothing after the ERR packet");
    };

    let body = v2_fetch_body(&[format!("want {unknown}"), "done".to_owned()]);
    let (out, result) = serve_upload(&repo, Protocol::V2, &body);
    check(&out, result);

    let mut body = Vec::new();
    pkt_line(&mut body, &format!("want {} side-band-64k", f.at(5)));
    pkt_line(&mut body, &format!("want {unknown}"));
    flush(&mut body);
    pkt_line(&mut body, "done");
    let (out, result) = serve_upload(&repo, Protocol::V0, &body);
    check(&out, result);
}

#[test]
fn upload_pack_v2_ls_refs_lists_head_with_its_symref_target() {
    let f = rich();
    let repo = f.open();
    let mut body = Vec::new();
    pkt_line(&mut body, "command=ls-refs");
    delim(&mut body);
    pkt_line(&mut body, "symrefs");
    pkt_line(&mut body, "peel");
    flush(&mut body);
    let (out, result) = serve_upload(&repo, Protocol::V2, &body);
    assert_eq!(result.unwrap(), 0);
    let response = parse_sideband_response(&out);
    let lines = &response.lines;
    assert_eq!(
        lines.first().cloned(),
        Some(format!("{} HEAD symref-target:refs/heads/main", f.at(5)))
    );
    assert_eq!(lines.last().map(String::as_str), Some("<flush>"));

    // Then every ref, as git lists them, annotated tags with peeled:.
    let v1 = f.git(&["rev-parse", "refs/tags/v1"]);
    assert!(
        lines.contains(&format!("{v1} refs/tags/v1 peeled:{}", f.at(2))),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("{} refs/tags/light", f.at(4))),
        "{lines:?}"
    );
    let listed: BTreeSet<String> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| {
            let mut words = l.split(' ');
            format!("{} {}", words.next().unwrap(), words.next().unwrap())
        })
        .collect();
    let git_refs: BTreeSet<String> = f
        .git(&["for-each-ref", "--format=%(objectname) %(refname)"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, git_refs);

    // A prefix narrows the listing (HEAD is not under refs/heads/).
    let mut body = Vec::new();
    pkt_line(&mut body, "command=ls-refs");
    delim(&mut body);
    pkt_line(&mut body, "ref-prefix refs/heads/");
    flush(&mut body);
    let (out, _) = serve_upload(&repo, Protocol::V2, &body);
    let response = parse_sideband_response(&out);
    assert_eq!(
        response.lines,
        vec![
            format!("{} refs/heads/main", f.at(5)),
            format!("{} refs/heads/other", f.at(7)),
            format!("{} refs/heads/side", f.at(4)),
            "<flush>".to_owned(),
        ]
    );
}

#[test]
fn upload_pack_include_tag_sends_the_whole_chain_of_a_nested_tag() {
    let f = rich();
    // outer -> inner -> commit 2; only outer has a ref.
    f.git(&["tag", "-a", "-m", "inner", "inner", &f.at(2)]);
    let inner = f.git(&["rev-parse", "refs/tags/inner"]);
    f.git(&["tag", "-a", "-m", "outer", "outer", &inner]);
    f.git(&["tag", "-d", "inner"]);
    let outer = f.git(&["rev-parse", "refs/tags/outer"]);
    let repo = f.open();

    let body = v2_fetch_body(&[
        format!("want {}", f.at(5)),
        "include-tag".to_owned(),
        "done".to_owned(),
    ]);
    let (out, result) = serve_upload(&repo, Protocol::V2, &body);
    result.unwrap();
    let sent = objects_of_pack(&parse_sideband_response(&out).pack);
    assert!(sent.contains(&outer), "the outer tag is included");
    assert!(
        sent.contains(&inner),
        "the outer tag {outer} is sent without the tag {inner} it points to"
    );
}

// ---------------------------------------------------------------------------------
// 6. ingest
// ---------------------------------------------------------------------------------

#[test]
fn ingest_accepts_a_pack_and_install_makes_its_objects_readable() {
    let client = big_linear(5);
    let server = big_linear(3);
    assert_eq!(server.at(3), client.at(3), "deterministic ids");
    assert!(try_git(&server.git_dir, &["cat-file", "-e", &client.at(4)], b"").is_err());

    let pack = client.pack_objects(
        &["--revs"],
        &format!("{}\n^{}\n", client.at(5), client.at(3)),
    );
    let new_objects = client.rev_list(&[&client.at(5), "--not", &client.at(3)]);
    assert_eq!(pack_header_count(&pack), new_objects.len());

    let repos = server.repos();
    let repo = repos.open_repo(&repo_id()).unwrap();
    let quarantine = repos.quarantine().unwrap();
    let qpath = quarantine.path().to_owned();
    assert!(qpath.is_dir());
    let ingested = ingest::ingest(&repo, quarantine, &mut &pack[..], 1 << 20)
        .unwrap()
        .expect("a pack with objects");
    assert_eq!(ingested.objects as usize, new_objects.len());
    assert_eq!(ingested.bytes, pack.len() as u64);
    assert!(ingested.pack.starts_with(&qpath) && ingested.index.starts_with(&qpath));
    // Not visible before it is installed.
    assert!(
        !repos
            .open_repo(&repo_id())
            .unwrap()
            .has_object(&hex_bytes(&client.at(5)))
    );

    repo.install_pack(&ingested.pack, &ingested.index).unwrap();
    drop(ingested);
    assert!(!qpath.exists(), "quarantine left at {}", qpath.display());
    assert!(server.quarantines_left().is_empty());

    let fresh = repos.open_repo(&repo_id()).unwrap();
    for id in &new_objects {
        assert!(fresh.has_object(&hex_bytes(id)), "{id} not readable");
    }
    // git agrees: the new history is complete.
    let listed = server.rev_list(&[&client.at(5)]);
    assert_eq!(listed, client.rev_list(&[&client.at(5)]));
    let blob = client.git(&["rev-parse", &format!("{}:big.txt", client.at(5))]);
    let (kind, data) = fresh.read_object(&hex_bytes(&blob)).unwrap().unwrap();
    assert_eq!(kind, gix::object::Kind::Blob);
    assert_eq!(
        data,
        git_bytes(&client.git_dir, &["cat-file", "blob", &blob], b"")
    );
}

/// A pack whose deltas name their bases by offset (what git sends) is indexed in one
/// pass over its objects: the index written is the one `git index-pack` writes for
/// it, byte for byte, and the pack is kept as it came.
#[test]
fn ingest_writes_the_index_git_writes() {
    let client = big_linear(5);
    let server = big_linear(3);
    let pack = client.pack_objects(
        &["--revs", "--delta-base-offset"],
        &format!("{}\n", client.at(5)),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.pack"), &pack).unwrap();
    git_bytes(dir.path(), &["index-pack", "p.pack"], b"");
    let verified =
        String::from_utf8(git_bytes(dir.path(), &["verify-pack", "-v", "p.idx"], b"")).unwrap();
    assert!(
        verified.lines().any(|l| l.split_whitespace().count() > 5),
        "the pack holds deltas:\n{verified}"
    );

    let repos = server.repos();
    let repo = repos.open_repo(&repo_id()).unwrap();
    let ingested = ingest::ingest(&repo, repos.quarantine().unwrap(), &mut &pack[..], 1 << 20)
        .unwrap()
        .expect("a pack with objects");
    assert_eq!(ingested.objects as usize, pack_header_count(&pack));
    assert_eq!(std::fs::read(&ingested.pack).unwrap(), pack);
    assert_eq!(
        std::fs::read(&ingested.index).unwrap(),
        std::fs::read(dir.path().join("p.idx")).unwrap(),
        "the index differs from git's"
    );
}

#[test]
fn ingest_completes_a_thin_pack_from_the_repository() {
    // Deltas naming their in-pack bases by id (indexed the slower way) and by offset.
    for form in [&[][..], &["--delta-base-offset"][..]] {
        ingest_completes_a_thin_pack(form);
    }
}

fn ingest_completes_a_thin_pack(form: &[&str]) {
    let client = big_linear(5);
    let server = big_linear(3);
    let mut args = vec!["--revs", "--thin"];
    args.extend_from_slice(form);
    let pack = client.pack_objects(&args, &format!("{}\n^{}\n", client.at(5), client.at(3)));
    // It is thin: git cannot index it alone.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thin.pack"), &pack).unwrap();
    let alone = try_git(dir.path(), &["index-pack", "thin.pack"], b"");
    assert!(
        alone
            .as_ref()
            .is_err_and(|e| e.contains("unresolved delta")),
        "{alone:?}"
    );

    let repos = server.repos();
    let repo = repos.open_repo(&repo_id()).unwrap();
    let ingested = ingest::ingest(&repo, repos.quarantine().unwrap(), &mut &pack[..], 1 << 20)
        .unwrap()
        .expect("a pack with objects");
    let new_objects = client.rev_list(&[&client.at(5), "--not", &client.at(3)]);
    // The completed pack holds the sent objects and the bases appended to it.
    assert!(
        ingested.objects as usize > pack_header_count(&pack),
        "{ingested:?}"
    );
    repo.install_pack(&ingested.pack, &ingested.index).unwrap();
    drop(ingested);
    assert!(server.quarantines_left().is_empty());

    let fresh = repos.open_repo(&repo_id()).unwrap();
    for id in &new_objects {
        assert!(fresh.has_object(&hex_bytes(id)), "{id} not readable");
    }
    for commit in [4, 5] {
        let blob = client.git(&["rev-parse", &format!("{}:big.txt", client.at(commit))]);
        let (_, data) = fresh.read_object(&hex_bytes(&blob)).unwrap().unwrap();
        assert_eq!(
            data,
            git_bytes(&client.git_dir, &["cat-file", "blob", &blob], b"")
        );
    }
    // git can read the installed pack (an index it accepts, deltas resolved).
    server.git(&["fsck", "--no-dangling", &client.at(5)]);
}

#[test]
fn ingest_refuses_bad_packs_and_removes_their_quarantine() {
    let client = big_linear(5);
    let server = big_linear(3);
    let repos = server.repos();
    let repo = repos.open_repo(&repo_id()).unwrap();
    let packs_before = server.git(&["count-objects", "-v"]);

    // An empty pack (what git sends when the server has every object) is no pack.
    let quarantine = repos.quarantine().unwrap();
    let qpath = quarantine.path().to_owned();
    let empty = client.pack_objects(&[], "");
    assert_eq!(pack_header_count(&empty), 0);
    assert!(
        ingest::ingest(&repo, quarantine, &mut &empty[..], 1 << 20)
            .unwrap()
            .is_none()
    );
    assert!(!qpath.exists());

    let refuse = |pack: &[u8], max: usize| -> String {
        let quarantine = repos.quarantine().unwrap();
        let qpath = quarantine.path().to_owned();
        assert!(qpath.is_dir());
        let result = ingest::ingest(&repo, quarantine, &mut &pack[..], max);
        let message = match result {
            Err(ServeError::Refused(message)) => message,
            other => panic!("not refused: {other:?}"),
        };
        assert!(!qpath.exists(), "quarantine left at {}", qpath.display());
        assert!(server.quarantines_left().is_empty());
        message
    };

    // The tip commit with its whole tree, but not its parent (4), which the server
    // lacks.
    // Both ways a delta can name its base: by id and by offset.
    let mut objects: Vec<String> = vec![client.at(5)];
    objects.extend(client.tree_objects(&client.at(5)));
    let lone_tree = client.git(&["rev-parse", &format!("{}^{{tree}}", client.at(5))]);
    for form in [&[][..], &["--delta-base-offset"][..]] {
        let pack = client.pack_objects(form, &(objects.join("\n") + "\n"));
        assert_eq!(pack_header_count(&pack), objects.len());
        let message = refuse(&pack, 1 << 20);
        assert!(message.contains("missing"), "{message}");
        assert!(
            message.contains(&client.at(4)),
            "names the parent: {message}"
        );

        // A tree naming a blob that is nowhere.
        let pack = client.pack_objects(form, &format!("{lone_tree}\n"));
        let message = refuse(&pack, 1 << 20);
        assert!(message.contains("missing"), "{message}");
    }

    // A truncated pack.
    let pack = client.pack_objects(
        &["--revs"],
        &format!("{}\n^{}\n", client.at(5), client.at(3)),
    );
    let message = refuse(&pack[..pack.len() - 30], 1 << 20);
    assert!(!message.is_empty());

    // An object over the size cap (big.txt is about 16 KiB): refused before it is
    // inflated, with the limit named.
    let message = refuse(&pack, 4096);
    assert!(
        message.contains("object in the pack exceeds the 4 KiB limit"),
        "{message}"
    );

    // Nothing of it reached the repository.
    let fresh = repos.open_repo(&repo_id()).unwrap();
    assert!(!fresh.has_object(&hex_bytes(&client.at(5))));
    assert!(!fresh.has_object(&hex_bytes(&client.at(4))));
    assert_eq!(server.git(&["count-objects", "-v"]), packs_before);
}

fn hex_bytes(hex: &str) -> [u8; 20] {
    *oid(hex).as_bytes()
}

// ---------------------------------------------------------------------------------
// 7. receive_pack
// ---------------------------------------------------------------------------------

/// A writer whose bytes the test can read after the server dropped its box.
#[derive(Debug, Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A node's storage with one repository, `alice/r`, whose main is commit 3 of the
/// client's `big_linear(5)` history.
#[derive(Debug)]
struct Node {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    repos: Arc<Repositories>,
    _writer: WriterHandle,
    key: Keypair,
    id: RepoId,
    client: Fixture,
}

const ZERO: &str = "0000000000000000000000000000000000000000";

impl Node {
    async fn new() -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Arc::new(StorageMetrics::register(&mut registry));
        let (store, writer) = Store::open(&data, metrics).unwrap();
        // Throwaway keys sign here, with no accounts behind them.
        let repos = Arc::new(
            Repositories::open_with(
                store,
                GitRepos::open(&data).unwrap(),
                guts_storage::NameBinding::Unchecked,
            )
            .unwrap(),
        );
        let key = Keypair::generate();
        let view = repos
            .create(&key, "alice", "r", "", false, "main")
            .await
            .unwrap();
        let client = big_linear(5);
        let path = repos.git().path(&view.id.to_string());
        let refspec = format!("{}:refs/heads/main", client.at(3));
        git(
            &client.git_dir,
            &["push", "-q", path.to_str().unwrap(), &refspec],
        );
        let results = repos
            .update_refs(
                view.id,
                &key,
                vec![RefCommand {
                    name: "refs/heads/main".to_owned(),
                    old: None,
                    new: Some(guts_core::ObjectId::from_bytes(hex_bytes(&client.at(3)))),
                }],
                false,
            )
            .await
            .unwrap();
        assert_eq!(results, vec![Ok(())]);
        Node {
            _tmp: tmp,
            data,
            repos,
            _writer: writer,
            key,
            id: view.id,
            client,
        }
    }

    fn git_ref(&self, name: &str) -> Option<String> {
        self.repos
            .git()
            .open_repo(&self.id.to_string())
            .unwrap()
            .ref_target(name)
            .unwrap()
            .map(hex::encode)
    }

    fn fold_ref(&self, name: &str) -> Option<String> {
        let view = self.repos.find("alice", "r").unwrap();
        view.state
            .refs
            .get(name)
            .map(|r| hex::encode(r.target.as_bytes()))
    }

    fn empty_pack(&self) -> Vec<u8> {
        self.client.pack_objects(&[], "")
    }

    /// Pushes `commands` (`old new name`) with `caps` on the first and `pack` after;
    /// returns the outcome and the report's lines (side-band unwrapped).
    async fn push(
        &self,
        commands: &[(&str, &str, &str)],
        caps: &str,
        pack: &[u8],
    ) -> (Result<PushOutcome, ServeError>, Vec<String>) {
        let mut body = Vec::new();
        for (i, (old, new, name)) in commands.iter().enumerate() {
            let line = if i == 0 {
                format!("{old} {new} {name}\0{caps}\n")
            } else {
                format!("{old} {new} {name}\n")
            };
            pktline::write_data(&mut body, line.as_bytes()).unwrap();
        }
        flush(&mut body);
        body.extend_from_slice(pack);
        let out = Shared::default();
        let (repos, id, key) = (self.repos.clone(), self.id, self.key.clone());
        let result =
            receive_pack(
                self.repos.clone(),
                std::sync::Arc::new(guts_git::serve::PlanCache::new(4)),
                self.id,
                move |commands, atomic| async move {
                    repos.update_refs(id, &key, commands, atomic).await
                },
                Box::new(std::io::Cursor::new(body)),
                Box::new(out.clone()),
                1 << 20,
            )
            .await;
        let bytes = out.0.lock().unwrap().clone();
        let report = if caps.contains("side-band-64k") {
            let mut inner = Vec::new();
            let mut packets = PktReader::new(&bytes);
            loop {
                match packets.next_packet().unwrap() {
                    Some(Packet::Data(data)) => {
                        let (band, payload) = pktline::split_sideband(data).unwrap();
                        if band == Band::Data {
                            inner.extend_from_slice(payload);
                        }
                    }
                    Some(Packet::Flush) => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(packets.is_at_end(), "bytes after the final flush");
            inner
        } else {
            bytes
        };
        let mut lines = Vec::new();
        let mut packets = PktReader::new(&report);
        loop {
            match packets.next_packet().unwrap() {
                Some(Packet::Data(data)) => {
                    lines.push(String::from_utf8(pktline::chomp(data).to_vec()).unwrap());
                }
                Some(Packet::Flush) => break,
                other => panic!("unexpected {other:?} in the report"),
            }
        }
        assert!(packets.is_at_end(), "bytes after the report");
        (result, lines)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_pack_creates_a_branch_then_refuses_a_stale_update() {
    let node = Node::new().await;
    let c = &node.client;
    let (c3, c4, c5) = (c.at(3), c.at(4), c.at(5));
    assert_eq!(node.git_ref("refs/heads/main"), Some(c3.clone()));
    assert_eq!(node.fold_ref("refs/heads/x"), None);

    // What git push sends: a thin pack of what the server lacks.
    let pack = c.pack_objects(&["--revs", "--thin"], &format!("{c5}\n^{c3}\n"));
    let (result, report) = node
        .push(
            &[(ZERO, &c5, "refs/heads/x")],
            "report-status side-band-64k ofs-delta agent=test",
            &pack,
        )
        .await;
    let outcome = result.unwrap();
    assert_eq!(report, vec!["unpack ok", "ok refs/heads/x"]);
    assert_eq!(outcome.updated, 1);
    assert_eq!(outcome.refused, 0);
    assert_eq!(outcome.unpack_error, None);
    assert!(outcome.pack_objects as usize >= pack_header_count(&pack));
    assert_eq!(outcome.pack_bytes, pack.len() as u64);
    assert_eq!(node.git_ref("refs/heads/x"), Some(c5.clone()));
    assert_eq!(node.fold_ref("refs/heads/x"), Some(c5.clone()));
    assert!(quarantines_left(&node.data).is_empty());
    // git sees a complete history behind the new ref.
    let path = node.repos.git().path(&node.id.to_string());
    assert_eq!(
        git(&path, &["rev-parse", "refs/heads/x"]),
        c5,
        "git's view of the ref"
    );
    git(&path, &["fsck", "--no-dangling", "refs/heads/x"]);

    // A stale old value (x is 5 now, not 3): refused, the ref stays.
    let (result, report) = node
        .push(
            &[(&c3, &c4, "refs/heads/x")],
            "report-status side-band-64k",
            &node.empty_pack(),
        )
        .await;
    let outcome = result.unwrap();
    assert_eq!(report.len(), 2, "{report:?}");
    assert_eq!(report[0], "unpack ok");
    assert!(report[1].starts_with("ng refs/heads/x "), "{report:?}");
    assert_eq!((outcome.updated, outcome.refused), (0, 1));
    assert_eq!(node.git_ref("refs/heads/x"), Some(c5.clone()));
    assert_eq!(node.fold_ref("refs/heads/x"), Some(c5.clone()));

    // With the right old value the same update applies (a rewind, which the owner may).
    let (result, report) = node
        .push(
            &[(&c5, &c4, "refs/heads/x")],
            "report-status",
            &node.empty_pack(),
        )
        .await;
    result.unwrap();
    assert_eq!(report, vec!["unpack ok", "ok refs/heads/x"]);
    assert_eq!(node.git_ref("refs/heads/x"), Some(c4.clone()));

    // A deletion: no pack follows.
    let (result, report) = node
        .push(
            &[(&c4, ZERO, "refs/heads/x")],
            "report-status delete-refs side-band-64k",
            b"",
        )
        .await;
    result.unwrap();
    assert_eq!(report, vec!["unpack ok", "ok refs/heads/x"]);
    assert_eq!(node.git_ref("refs/heads/x"), None);
    assert_eq!(node.fold_ref("refs/heads/x"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_pack_refuses_reserved_refs() {
    let node = Node::new().await;
    let c3 = node.client.at(3);
    let name = "refs/guts/conflicts/heads/main/abc";
    let (result, report) = node
        .push(&[(ZERO, &c3, name)], "report-status", &node.empty_pack())
        .await;
    let outcome = result.unwrap();
    assert_eq!(report.len(), 2, "{report:?}");
    assert_eq!(report[0], "unpack ok");
    assert!(report[1].starts_with(&format!("ng {name} ")), "{report:?}");
    assert_eq!((outcome.updated, outcome.refused), (0, 1));
    assert_eq!(node.git_ref(name), None);
    assert_eq!(node.fold_ref(name), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_pack_atomic_push_with_one_bad_command_moves_nothing() {
    let node = Node::new().await;
    let c = &node.client;
    let (c1, c3, c4, c5) = (c.at(1), c.at(3), c.at(4), c.at(5));
    let pack = c.pack_objects(&["--revs", "--thin"], &format!("{c5}\n^{c3}\n"));

    // One good update and one with a stale old value (main is 3, not 1).
    let (result, report) = node
        .push(
            &[(ZERO, &c4, "refs/heads/y"), (&c1, &c5, "refs/heads/main")],
            "report-status atomic side-band-64k",
            &pack,
        )
        .await;
    let outcome = result.unwrap();
    assert_eq!(report.len(), 3, "{report:?}");
    assert_eq!(report[0], "unpack ok");
    assert!(report[1].starts_with("ng refs/heads/y "), "{report:?}");
    assert!(report[2].starts_with("ng refs/heads/main "), "{report:?}");
    assert_eq!(outcome.updated, 0);
    assert_eq!(node.git_ref("refs/heads/y"), None);
    assert_eq!(node.fold_ref("refs/heads/y"), None);
    assert_eq!(node.git_ref("refs/heads/main"), Some(c3.clone()));
    assert_eq!(node.fold_ref("refs/heads/main"), Some(c3.clone()));

    // One good update and one naming an object nobody has.
    let missing = "2222222222222222222222222222222222222222";
    let (result, report) = node
        .push(
            &[(ZERO, &c4, "refs/heads/z"), (ZERO, missing, "refs/heads/w")],
            "report-status atomic",
            &node.empty_pack(),
        )
        .await;
    let outcome = result.unwrap();
    assert_eq!(report.len(), 3, "{report:?}");
    assert_eq!(report[0], "unpack ok");
    assert!(report[1].starts_with("ng refs/heads/z "), "{report:?}");
    assert!(report[2].starts_with("ng refs/heads/w "), "{report:?}");
    assert_eq!(outcome.updated, 0);
    assert_eq!(node.git_ref("refs/heads/z"), None);
    assert_eq!(node.fold_ref("refs/heads/z"), None);

    // The same two without atomic: the good one applies.
    let (result, report) = node
        .push(
            &[(ZERO, &c4, "refs/heads/z"), (ZERO, missing, "refs/heads/w")],
            "report-status",
            &node.empty_pack(),
        )
        .await;
    result.unwrap();
    assert_eq!(report[..2], ["unpack ok", "ok refs/heads/z"]);
    assert!(report[2].starts_with("ng refs/heads/w "), "{report:?}");
    assert_eq!(node.git_ref("refs/heads/z"), Some(c4.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_pack_reports_a_bad_pack_and_moves_nothing() {
    let node = Node::new().await;
    let c = &node.client;
    let (c3, c5) = (c.at(3), c.at(5));
    let pack = c.pack_objects(&["--revs"], &format!("{c5}\n^{c3}\n"));
    let (result, report) = node
        .push(
            &[(ZERO, &c5, "refs/heads/t")],
            "report-status side-band-64k",
            &pack[..pack.len() - 30],
        )
        .await;
    let outcome = result.unwrap();
    assert_eq!(report.len(), 2, "{report:?}");
    assert!(
        report[0].starts_with("unpack ") && report[0] != "unpack ok",
        "{report:?}"
    );
    assert_eq!(report[1], "ng refs/heads/t unpacker error");
    assert!(outcome.unpack_error.is_some());
    assert_eq!(node.git_ref("refs/heads/t"), None);
    assert_eq!(node.fold_ref("refs/heads/t"), None);
    assert!(quarantines_left(&node.data).is_empty());
    let repo = node.repos.git().open_repo(&node.id.to_string()).unwrap();
    assert!(!repo.has_object(&hex_bytes(&c5)));
}

#[test]
fn refresh_after_a_push_selects_the_clone_incrementally_when_refs_moved_forward() {
    let f = linear(6);
    let repo = f.open();
    let empty = f.empty_repo();
    let mut empty_graph = Graph::new(empty.gix());
    let cache = PlanCache::new(4);
    let clone_of = |mark: u32| WalkRequest {
        wants: vec![f.oid(mark)],
        ..WalkRequest::default()
    };

    // A first push: the whole walk, allowed.
    f.git(&["update-ref", "refs/heads/main", &f.at(4)]);
    assert!(
        !cache.refresh_clone("k", &repo, false).unwrap(),
        "nothing to start from"
    );
    assert!(cache.refresh_clone("k", &repo, true).unwrap());
    let at4 = cache.plan("k", &mut empty_graph, &clone_of(4)).unwrap();
    assert_eq!(hexes(&at4.objects), f.rev_list(&[&f.at(4)]));
    assert!(
        !cache.refresh_clone("k", &repo, true).unwrap(),
        "already current"
    );

    // A fast-forward: incremental, without permission for a whole walk, and exactly
    // what a fresh walk would select (served through a graph that knows nothing).
    f.git(&["update-ref", "refs/heads/main", &f.at(6)]);
    assert!(cache.refresh_clone("k", &repo, false).unwrap());
    let at6 = cache.plan("k", &mut empty_graph, &clone_of(6)).unwrap();
    assert_eq!(hexes(&at6.objects), f.rev_list(&[&f.at(6)]));
    assert_eq!(at6.commits, 6);

    // A rewind is not a move forward: left to the next clone.
    f.git(&["update-ref", "refs/heads/main", &f.at(5)]);
    assert!(!cache.refresh_clone("k", &repo, false).unwrap());
    assert!(cache.plan("k", &mut empty_graph, &clone_of(5)).is_err());
}
