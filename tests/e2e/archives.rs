//! Repository archives (`GET /repos/{o}/{r}/tarball/{ref}` and `/zipball/{ref}`) from
//! a real node: GitHub's 302 to the download, which the real `tar` and `unzip` extract
//! into exactly what `git clone` checks out (modes and symlinks included, submodules
//! left out), under GitHub's `{owner}-{repo}-{short sha}/`; and the node's heap while
//! it streams the archive of a 100 MB repository.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use crate::git::{AnonSampler, peak_rss_mib};
use crate::gitutil::*;
use crate::harness::*;

const MB: usize = 1024 * 1024;

/// A client that does not follow redirects, to see GitHub's 302 itself.
fn no_follow() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .unwrap()
}

/// `GET /api/v3{path}` as `token` (anonymous when empty): the status and `Location`.
fn archive_redirect(node: &TestNode, token: &str, path: &str) -> (u16, Option<String>, String) {
    let mut req = no_follow().get(node.url(&format!("/api/v3{path}")));
    if !token.is_empty() {
        req = req.header("Authorization", format!("token {token}"));
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, location, r.text().unwrap_or_default())
}

/// Downloads `url` (following nothing) into `to`; returns the content type.
fn download(url: &str, token: &str, to: &Path) -> String {
    let mut req = no_follow().get(url);
    if !token.is_empty() {
        req = req.header("Authorization", format!("token {token}"));
    }
    let mut r = req.send().unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let kind = r.headers()["content-type"].to_str().unwrap().to_string();
    let mut file = std::fs::File::create(to).unwrap();
    r.copy_to(&mut file).unwrap();
    kind
}

