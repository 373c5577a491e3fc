//! Packs between peers (`guts_git::serve::replicate`): what a node sends a peer that
//! has nothing (every stored object, copied from the stored packs) or some commits
//! (only what it lacks), and what it accepts from a peer, which is as untrusted as a
//! push: a pack naming an object that is neither in it nor in the repository, or an
//! object that does not decode, is refused and leaves nothing behind. Repositories are
//! made with the real `git`, which also checks the results (rev-list, fsck).

#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use guts_git::serve::ServeError;
use guts_git::serve::replicate::{ingest_file, pack_for_peer};
use guts_storage::{GitRepo, GitRepos};

mod common;
use common::{T0, git, git_bytes};

fn ids(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn bytes(hex: &str) -> [u8; 20] {
    *guts_git::Oid::from_hex(hex.as_bytes()).unwrap().as_bytes()
}

/// Commits `from..=to` on `branch` of a `fast-import` stream: each edits a few lines
/// of a 16 KiB file and one of 40 small files, so trees and blobs are stored as deltas.
fn history(branch: &str, from: u32, to: u32) -> String {
    let mut stream = String::new();
    let data = |s: &mut String, content: &str| {
        s.push_str(&format!("data {}\n{content}\n", content.len()));
    };
    for i in from..=to {
        let lines: String = (0..300)
            .map(|l| {
                if (l + i as usize * 7).is_multiple_of(50) {
                    format!("line {l:03} edited by commit {i}\n")
                } else {
                    format!("line {l:03} of a file large enough to be worth a delta\n")
                }
            })
            .collect();
        stream.push_str(&format!(
            "commit refs/heads/{branch}\ncommitter t <t@t> {} +0000\n",
            T0 + 10 * i64::from(i)
        ));
        data(&mut stream, &format!("commit {i}\n"));
        // Later commits of the stream continue the branch (fast-import's rule).
        stream.push_str("M 100644 inline big.txt\n");
        data(&mut stream, &lines);
        for f in 0..40 {
            if i == from || f == i % 40 {
                stream.push_str(&format!("M 100644 inline dir/file{f:02}.txt\n"));
                data(&mut stream, &format!("file {f} at commit {i}\n"));
            }
        }
        stream.push('\n');
    }
    stream
}

/// A data directory with bare repositories under `repos/`, opened through storage.
struct Node {
    _tmp: tempfile::TempDir,
    data: PathBuf,
}

impl Node {
    fn new() -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("repos")).unwrap();
        Node { _tmp: tmp, data }
    }

    fn init(&self, id: &str) -> PathBuf {
        let dir = self.data.join("repos").join(format!("{id}.git"));
        git(
            &self.data,
            &["init", "-q", "--bare", "-b", "main", dir.to_str().unwrap()],
        );
        dir
    }

    fn repos(&self) -> GitRepos {
        GitRepos::open(&self.data).unwrap()
    }

    fn open(&self, id: &str) -> GitRepo {
        self.repos().open_repo(id).unwrap()
    }

    /// Ingests `pack` as a pack from a peer, through a file as replication does.
    fn ingest(&self, id: &str, pack: &[u8]) -> Result<u32, ServeError> {
        let path = self.data.join("incoming.pack");
        std::fs::write(&path, pack).unwrap();
        let repos = self.repos();
        let repo = repos.open_repo(id).unwrap();
        let result = ingest_file(&repos, &repo, &path, 1 << 20);
        // Whatever happened, no quarantine is left behind.
        let left: Vec<_> = std::fs::read_dir(self.data.join("repos").join(".tmp"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("incoming-"))
            .collect();
        assert!(left.is_empty(), "quarantines left: {left:?}");
        result
    }
}

const SRC: &str = "abababababababababababababababababababababababababababababababab";
const DST: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

