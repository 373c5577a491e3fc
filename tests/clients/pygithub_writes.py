"""Writing without git through PyGithub against a real guts-node: files created,
updated and deleted, then a blob, a tree on a base tree, a commit, an annotated tag and
refs, the way bots and CI tools write. Every object PyGithub parses must carry what it
reads.

Run by tests/e2e/git_writes.rs with GUTS_URL and ALICE_TOKEN set, on an empty
repository alice/bots. Any failure exits non-zero with a trace.
"""

import os

from github import Auth, Github, GithubException, InputGitAuthor, InputGitTreeElement


def main():
    gh = Github(
        base_url=os.environ["GUTS_URL"] + "/api/v3",
        auth=Auth.Token(os.environ["ALICE_TOKEN"]),
        seconds_between_requests=None,
        seconds_between_writes=None,
        retry=None,
    )
    repo = gh.get_repo("alice/bots")

    created = repo.create_file("ci/status.txt", "Add status", "green\n")
    assert created["content"].path == "ci/status.txt", created
    first = created["content"].sha
    updated = repo.update_file(
        "ci/status.txt", "Update status", "red\n", first,
        committer=InputGitAuthor("CI Bot", "ci@example.com"),
    )
    assert updated["commit"].committer.name == "CI Bot", updated["commit"].committer
    try:
        repo.update_file("ci/status.txt", "stale", "x", first)
        raise AssertionError("a stale sha was accepted")
    except GithubException as e:
        assert e.status == 409, e
    assert repo.get_contents("ci/status.txt").decoded_content == b"red\n"
    deleted = repo.delete_file("ci/status.txt", "Remove status", updated["content"].sha)
    main_sha = deleted["commit"].sha

    blob = repo.create_git_blob("generated\n", "utf-8")
    base = repo.get_git_tree(repo.get_git_commit(main_sha).tree.sha)
    tree = repo.create_git_tree(
        [InputGitTreeElement("gen/out.txt", "100644", "blob", sha=blob.sha)], base
    )
    assert [e.path for e in tree.tree] == ["gen"], tree.tree
    parent = repo.get_git_commit(main_sha)
    commit = repo.create_git_commit("Generated", tree, [parent])
    assert commit.parents[0].sha == main_sha
    ref = repo.create_git_ref("refs/heads/generated", main_sha)
    ref.edit(commit.sha)
    assert repo.get_git_ref("heads/generated").object.sha == commit.sha
    try:
        ref.edit(main_sha)
        raise AssertionError("a non-fast-forward was accepted")
    except GithubException as e:
        assert e.status == 422, e
    ref.edit(main_sha, force=True)
    tag = repo.create_git_tag("v0.1", "First", commit.sha, "commit")
    assert tag.tag == "v0.1" and tag.object.sha == commit.sha, tag
    repo.create_git_ref("refs/tags/v0.1", tag.sha)
    ref.delete()
    names = sorted(r.ref for r in repo.get_git_refs())
    assert names == ["refs/heads/main", "refs/tags/v0.1"], names
    print("pygithub writes: ok")


if __name__ == "__main__":
    main()
