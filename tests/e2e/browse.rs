//! The git-data REST endpoints (branches, refs, commits, trees, blobs, history,
//! compare, contents) on the real node, checked against what the stock `git` says
//! about the same history pushed to it: `rev-parse`, `log -- path`, `ls-tree`,
//! `cat-file`, `diff --numstat`, `merge-base`.

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::Value;

use crate::gitutil::*;
use crate::harness::*;

const DAY: i64 = 86_400;
const T0: i64 = 1_700_000_000;

/// A node, its users, and a work tree whose history is pushed to `alice/hist`.
struct Fixture {
    node: TestNode,
    alice: String,
    bob: String,
    git: Git,
    work: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let node = TestNode::start();
        let alice = create_user(&node, "alice");
        let bob = create_user(&node, "bob");
        let tmp = tempfile::tempdir().unwrap();
        let git = Git::v(2);
        let work = git.init(tmp.path(), "work");
        Fixture {
            node,
            alice,
            bob,
            git,
            work,
            _tmp: tmp,
        }
    }

    /// `GET /api/v3{path}` as `token` (anonymous if `None`): status and JSON body.
    fn get(&self, path: &str, token: Option<&str>) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = client().get(self.node.url(&format!("/api/v3{path}")));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let r = request.send().unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
        (status, body, headers)
    }

    /// A 200 body of `GET /api/v3/repos/alice/{path}`.
    #[track_caller]
    fn ok(&self, path: &str) -> Value {
        let (status, body, _) = self.get(&format!("/repos/alice/{path}"), None);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// The status and GitHub error message of `GET /api/v3/repos/alice/{path}`.
    fn status(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let (status, body, _) = self.get(&format!("/repos/alice/{path}"), token);
        (status, body["message"].as_str().unwrap_or("").to_string())
    }

    /// Writes (`Some`) or deletes (`None`) files and commits at `T0 + day` days.
    fn commit(&self, files: &[(&str, Option<&str>)], day: i64, message: &str) -> String {
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
        let date = format!("@{} +0000", T0 + day * DAY);
        let env = [
            ("GIT_AUTHOR_DATE", date.as_str()),
            ("GIT_COMMITTER_DATE", date.as_str()),
        ];
        self.git.ok(&self.work, &["add", "-A"]);
        self.git
            .ok_env(&self.work, &["commit", "--quiet", "-m", message], &env);
        self.git.rev(&self.work, "HEAD")
    }

    fn out(&self, args: &[&str]) -> String {
        self.git.out(&self.work, args)
    }

    fn lines(&self, args: &[&str]) -> Vec<String> {
        self.out(args).lines().map(String::from).collect()
    }
}

/// The string `key` of every object in a JSON array.
fn field(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c[key].as_str().unwrap().to_string())
        .collect()
}

fn shas(list: &Value) -> Vec<String> {
    field(list, "sha")
}