/// A repository stored the way a long-lived node holds one: two packs from two
/// imports, a third pack repeating objects of the first (as a completed thin pack or
/// a push of known objects does), an annotated tag, and loose objects, one of them a
/// commit no ref reaches.
fn stored_repository(node: &Node) -> PathBuf {
    let dir = node.init(SRC);
    git_bytes(
        &dir,
        &["-c", "fastimport.unpackLimit=0", "fast-import", "--quiet"],
        history("main", 1, 12).as_bytes(),
    );
    git_bytes(
        &dir,
        &["-c", "fastimport.unpackLimit=0", "fast-import", "--quiet"],
        history("side", 20, 26).as_bytes(),
    );
    let tip = git(&dir, &["rev-parse", "main~4"]);
    git_bytes(
        &dir,
        &["pack-objects", "-q", "--revs", "objects/pack/pack"],
        format!("{tip}\n").as_bytes(),
    );
    git(&dir, &["tag", "-a", "-m", "v1", "v1", "main~2"]);
    let tree = git(&dir, &["rev-parse", "side^{tree}"]);
    git(&dir, &["commit-tree", "-m", "left behind", &tree]);
    git_bytes(&dir, &["hash-object", "-w", "--stdin"], b"a loose blob\n");
    dir
}

fn all_objects(dir: &Path) -> BTreeSet<String> {
    ids(&git(
        dir,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname)",
        ],
    ))
}

fn tips(dir: &Path) -> Vec<[u8; 20]> {
    ids(&git(dir, &["for-each-ref", "--format=%(objectname)"]))
        .iter()
        .map(|h| bytes(h))
        .collect()
}