/// What a directory holds: path → ("file" + exec bit + bytes | "link" + target).
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn visit(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".git" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, format!("link {}", target.display()));
            } else if meta.is_dir() {
                out.insert(format!("{rel}/"), "dir".into());
                visit(root, &path, out);
            } else {
                let exec = meta.permissions().mode() & 0o111 != 0;
                let bytes = std::fs::read(&path).unwrap();
                out.insert(
                    rel,
                    format!("file exec={exec} {}", blake3::hash(&bytes).to_hex()),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, root, &mut out);
    out
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tarball_and_zipball_extract_to_what_git_checks_out() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "arch", false);
    create_repo(&node, &alice, "secret", true);
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let work = git.init(tmp.path(), "arch");
    let long = format!("{}/{}.txt", "d".repeat(60), "long-name-".repeat(8));
    git.commit(
        &work,
        &[
            ("README.md", b"# arch\n"),
            ("src/lib.rs", b"pub fn f() {}\n"),
            ("src/deep/er/most.txt", b"deep\n"),
            ("bin/run.sh", b"#!/bin/sh\necho hi\n"),
            ("caf\u{e9}/na\u{ef}ve.txt", b"unicode\n"),
            (long.as_str(), b"a path over ustar's 100 bytes\n"),
            ("big.bin", &Prng::new(7).bytes(3 * MB)),
        ],
        "Initial commit",
    );
    std::fs::set_permissions(
        work.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("src/lib.rs", work.join("link-to-lib")).unwrap();
    std::os::unix::fs::symlink("../README.md", work.join("src/up")).unwrap();
    git.ok(&work, &["add", "-A"]);
    // A submodule entry (a gitlink): archives leave it out, as GitHub's do.
    let pinned = git.rev(&work, "HEAD");
    git.ok(
        &work,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{pinned},vendor/sub"),
        ],
    );
    git.ok(
        &work,
        &["commit", "--quiet", "-m", "Modes, links, a submodule"],
    );
    git.ok(&work, &["tag", "v1.0"]);
    let head = git.rev(&work, "HEAD");
    let url = auth_url(&node, "alice", &alice, "alice/arch");
    git.ok(&work, &["push", "--quiet", &url, "main", "v1.0"]);
    // A later commit on main: the tag must still give the tagged tree.
    git.commit(&work, &[("later.txt", b"later\n")], "Later");
    git.ok(&work, &["push", "--quiet", &url, "main"]);

    let checkout = git.clone(&anon_url(&node, "alice/arch"), tmp.path(), "checkout");
    git.ok(&checkout, &["checkout", "--quiet", "v1.0"]);
    let mut expected = snapshot(&checkout);
    // git checks a submodule out as an empty directory; archives have no entry.
    assert_eq!(expected.remove("vendor/sub/").as_deref(), Some("dir"));
    assert!(expected.contains_key("link-to-lib"), "{expected:?}");
    let top = format!("alice-arch-{}", &head[..7]);

    for (kind, path) in [("tarball", "/tarball/v1.0"), ("zipball", "/zipball/v1.0")] {
        let (status, location, body) =
            archive_redirect(&node, "", &format!("/repos/alice/arch{path}"));
        assert_eq!(status, 302, "{kind}: {body}");
        let location = location.unwrap();
        assert!(location.contains(&head), "{location}");
        let out = tmp.path().join(kind);
        std::fs::create_dir_all(&out).unwrap();
        let file = out.join("archive");
        let content_type = download(&location, "", &file);
        match kind {
            "tarball" => {
                assert_eq!(content_type, "application/x-gzip");
                run(Command::new("tar")
                    .arg("-xzf")
                    .arg(&file)
                    .arg("-C")
                    .arg(&out));
                // The commit id in the pax global header, as `git archive` writes it.
                let id = Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "gzip -dc {} | git get-tar-commit-id",
                        file.display()
                    ))
                    .output()
                    .unwrap();
                assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), head);
            }
            _ => {
                assert_eq!(content_type, "application/zip");
                run(Command::new("unzip")
                    .arg("-q")
                    .arg(&file)
                    .arg("-d")
                    .arg(&out));
                run(Command::new("unzip").arg("-tq").arg(&file));
            }
        }
        std::fs::remove_file(&file).unwrap();
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![top.clone()], "{kind}: one top directory");
        let mut got = snapshot(&out.join(&top));
        // The submodule's parent directory exists in the checkout (holding the empty
        // submodule directory) and in the archive only if it holds something else.
        expected.remove("vendor/");
        got.remove("vendor/");
        assert_eq!(got, expected, "{kind}");
    }

    // Without a ref: the default branch (with the later commit).
    let main = git.rev(&work, "HEAD");
    let (status, location, _) = archive_redirect(&node, "", "/repos/alice/arch/tarball");
    assert_eq!(status, 302);
    assert!(
        location
            .unwrap()
            .ends_with(&format!("/alice/arch/legacy.tar.gz/{main}"))
    );
    let (status, location, _) = archive_redirect(&node, "", "/repos/alice/arch/zipball/main");
    assert_eq!(status, 302);
    assert!(
        location
            .unwrap()
            .ends_with(&format!("/alice/arch/legacy.zip/{main}"))
    );

    // A ref that names nothing, a sha that is not here: GitHub's 404 JSON.
    let (status, _, body) = archive_redirect(&node, "", "/repos/alice/arch/tarball/no-such-ref");
    assert_eq!(status, 404, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["message"], "Not Found");
    let r = no_follow()
        .get(node.url(&format!("/alice/arch/legacy.zip/{}", "0".repeat(40))))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);

    // A private repository: 404 to a stranger, the archive to its owner, whose
    // credentials a client keeps sending across the same-origin redirect.
    let work2 = git.init(tmp.path(), "secret");
    git.commit(&work2, &[("s.txt", b"secret\n")], "Secret");
    git.ok(
        &work2,
        &[
            "push",
            "--quiet",
            &auth_url(&node, "alice", &alice, "alice/secret"),
            "main",
        ],
    );
    let (status, _, _) = archive_redirect(&node, "", "/repos/alice/secret/tarball");
    assert_eq!(status, 404);
    let (status, location, _) = archive_redirect(&node, &alice, "/repos/alice/secret/tarball");
    assert_eq!(status, 302);
    let location = location.unwrap();
    let r = no_follow().get(&location).send().unwrap();
    assert_eq!(r.status(), 404, "anonymous download of a private archive");
    let r = client()
        .get(node.url("/api/v3/repos/alice/secret/zipball"))
        .header("Authorization", format!("token {alice}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "followed with credentials");
    assert!(r.bytes().unwrap().starts_with(b"PK\x03\x04"));
}

/// THE ARCHIVE MEMORY MEASUREMENT, after `push_of_100_mb_streams_with_bounded_memory`:
/// the node's heap (`RssAnon`, sampled every 5 ms) while it streams the tarball and
/// the zipball of a 100 MB repository (ten 5 MiB files and one 60 MiB file, stored
/// whole as git stores large files) must stay far below the archive's size. The 60 MiB
/// blob is over the 32 MiB a read may inflate, so the archive is complete only if it
/// was streamed.
#[test]
fn archive_of_100_mb_streams_with_bounded_memory() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "large", false);
    let git = Git::v(2);
    let tmp = tempfile::tempdir().unwrap();
    let work = git.init(tmp.path(), "large");
    write_random_files(&work, "data", 10, 5 * MB, 99);
    std::fs::write(work.join("huge.bin"), Prng::new(5).bytes(60 * MB)).unwrap();
    git.ok(&work, &["-c", "core.bigFileThreshold=1m", "add", "-A"]);
    git.ok(&work, &["commit", "--quiet", "-m", "100 MB"]);
    let head = git.rev(&work, "HEAD");
    let url = auth_url(&node, "alice", &alice, "alice/large");
    git.ok(
        &work,
        &[
            "-c",
            "core.bigFileThreshold=1m",
            "push",
            "--quiet",
            &url,
            "main",
        ],
    );
    let at_start = peak_rss_mib(&node);
    let anon_now = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024.0
    };
    eprintln!(
        "guts-node RssAnon before the downloads: {:.1} MiB",
        anon_now()
    );
    let mut anon_peak: f64 = 0.0;
    for (kind, ext) in [("tarball", "tar.gz"), ("zipball", "zip")] {
        let (status, location, body) =
            archive_redirect(&node, &alice, &format!("/repos/alice/large/{kind}/main"));
        assert_eq!(status, 302, "{body}");
        let file = tmp.path().join(format!("large.{ext}"));
        let sampler = AnonSampler::start(&node);
        download(&location.unwrap(), &alice, &file);
        let anon = sampler.peak_mib();
        anon_peak = anon_peak.max(anon);
        let size = std::fs::metadata(&file).unwrap().len();
        eprintln!(
            "guts-node memory, {kind} of 100 MB ({:.1} MiB archive): peak RssAnon {anon:.1} MiB \
             during the download; VmHWM {at_start:.1} MiB at start, {:.1} MiB after",
            size as f64 / MB as f64,
            peak_rss_mib(&node)
        );
        assert!(size > 100 * MB as u64, "{kind}: {size} bytes");
        // Every byte arrived and the archive is well formed.
        let list = tmp.path().join(format!("{kind}.list"));
        let listed = match kind {
            "tarball" => Command::new("tar").arg("-tzf").arg(&file).output().unwrap(),
            _ => Command::new("unzip")
                .arg("-tq")
                .arg(&file)
                .output()
                .unwrap(),
        };
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        std::fs::write(&list, &listed.stdout).unwrap();
        // The streamed 60 MiB blob arrived byte for byte.
        let out = tmp.path().join(format!("{kind}-out"));
        std::fs::create_dir_all(&out).unwrap();
        let member = format!("alice-large-{}/huge.bin", &head[..7]);
        match kind {
            "tarball" => run(Command::new("tar")
                .arg("-xzf")
                .arg(&file)
                .arg("-C")
                .arg(&out)
                .arg(&member)),
            _ => run(Command::new("unzip")
                .arg("-q")
                .arg(&file)
                .arg(&member)
                .arg("-d")
                .arg(&out)),
        }
        let got = std::fs::read(out.join(&member)).unwrap();
        assert!(
            got == std::fs::read(work.join("huge.bin")).unwrap(),
            "{kind}: huge.bin differs"
        );
        std::fs::remove_dir_all(&out).unwrap();
        std::fs::remove_file(&file).unwrap();
    }
    let tar_list = std::fs::read_to_string(tmp.path().join("tarball.list")).unwrap();
    assert!(tar_list.contains(&format!("alice-large-{}/huge.bin", &head[..7])));
    eprintln!("guts-node peak RssAnon over both 100 MB archives: {anon_peak:.1} MiB");
    assert!(
        anon_peak < 80.0,
        "guts-node heap (RssAnon) peaked at {anon_peak:.1} MiB: is an archive or a blob held whole?"
    );
}