fn unbase64(content: &Value) -> Vec<u8> {
    let text: String = content.as_str().unwrap().split('\n').collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// main: c1 adds README.md, src/lib.rs, docs/guide.md; c2 edits src/lib.rs; c3 adds
/// src/util.rs; c4 removes docs/guide.md and edits README.md; c5..c9 edit notes.txt.
/// topic: from c3, one commit adding topic.txt. Tag v1 (annotated) at c2.
fn push_history(fx: &Fixture) -> Vec<String> {
    let mut ids = vec![
        fx.commit(
            &[
                ("README.md", Some("# hist\n\nintro\n")),
                ("src/lib.rs", Some("pub fn a() {}\n")),
                ("docs/guide.md", Some("guide\n")),
            ],
            0,
            "initial",
        ),
        fx.commit(
            &[("src/lib.rs", Some("pub fn a() {}\npub fn b() {}\n"))],
            1,
            "add b",
        ),
        fx.commit(&[("src/util.rs", Some("// util\n"))], 2, "util"),
        fx.commit(
            &[
                ("docs/guide.md", None),
                ("README.md", Some("# hist\n\nmore intro\nand a line\n")),
            ],
            3,
            "drop the guide\n\nwith a body",
        ),
    ];
    for i in 0..5 {
        let text = format!("note {i}\n");
        ids.push(fx.commit(&[("notes.txt", Some(&text))], 4 + i, &format!("note {i}")));
    }
    fx.git
        .ok(&fx.work, &["tag", "-a", "-m", "version one", "v1", &ids[1]]);
    fx.git
        .ok(&fx.work, &["checkout", "--quiet", "-b", "topic", &ids[2]]);
    fx.commit(&[("topic.txt", Some("topic\n"))], 20, "topic work");
    fx.git.ok(&fx.work, &["checkout", "--quiet", "main"]);
    let url = auth_url(&fx.node, "alice", &fx.alice, "alice/hist");
    fx.git
        .ok(&fx.work, &["push", "--quiet", &url, "main", "topic", "v1"]);
    ids
}

#[test]
fn git_data_endpoints_agree_with_git() {
    let fx = Fixture::new();
    create_repo(&fx.node, &fx.alice, "hist", false);

    // An empty repository: GitHub's 409 for history and files, no branches.
    for path in ["hist/commits", "hist/contents/README.md", "hist/git/refs"] {
        assert_eq!(
            fx.status(path, None),
            (409, "Git Repository is empty.".to_string()),
            "{path}"
        );
    }
    assert_eq!(fx.ok("hist/branches"), serde_json::json!([]));

    let ids = push_history(&fx);
    let main = fx.git.rev(&fx.work, "main");
    let topic = fx.git.rev(&fx.work, "topic");

    branches(&fx, &main, &topic);
    refs(&fx, &main);
    objects(&fx, &main);
    history(&fx, &ids);
    single_commits(&fx, &ids);
    comparisons(&fx, &main, &topic);
    contents(&fx, &ids);
}

fn branches(fx: &Fixture, main: &str, topic: &str) {
    let list = fx.ok("hist/branches");
    let names = field(&list, "name");
    assert_eq!(names, ["main", "topic"]);
    assert_eq!(list[0]["commit"]["sha"], main);
    assert_eq!(list[1]["commit"]["sha"], topic);
    assert_eq!(list[0]["protected"], false);

    let branch = fx.ok("hist/branches/main");
    assert_eq!(branch["name"], "main");
    assert_eq!(branch["commit"]["sha"], main);
    assert_eq!(
        branch["commit"]["commit"]["tree"]["sha"],
        fx.out(&["rev-parse", "main^{tree}"])
    );
    assert_eq!(
        branch["_links"]["self"],
        fx.node.url("/api/v3/repos/alice/hist/branches/main")
    );
    assert_eq!(branch["protection"]["enabled"], false);
    assert_eq!(fx.status("hist/branches/nope", None).0, 404);
}

fn refs(fx: &Fixture, main: &str) {
    let all = fx.ok("hist/git/refs");
    let names = field(&all, "ref");
    assert_eq!(names, fx.lines(&["for-each-ref", "--format=%(refname)"]));
    for r in all.as_array().unwrap() {
        let name = r["ref"].as_str().unwrap();
        assert_eq!(r["object"]["sha"], fx.out(&["rev-parse", name]), "{name}");
        assert_eq!(
            r["object"]["type"],
            fx.out(&["cat-file", "-t", name]),
            "{name}"
        );
    }

    let one = fx.ok("hist/git/ref/heads/main");
    assert_eq!(one["ref"], "refs/heads/main");
    assert_eq!(one["object"]["sha"], main);
    assert_eq!(one["object"]["type"], "commit");
    assert_eq!(
        one["url"],
        fx.node.url("/api/v3/repos/alice/hist/git/refs/heads/main")
    );
    assert_eq!(
        one["object"]["url"],
        fx.node
            .url(&format!("/api/v3/repos/alice/hist/git/commits/{main}"))
    );
    assert_eq!(fx.ok("hist/git/refs/heads/main")["object"]["sha"], main);
    assert_eq!(fx.status("hist/git/ref/heads/nope", None).0, 404);
    assert_eq!(fx.status("hist/git/ref/heads", None).0, 404);
    assert_eq!(
        fx.ok("hist/git/matching-refs/heads")
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        fx.ok("hist/git/matching-refs/heads/zzz"),
        serde_json::json!([])
    );
    assert_eq!(fx.ok("hist/git/refs/tags").as_array().unwrap().len(), 1);
}

fn objects(fx: &Fixture, main: &str) {
    let commit = fx.ok(&format!("hist/git/commits/{main}"));
    assert_eq!(commit["sha"], main);
    assert_eq!(commit["tree"]["sha"], fx.out(&["rev-parse", "main^{tree}"]));
    assert_eq!(commit["parents"][0]["sha"], fx.out(&["rev-parse", "main~"]));
    assert_eq!(
        commit["message"],
        fx.out(&["log", "-1", "--format=%B", "main"])
    );
    assert_eq!(commit["author"]["name"], "Guts Test");
    assert_eq!(commit["author"]["email"], "test@guts.invalid");
    assert_eq!(
        commit["author"]["date"],
        fx.out(&["log", "-1", "--format=%ad", "--date=iso-strict", "main"])
            .replace("+00:00", "Z")
    );

    let tree = fx.ok("hist/git/trees/main?recursive=1");
    assert_eq!(tree["sha"], fx.out(&["rev-parse", "main^{tree}"]));
    assert_eq!(tree["truncated"], false);
    let listed: Vec<String> = tree["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}\t{}",
                e["mode"].as_str().unwrap(),
                e["type"].as_str().unwrap(),
                e["sha"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(listed, fx.lines(&["ls-tree", "-r", "-t", "main"]));
    let flat = fx.ok(&format!("hist/git/trees/{}", tree["sha"].as_str().unwrap()));
    assert_eq!(
        flat["tree"].as_array().unwrap().len(),
        fx.lines(&["ls-tree", "main"]).len()
    );

    let readme = fx.out(&["rev-parse", "main:README.md"]);
    let blob = fx.ok(&format!("hist/git/blobs/{readme}"));
    assert_eq!(blob["encoding"], "base64");
    let bytes = fx.out(&["cat-file", "blob", &readme]) + "\n";
    assert_eq!(unbase64(&blob["content"]), bytes.as_bytes());
    assert_eq!(blob["size"], bytes.len());

    let zero = "0".repeat(40);
    for bad in [
        format!("hist/git/commits/{zero}"),
        format!("hist/git/commits/{readme}"),
        "hist/git/commits/xyz".to_string(),
        format!("hist/git/trees/{zero}"),
        format!("hist/git/trees/{readme}"),
        format!("hist/git/blobs/{main}"),
        "hist/git/blobs/nothex".to_string(),
    ] {
        assert_eq!(fx.status(&bad, None).0, 404, "{bad}");
    }
}

fn history(fx: &Fixture, ids: &[String]) {
    let list = fx.ok("hist/commits?per_page=100");
    assert_eq!(shas(&list), fx.lines(&["log", "--format=%H", "main"]));
    let first = &list[0];
    assert_eq!(
        first["url"],
        fx.node
            .url(&format!("/api/v3/repos/alice/hist/commits/{}", ids[8]))
    );
    assert_eq!(first["commit"]["message"], "note 4");
    assert_eq!(first["parents"][0]["sha"], ids[7]);

    for path in ["src", "README.md", "docs/guide.md", "src/util.rs", "absent"] {
        let list = fx.ok(&format!("hist/commits?path={path}"));
        assert_eq!(
            shas(&list),
            fx.lines(&["log", "--format=%H", "main", "--", path]),
            "path {path}"
        );
    }
    let topic = fx.ok("hist/commits?sha=topic");
    assert_eq!(shas(&topic), fx.lines(&["log", "--format=%H", "topic"]));
    let tagged = fx.ok(&format!("hist/commits?sha={}", &ids[2][..12]));
    assert_eq!(
        shas(&tagged),
        ids[..3].iter().rev().cloned().collect::<Vec<_>>()
    );

    // since/until by committer date, as git log filters.
    let since = "2023-11-17T00:00:00Z";
    let until = "2023-11-19T12:00:00+02:00";
    let window = fx.ok(&format!(
        "hist/commits?since={since}&until={}",
        until.replace('+', "%2B")
    ));
    assert_eq!(
        shas(&window),
        fx.lines(&[
            "log",
            "--format=%H",
            "main",
            &format!("--since={since}"),
            &format!("--until={until}")
        ])
    );
    assert!(!shas(&window).is_empty());
    assert_eq!(fx.status("hist/commits?since=yesterday", None).0, 422);
    assert_eq!(fx.status("hist/commits?sha=nope", None).0, 404);
    assert_eq!(
        fx.ok("hist/commits?author=test@guts")
            .as_array()
            .unwrap()
            .len(),
        9
    );
    assert_eq!(
        fx.ok("hist/commits?author=nobody")
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Pagination: Link and X-Total-Count as GitHub sends them.
    let all = fx.lines(&["log", "--format=%H", "main"]);
    let (status, page2, headers) = fx.get("/repos/alice/hist/commits?per_page=2&page=2", None);
    assert_eq!(status, 200);
    assert_eq!(shas(&page2), all[2..4]);
    assert_eq!(headers["x-total-count"], all.len().to_string().as_str());
    let link = headers["link"].to_str().unwrap();
    let base = fx.node.url("/api/v3/repos/alice/hist/commits");
    for rel in [
        format!("<{base}?per_page=2&page=3>; rel=\"next\""),
        format!("<{base}?per_page=2&page=5>; rel=\"last\""),
        format!("<{base}?per_page=2&page=1>; rel=\"first\""),
        format!("<{base}?per_page=2&page=1>; rel=\"prev\""),
    ] {
        assert!(link.contains(&rel), "{rel} in {link}");
    }
}

fn single_commits(fx: &Fixture, ids: &[String]) {
    let c4 = fx.ok(&format!("hist/commits/{}", ids[3]));
    assert_eq!(c4["sha"], ids[3]);
    assert_eq!(c4["commit"]["message"], "drop the guide\n\nwith a body");
    let files = c4["files"].as_array().unwrap();
    let mut listed: Vec<String> = files
        .iter()
        .map(|f| {
            format!(
                "{}\t{}\t{}",
                f["additions"],
                f["deletions"],
                f["filename"].as_str().unwrap()
            )
        })
        .collect();
    listed.sort();
    let mut numstat = fx.lines(&["diff", "--numstat", &format!("{}~", ids[3]), &ids[3]]);
    numstat.sort();
    assert_eq!(listed, numstat);
    let status_of = |name: &str| {
        files.iter().find(|f| f["filename"] == name).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status_of("README.md"), "modified");
    assert_eq!(status_of("docs/guide.md"), "removed");
    let adds: u64 = files.iter().map(|f| f["additions"].as_u64().unwrap()).sum();
    assert_eq!(c4["stats"]["additions"], adds);

    let root = fx.ok(&format!("hist/commits/{}", ids[0]));
    assert!(
        root["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "added")
    );
    assert_eq!(fx.ok("hist/commits/main")["sha"], ids[8]);
    assert_eq!(fx.ok("hist/commits/v1")["sha"], ids[1]);
    let zero = "0".repeat(40);
    assert_eq!(
        fx.status(&format!("hist/commits/{zero}"), None),
        (422, format!("No commit found for SHA: {zero}"))
    );
    assert_eq!(fx.status("hist/commits/nope", None).0, 422);
}

fn comparisons(fx: &Fixture, main: &str, topic: &str) {
    let c = fx.ok("hist/compare/main...topic");
    let counts = fx.out(&["rev-list", "--left-right", "--count", "main...topic"]);
    let (behind, ahead) = counts.split_once('\t').unwrap();
    assert_eq!(c["ahead_by"].to_string(), ahead);
    assert_eq!(c["behind_by"].to_string(), behind);
    assert_eq!(c["status"], "diverged");
    assert_eq!(c["total_commits"].to_string(), ahead);
    assert_eq!(
        c["merge_base_commit"]["sha"],
        fx.out(&["merge-base", "main", "topic"])
    );
    assert_eq!(c["base_commit"]["sha"], main);
    assert_eq!(
        shas(&c["commits"]),
        fx.lines(&["rev-list", "--reverse", "main..topic"])
    );
    let files = field(&c["files"], "filename");
    assert_eq!(files, fx.lines(&["diff", "--name-only", "main...topic"]));

    let ahead = fx.ok(&format!(
        "hist/compare/{}...main",
        fx.out(&["rev-parse", "main~3"])
    ));
    assert_eq!(
        (ahead["status"].as_str(), ahead["ahead_by"].as_u64()),
        (Some("ahead"), Some(3))
    );
    let behind = fx.ok("hist/compare/main...v1");
    assert_eq!(behind["status"], "behind");
    assert_eq!(behind["behind_by"], 7);
    let same = fx.ok(&format!("hist/compare/{topic}...topic"));
    assert_eq!(
        (same["status"].as_str(), same["total_commits"].as_u64()),
        (Some("identical"), Some(0))
    );
    assert_eq!(fx.status("hist/compare/nope...main", None).0, 404);
    assert_eq!(fx.status("hist/compare/main", None).0, 404);
}

fn contents(fx: &Fixture, ids: &[String]) {
    let readme = fx.ok("hist/contents/README.md");
    assert_eq!(readme["type"], "file");
    assert_eq!(readme["encoding"], "base64");
    assert_eq!(readme["name"], "README.md");
    assert_eq!(readme["path"], "README.md");
    assert_eq!(readme["sha"], fx.out(&["rev-parse", "main:README.md"]));
    let text = std::fs::read(fx.work.join("README.md")).unwrap();
    assert_eq!(unbase64(&readme["content"]), text);
    assert_eq!(readme["size"], text.len());
    assert_eq!(
        readme["url"],
        fx.node
            .url("/api/v3/repos/alice/hist/contents/README.md?ref=main")
    );
    assert_eq!(readme["_links"]["git"], readme["git_url"]);

    let old = fx.ok(&format!("hist/contents/docs/guide.md?ref={}", ids[0]));
    assert_eq!(unbase64(&old["content"]), b"guide\n");

    let src = fx.ok("hist/contents/src");
    let names = field(&src, "path");
    assert_eq!(
        names,
        fx.lines(&["ls-tree", "--name-only", "main:src"])
            .iter()
            .map(|n| format!("src/{n}"))
            .collect::<Vec<_>>()
    );
    let root = fx.ok("hist/contents");
    let kinds: Vec<(String, String)> = root
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = fx
        .lines(&["ls-tree", "main"])
        .iter()
        .map(|line| {
            let (meta, name) = line.split_once('\t').unwrap();
            let kind = if meta.contains(" tree ") {
                "dir"
            } else {
                "file"
            };
            (name.to_string(), kind.to_string())
        })
        .collect();
    assert_eq!(kinds, expected);
    assert_eq!(fx.status("hist/contents/docs/guide.md", None).0, 404);
    assert_eq!(fx.status("hist/contents/README.md?ref=nope", None).0, 404);
}

/// A private repository is a 404 to an outsider on every git-data endpoint, and
/// readable by its owner.
#[test]
fn private_repositories_are_invisible_to_outsiders() {
    let fx = Fixture::new();
    create_repo(&fx.node, &fx.alice, "secret", true);
    let sha = fx.commit(&[("a.txt", Some("a\n"))], 0, "one");
    let url = auth_url(&fx.node, "alice", &fx.alice, "alice/secret");
    fx.git.ok(&fx.work, &["push", "--quiet", &url, "main"]);
    let paths = [
        "secret/branches".to_string(),
        "secret/branches/main".to_string(),
        "secret/git/refs".to_string(),
        "secret/git/ref/heads/main".to_string(),
        format!("secret/git/commits/{sha}"),
        "secret/git/trees/main".to_string(),
        "secret/commits".to_string(),
        format!("secret/commits/{sha}"),
        "secret/compare/main...main".to_string(),
        "secret/contents/a.txt".to_string(),
    ];
    for path in &paths {
        assert_eq!(fx.status(path, Some(&fx.bob)).0, 404, "bob: {path}");
        assert_eq!(fx.status(path, None).0, 404, "anonymous: {path}");
        assert_eq!(fx.status(path, Some(&fx.alice)).0, 200, "alice: {path}");
    }
}