#[test]
fn a_peer_with_nothing_gets_every_stored_object_once_and_an_empty_repository_accepts_it() {
    let node = Node::new();
    let src = stored_repository(&node);
    let stored = all_objects(&src);
    let counts = git(&src, &["count-objects", "-v"]);
    let count = |key: &str| -> u32 {
        counts
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    assert!(count("packs:") >= 2 && count("count:") >= 2, "{counts}");

    let mut pack = Vec::new();
    // A have the sender lacks counts as nothing in common.
    let stats = pack_for_peer(&node.open(SRC), &tips(&src), &[[7u8; 20]], &mut pack).unwrap();
    assert_eq!(stats.objects, stored.len(), "each stored object once");
    assert_eq!(stats.bytes, pack.len() as u64);
    assert!(
        stats.copied > stats.recompressed * 4,
        "entries are copied as stored: {stats:?}"
    );

    let peer = Node::new();
    let dst = peer.init(DST);
    let installed = peer.ingest(DST, &pack).unwrap();
    assert_eq!(installed as usize, stored.len());
    assert_eq!(all_objects(&dst), stored);
    // git agrees that everything reachable from the sender's refs is there.
    for tip in ids(&git(&src, &["for-each-ref", "--format=%(objectname)"])) {
        git(
            &dst,
            &["fsck", "--no-dangling", "--connectivity-only", &tip],
        );
    }
    git(&dst, &["fsck", "--no-dangling"]);
}

/// A repository stored as one pack and nothing else (one import, one push, one
/// catch-up) gives a peer with nothing that pack byte for byte; one loose object more
/// and the pack is written entry by entry again, holding that object too.
#[test]
fn a_peer_with_nothing_gets_a_sole_pack_as_stored() {
    let node = Node::new();
    let src = node.init(SRC);
    git_bytes(
        &src,
        &["-c", "fastimport.unpackLimit=0", "fast-import", "--quiet"],
        history("main", 1, 8).as_bytes(),
    );
    let packs: Vec<PathBuf> = std::fs::read_dir(src.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    assert_eq!(packs.len(), 1, "{packs:?}");
    let stored = all_objects(&src);

    let mut pack = Vec::new();
    let stats = pack_for_peer(&node.open(SRC), &tips(&src), &[], &mut pack).unwrap();
    assert_eq!(
        pack,
        std::fs::read(&packs[0]).unwrap(),
        "the stored pack as it is"
    );
    assert_eq!(stats.objects, stored.len());
    assert_eq!(stats.bytes, pack.len() as u64);
    let peer = Node::new();
    let dst = peer.init(DST);
    assert_eq!(peer.ingest(DST, &pack).unwrap() as usize, stored.len());
    assert_eq!(all_objects(&dst), stored);

    let loose = git_bytes(&src, &["hash-object", "-w", "--stdin"], b"one more\n");
    let loose = String::from_utf8(loose).unwrap().trim().to_owned();
    let mut pack = Vec::new();
    let stats = pack_for_peer(&node.open(SRC), &tips(&src), &[], &mut pack).unwrap();
    assert_eq!(stats.objects, stored.len() + 1);
    assert_eq!(stats.recompressed, 1, "{stats:?}");
    let peer = Node::new();
    let dst = peer.init(DST);
    peer.ingest(DST, &pack).unwrap();
    assert!(all_objects(&dst).contains(&loose));
}

#[test]
fn a_peer_with_common_commits_gets_only_what_it_lacks() {
    let node = Node::new();
    let src = stored_repository(&node);
    let old = git(&src, &["rev-parse", "main~5"]);
    let new = git(&src, &["rev-parse", "main"]);
    let mut pack = Vec::new();
    let stats = pack_for_peer(&node.open(SRC), &[bytes(&new)], &[bytes(&old)], &mut pack).unwrap();
    let lacking = ids(&git(&src, &["rev-list", "--objects", &new, "--not", &old]));
    assert_eq!(stats.objects, lacking.len());

    // A peer holding `old` accepts it and then has `new`'s whole history.
    let peer = Node::new();
    let dst = peer.init(DST);
    let mut base = Vec::new();
    pack_for_peer(&node.open(SRC), &[bytes(&old)], &[], &mut base).unwrap();
    peer.ingest(DST, &base).unwrap();
    peer.ingest(DST, &pack).unwrap();
    git(
        &dst,
        &["fsck", "--no-dangling", "--connectivity-only", &new],
    );
}

#[test]
fn a_pack_naming_an_object_that_is_nowhere_is_refused_wherever_the_name_is() {
    let node = Node::new();
    let src = node.init(SRC);
    git_bytes(
        &src,
        &["-c", "fastimport.unpackLimit=0", "fast-import", "--quiet"],
        history("main", 1, 6).as_bytes(),
    );
    let peer = Node::new();
    peer.init(DST);
    // Both ways a delta can name its base: by id (indexed by gix's bundle writer, then
    // checked on a pass of its own) and by offset (indexed and checked in one pass).
    let packs_of = |objects: &BTreeSet<String>| {
        let list: String = objects.iter().map(|o| format!("{o}\n")).collect();
        [&[][..], &["--delta-base-offset"][..]].map(|form| {
            let mut args = vec!["pack-objects", "-q", "--stdout"];
            args.extend_from_slice(form);
            git_bytes(&src, &args, list.as_bytes())
        })
    };
    let refusals = |objects: &BTreeSet<String>| {
        packs_of(objects).map(|pack| match peer.ingest(DST, &pack) {
            Err(ServeError::Refused(message)) => message,
            other => panic!("not refused: {other:?}"),
        })
    };
    let everything = ids(&git(&src, &["rev-list", "--objects", "main"]));

    // A blob named only by an old tree, stored as a delta of a newer tree: the trees'
    // delta chains are resolved and read, not just the whole ones.
    let blob = git(&src, &["rev-parse", "main~4:dir/file02.txt"]);
    let index = std::fs::read_dir(src.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "idx"))
        .unwrap();
    let verify = git(&src, &["verify-pack", "-v", index.to_str().unwrap()]);
    assert!(
        verify
            .lines()
            .any(|l| l.contains(" tree ") && l.split_whitespace().count() > 5),
        "some tree is a delta"
    );
    let mut without = everything.clone();
    assert!(without.remove(&blob));
    for message in refusals(&without) {
        assert!(message.contains("missing necessary objects"), "{message}");
        assert!(message.contains(&blob), "names the blob: {message}");
    }

    // A commit whose parent is nowhere.
    let parent = git(&src, &["rev-parse", "main~1"]);
    let mut without = everything.clone();
    assert!(without.remove(&parent));
    for message in refusals(&without) {
        assert!(message.contains(&format!("parent {parent}")), "{message}");
    }

    // A tag of an object that is nowhere.
    git(&src, &["tag", "-a", "-m", "t", "t1", "main~2"]);
    let tag = git(&src, &["rev-parse", "t1"]);
    let target = git(&src, &["rev-parse", "main~2"]);
    for message in refusals(&[tag].into()) {
        assert!(
            message.contains(&format!("{target} tagged by")),
            "{message}"
        );
    }

    // Nothing of it was installed; the whole history then is accepted, either way.
    assert!(all_objects(&peer.data.join("repos").join(format!("{DST}.git"))).is_empty());
    let mut all = everything;
    all.insert(git(&src, &["rev-parse", "t1"]));
    for pack in packs_of(&all) {
        assert_eq!(peer.ingest(DST, &pack).unwrap() as usize, all.len());
    }
    let dst = peer.data.join("repos").join(format!("{DST}.git"));
    let tag = git(&src, &["rev-parse", "t1"]);
    git(
        &dst,
        &["fsck", "--no-dangling", "--connectivity-only", &tag],
    );
}

#[test]
fn a_pack_with_a_damaged_object_is_refused_even_with_a_valid_checksum() {
    let node = Node::new();
    let src = node.init(SRC);
    git_bytes(
        &src,
        &["-c", "fastimport.unpackLimit=0", "fast-import", "--quiet"],
        history("main", 1, 3).as_bytes(),
    );
    let mut pack = Vec::new();
    pack_for_peer(&node.open(SRC), &tips(&src), &[], &mut pack).unwrap();
    let peer = Node::new();
    peer.init(DST);
    // Where each entry lies, as git reads it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.pack"), &pack).unwrap();
    git(dir.path(), &["index-pack", "p.pack"]);
    let entries: Vec<(usize, usize)> = git(dir.path(), &["verify-pack", "-v", "p.idx"])
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words.first()?.len() == 40 && words.len() >= 5)
                .then(|| Some((words[4].parse().ok()?, words[3].parse().ok()?)))?
        })
        .collect();
    assert!(entries.len() > 20);
    // Damage each entry's compressed data (its last bytes are zlib's checksum of the
    // object), and seal the pack again so that only the object itself can tell.
    let body = pack.len() - 20;
    let mut refused = 0;
    for (offset, size) in entries {
        let mut bad = pack[..body].to_vec();
        bad[offset + size - 2] ^= 0x55;
        let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
        hasher.update(&bad);
        bad.extend_from_slice(hasher.try_finalize().unwrap().as_bytes());
        match peer.ingest(DST, &bad) {
            Err(ServeError::Refused(_)) => refused += 1,
            other => panic!("a pack damaged in the entry at {offset} was accepted: {other:?}"),
        }
    }
    assert!(refused >= 20);
    assert!(all_objects(&peer.data.join("repos").join(format!("{DST}.git"))).is_empty());
}

