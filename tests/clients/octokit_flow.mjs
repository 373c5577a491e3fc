// A whole flow driven by octokit (@octokit/rest, GitHub's own JavaScript client)
// against a real guts-node, without git: commits through the contents API and
// through git data (blob -> tree -> commit -> ref), a pull request from that branch, a
// review requested from and given by a second user, and the merge.
//
// Run by tests/e2e/clients.rs with GUTS_URL, ALICE_TOKEN, BOB_TOKEN, OCTOKIT_REST (the
// package's directory) and RECORDING set: every answer octokit receives is appended
// to RECORDING as a JSON line, which tests/conformance/recording.py then checks
// against GitHub's published description. Any failed step exits non-zero.

import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import assert from "node:assert/strict";

const { Octokit } = await import(pathToFileURL(join(process.env.OCTOKIT_REST, "dist-src/index.js")).href);

function client(token) {
  const octokit = new Octokit({ auth: token, baseUrl: `${process.env.GUTS_URL}/api/v3`, request: { retries: 0 } });
  octokit.hook.wrap("request", async (request, options) => {
    const line = (status, url, body) =>
      appendFileSync(process.env.RECORDING, JSON.stringify({ method: options.method, url, status, body }) + "\n");
    try {
      const response = await request(options);
      line(response.status, response.url, response.data === "" ? null : response.data);
      return response;
    } catch (error) {
      if (error.status && error.response) {
        line(error.status, error.response.url, error.response.data === "" ? null : error.response.data);
      }
      throw error;
    }
  });
  return octokit;
}

async function status(promise) {
  try {
    return (await promise).status;
  } catch (error) {
    if (error.status) return error.status;
    throw error;
  }
}

const alice = client(process.env.ALICE_TOKEN);
const bob = client(process.env.BOB_TOKEN);
const owner = "alice";
const repo = "octo";
const b64 = (text) => Buffer.from(text).toString("base64");

const { data: created } = await alice.rest.repos.createForAuthenticatedUser({ name: repo, description: "driven by octokit" });
assert.equal(created.full_name, `${owner}/${repo}`);
await alice.rest.repos.addCollaborator({ owner, repo, username: "bob", permission: "push" });

// Contents API: create a file in the empty repository, then update it with its sha.
// (A stale sha's 409 is tested in tests/e2e/git_writes.rs: GitHub's description gives
// that answer two error schemas that any error body matches both of, so no answer,
// GitHub's included, validates against it.)
const { data: first } = await alice.rest.repos.createOrUpdateFileContents({
  owner, repo, path: "README.md", message: "Add README", content: b64("# octo\n"),
});
const { data: second } = await alice.rest.repos.createOrUpdateFileContents({
  owner, repo, path: "README.md", message: "Expand README", content: b64("# octo\n\nMade by octokit.\n"), sha: first.content.sha,
});
assert.equal(second.commit.parents[0].sha, first.commit.sha);
const { data: readme } = await bob.rest.repos.getContent({ owner, repo, path: "README.md" });
assert.equal(Buffer.from(readme.content, "base64").toString(), "# octo\n\nMade by octokit.\n");

// Git data: blob -> tree (on the base tree) -> commit -> ref, as bots commit.
const { data: main } = await alice.rest.git.getRef({ owner, repo, ref: "heads/main" });
const { data: base } = await alice.rest.git.getCommit({ owner, repo, commit_sha: main.object.sha });
const { data: blob } = await alice.rest.git.createBlob({ owner, repo, content: "console.log('hi')\n", encoding: "utf-8" });
const { data: tree } = await alice.rest.git.createTree({
  owner, repo, base_tree: base.tree.sha,
  tree: [{ path: "src/hello.js", mode: "100644", type: "blob", sha: blob.sha }],
});
const { data: commit } = await alice.rest.git.createCommit({
  owner, repo, message: "Add hello", tree: tree.sha, parents: [main.object.sha],
});
await alice.rest.git.createRef({ owner, repo, ref: "refs/heads/feature", sha: commit.sha });
assert.equal(await status(alice.rest.git.createRef({ owner, repo, ref: "refs/heads/feature", sha: commit.sha })), 422);

// The pull request, a review requested from bob and given by him, the merge.
const { data: pull } = await alice.rest.pulls.create({ owner, repo, title: "Add hello", head: "feature", base: "main" });
const { data: requested } = await alice.rest.pulls.requestReviewers({ owner, repo, pull_number: pull.number, reviewers: ["bob"] });
assert.deepEqual(requested.requested_reviewers.map((u) => u.login), ["bob"]);
await bob.rest.pulls.createReview({ owner, repo, pull_number: pull.number, event: "APPROVE", body: "Ship it." });
const { data: after } = await alice.rest.pulls.listRequestedReviewers({ owner, repo, pull_number: pull.number });
assert.deepEqual(after.users, []);
const { data: merged } = await alice.rest.pulls.merge({ owner, repo, pull_number: pull.number, merge_method: "merge" });
assert.equal(merged.merged, true);
const { data: hello } = await bob.rest.repos.getContent({ owner, repo, path: "src/hello.js" });
assert.equal(Buffer.from(hello.content, "base64").toString(), "console.log('hi')\n");
const { data: mergedPull } = await bob.rest.pulls.get({ owner, repo, pull_number: pull.number });
assert.equal(mergedPull.merged, true);

console.log("octokit flow: ok");
