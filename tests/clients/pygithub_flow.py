"""A whole collaboration flow driven by PyGithub against a real guts-node.

Run by tests/e2e/clients.rs with GUTS_URL, ALICE_TOKEN, BOB_TOKEN, WORK and RECORDING
set. Every step asserts what GitHub would answer; any failure exits non-zero with a
trace. Every answer PyGithub receives is recorded to RECORDING, which
tests/conformance/recording.py then checks against GitHub's published description.
"""

import os
import subprocess
import sys
from pathlib import Path

from github import Auth, Github, GithubException

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
from recording import record_requests  # noqa: E402

record_requests(os.environ["RECORDING"])

BASE = os.environ["GUTS_URL"]
WORK = os.environ["WORK"]
HOST = BASE.split("://", 1)[1]


def client(token):
    return Github(
        base_url=BASE + "/api/v3",
        auth=Auth.Token(token),
        seconds_between_requests=None,
        seconds_between_writes=None,
        retry=None,
    )


def git(*args, cwd=None):
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", HOME=WORK)
    out = subprocess.run(
        ["git", "-c", "user.name=Alice", "-c", "user.email=alice@example.com",
         "-c", "init.defaultBranch=main", "-c", "credential.helper=", *args],
        cwd=cwd, env=env, capture_output=True, text=True,
    )
    if out.returncode != 0:
        sys.exit(f"git {' '.join(args)} failed: {out.stderr}")
    return out.stdout.strip()


def expect_status(status, action):
    try:
        action()
    except GithubException as e:
        assert e.status == status, f"expected {status}, got {e.status}: {e.data}"
        return e
    raise AssertionError(f"expected HTTP {status}, the call succeeded")


alice = client(os.environ["ALICE_TOKEN"])
bob = client(os.environ["BOB_TOKEN"])

me = alice.get_user()
assert me.login == "alice", me.login

# Create a repository and push to it with git.
repo = me.create_repo("flow", description="end to end", private=False)
assert repo.full_name == "alice/flow"
assert repo.url.endswith("/api/v3/repos/alice/flow"), repo.url
remote = f"http://alice:{os.environ['ALICE_TOKEN']}@{HOST}/alice/flow.git"
work = os.path.join(WORK, "flow")
git("init", "-q", work)
with open(os.path.join(work, "README.md"), "w") as f:
    f.write("# flow\n")
git("add", ".", cwd=work)
git("commit", "-qm", "initial", cwd=work)
git("push", "-q", remote, "main", cwd=work)
base_sha = git("rev-parse", "HEAD", cwd=work)
git("checkout", "-qb", "feature", cwd=work)
with open(os.path.join(work, "feature.txt"), "w") as f:
    f.write("a feature\n")
git("add", ".", cwd=work)
git("commit", "-qm", "add a feature", cwd=work)
git("push", "-q", remote, "feature", cwd=work)
head_sha = git("rev-parse", "HEAD", cwd=work)

# Bob may push; main needs one approving review.
repo.add_to_collaborators("bob", permission="push")
repo.get_branch("main").edit_protection(required_approving_review_count=1)

# An issue, a comment, labels.
issue = repo.create_issue(title="Something is broken", body="details", labels=["bug"])
assert issue.number == 1 and issue.state == "open"
comment = issue.create_comment("me too")
assert comment.body == "me too" and comment.user.login == "alice"
issue.add_to_labels("triage")
assert sorted(l.name for l in issue.get_labels()) == ["bug", "triage"]
assert [c.body for c in issue.get_comments()] == ["me too"]
assert sorted(l.name for l in repo.get_labels()) == ["bug", "triage"]
bob_issue = bob.get_repo("alice/flow").get_issue(1)
bob_issue.create_comment("looking")
assert repo.get_issue(1).comments == 2

# A pull request from the pushed branch: numbers are shared with issues.
pr = repo.create_pull(title="Add a feature", body="please", head="feature", base="main")
assert pr.number == 2, pr.number
assert pr.head.sha == head_sha and pr.base.sha == base_sha
fetched = repo.get_pull(2)
assert fetched.mergeable is True
# What it changes, from the objects: one commit adding one one-line file.
assert (fetched.commits, fetched.additions, fetched.deletions, fetched.changed_files) == (
    1, 1, 0, 1), (fetched.commits, fetched.additions, fetched.deletions, fetched.changed_files)
assert [p.number for p in repo.get_pulls(state="open")] == [2]

# Merging without the required approval is refused; so is approving your own PR.
expect_status(405, lambda: pr.merge())
expect_status(422, lambda: pr.create_review(body="mine", event="APPROVE"))
bob_pr = bob.get_repo("alice/flow").get_pull(2)
review = bob_pr.create_review(body="looks good", event="APPROVE")
assert review.state == "APPROVED" and review.user.login == "bob"
assert [r.state for r in pr.get_reviews()] == ["APPROVED"]

# A stale head sha is a 409; the real one merges.
expect_status(409, lambda: pr.merge(sha=base_sha))
status = pr.merge(merge_method="merge", sha=head_sha)
assert status.merged, status.message
merged = repo.get_pull(2)
assert merged.merged and merged.state == "closed" and merged.merge_commit_sha == status.sha
assert repo.get_issue(2).state == "closed"

# git sees the merge commit on main, with both parents.
git("fetch", "-q", remote, "main:refs/remotes/origin/main", cwd=work)
assert git("rev-parse", "origin/main", cwd=work) == status.sha
parents = git("rev-list", "--parents", "-n", "1", "origin/main", cwd=work).split()[1:]
assert parents == [base_sha, head_sha], parents
git("fsck", "--full", "--no-progress", cwd=work)

# Closing and reopening the issue.
issue.edit(state="closed")
assert repo.get_issue(1).state == "closed"
issue.edit(state="open")
assert repo.get_issue(1).state == "open"

# 250 more issues; the listing follows Link headers across pages.
for i in range(250):
    repo.create_issue(title=f"bulk {i}")
all_threads = list(repo.get_issues(state="all"))
numbers = sorted(i.number for i in all_threads)
assert numbers == list(range(1, 253)), (len(numbers), numbers[:5], numbers[-5:])
open_issues = repo.get_issues(state="open")
assert open_issues.totalCount == 251, open_issues.totalCount
print("pygithub flow: ok")