/// A small pack whose deltas name their bases by offset, as a peer sends one.
fn small_pack() -> &'static [u8] {
    static PACK: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PACK.get_or_init(|| {
        let node = Node::new();
        let src = node.init(SRC);
        git_bytes(
            &src,
            &["-c", "fastimport.unpackLimit=0", "fast-import", "--quiet"],
            history("main", 1, 4).as_bytes(),
        );
        let list = git(&src, &["rev-list", "--objects", "main"]);
        let list: String = ids(&list).iter().map(|o| format!("{o}\n")).collect();
        git_bytes(
            &src,
            &["pack-objects", "-q", "--stdout", "--delta-base-offset"],
            list.as_bytes(),
        )
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Damage anywhere in a pack (entry headers, delta bases, compressed data), sealed
    /// again with a valid checksum so that only the entries can tell: ingesting it
    /// never panics, and what it installs, if anything, is objects git verifies
    /// (each hashes to its id) with an index git reads.
    #[test]
    fn a_damaged_pack_is_refused_or_installs_only_sound_objects(
        flips in proptest::collection::vec((12usize..100_000, 1u8..=255), 1..4),
    ) {
        let pack = small_pack();
        let body = pack.len() - 20;
        let mut bad = pack[..body].to_vec();
        for (at, xor) in &flips {
            bad[12 + (at - 12) % (body - 12)] ^= xor;
        }
        let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
        hasher.update(&bad);
        bad.extend_from_slice(hasher.try_finalize().unwrap().as_bytes());
        let peer = Node::new();
        let dst = peer.init(DST);
        match peer.ingest(DST, &bad) {
            Ok(_) => {
                let packs = dst.join("objects/pack");
                for entry in std::fs::read_dir(&packs).unwrap() {
                    let path = entry.unwrap().path();
                    if path.extension().is_some_and(|x| x == "idx") {
                        git(&dst, &["verify-pack", path.to_str().unwrap()]);
                    }
                }
            }
            Err(ServeError::Refused(_) | ServeError::Git(_)) => {
                proptest::prop_assert!(all_objects(&dst).is_empty());
            }
            Err(other) => proptest::prop_assert!(false, "{other:?}"),
        }
    }
}
