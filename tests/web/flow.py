#!/usr/bin/env python3
"""Drives the web interface of real Guts nodes in a headless chromium (selenium).

Run by the end-to-end tests (tests/e2e/web/), one scenario per run:

  flow      sign in, create a repository (the test pushes it with git when asked),
            browse tree, blob and commits, open an issue and comment, add a
            collaborator, open a pull request, sign in as the second user and approve,
            merge as the first. With --url-b, everything after the pull request is
            opened happens on node B (the session made on A is presented to B first).
  xss       hostile file names, file contents, README, issue title and body and a
            comment render inert, and raw HTML/SVG files do not execute.
  big-blob  a 5,000-line file renders every line and `#L4999` targets its line.

The test talks to the script over stdin/stdout: a line `NEED <what> <json>` asks the
test to act (push with git, ...) and the test answers one line of JSON. Other
stdout lines are progress (`STEP ...`) and, at the end, `RESULT <json>` and
`WEB <scenario>: ok`. On any mismatch the script prints what it expected, the
current URL and an excerpt of the page to stderr, saves a `FAILED` screenshot and
exits 1. One screenshot per page visited goes to --shots, named by step.

Users are `login:password` (--alice, --bob); the fixture the test prepared (xss,
big-blob) is JSON in --fixture.
"""

import argparse
import json
import os
import re
import sys
from pathlib import Path

try:
    from selenium import webdriver
    from selenium.common.exceptions import (
        NoAlertPresentException,
        NoSuchElementException,
        TimeoutException,
        UnexpectedAlertPresentException,
        WebDriverException,
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    from selenium.webdriver.support.ui import WebDriverWait as _WebDriverWait
    from selenium.common.exceptions import StaleElementReferenceException

    def WebDriverWait(driver, timeout, poll_frequency=0.5):
        # An element read while the page is being replaced (a form just submitted) is
        # stale, or chromedriver says its node "does not belong to the document": the
        # wait tries again on the new page, and fails only at its timeout.
        return _WebDriverWait(driver, timeout, poll_frequency=poll_frequency,
                              ignored_exceptions=(StaleElementReferenceException,
                                                  WebDriverException))
except ImportError as e:  # pragma: no cover - environment problem
    sys.stderr.write(f"selenium is missing ({e}): run scripts/test.sh (it installs it)\n")
    sys.exit(2)

CHROMIUM = os.environ.get("GUTS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GUTS_CHROMEDRIVER", "/usr/bin/chromedriver")
# Pages are rendered server-side: once `get` returns, an element is there or not.
WAIT = 10
# How links name the branch `main`: by name or by the commit it points at.
REF = "(?:main|[0-9a-f]{40})"
# Replication between two nodes.
REPLICATION = 45


class Failure(Exception):
    pass


def log(line):
    print(line, flush=True)


class Browser:
    def __init__(self, shots):
        for path, what in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromedriver")]:
            if not os.access(path, os.X_OK):
                raise Failure(f"{what} not found at {path}: run scripts/test.sh (it installs "
                              "Debian's chromium and chromium-driver)")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--window-size=1280,1024", "--disable-gpu", "--no-first-run",
                    "--disable-extensions", "--password-store=basic"]:
            options.add_argument(arg)
        # An alert a payload opens must stay open for the checks to see it.
        options.set_capability("unhandledPromptBehavior", "ignore")
        self.d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.d.set_page_load_timeout(30)
        self.shots = Path(shots)
        self.shots.mkdir(parents=True, exist_ok=True)
        self.n = 0

    # ---- failure reporting ----

    def fail(self, message):
        raise Failure(message)

    def report(self, message):
        try:
            url = self.d.current_url
        except WebDriverException as e:
            url = f"(unknown: {e.__class__.__name__})"
        try:
            source = self.d.page_source
        except UnexpectedAlertPresentException:
            source = "(an alert is open)"
        except WebDriverException as e:
            source = f"(unavailable: {e.__class__.__name__})"
        excerpt = source if len(source) <= 3000 else source[:3000] + "\n[... truncated]"
        sys.stderr.write(f"FAIL: {message}\n  at URL: {url}\n  page source excerpt:\n{excerpt}\n")
        try:
            self.d.save_screenshot(str(self.shots / f"{self.n + 1:02d}-FAILED.png"))
        except WebDriverException:
            pass

    # ---- pages ----

    def shot(self, step):
        self.n += 1
        self.d.save_screenshot(str(self.shots / f"{self.n:02d}-{step}.png"))
        log(f"STEP {self.n:02d} {step}: {self.d.current_url}")

    def _error_page(self):
        found = self.d.find_elements(By.CSS_SELECTOR, "main.error-page h1")
        return found[0].text if found else None

    def wait_css(self, css, what=None, timeout=WAIT):
        """The first element matching `css`; fails early on an error page."""
        foreign = []

        def ready(d):
            found = d.find_elements(By.CSS_SELECTOR, css)
            if found:
                return found[0]
            if self._error_page() is not None:
                return "error"
            # Every page of the interface has `a#home`; a loaded document without it
            # (twice in a row, not a navigation in progress) is something else.
            loaded = d.execute_script("return document.readyState") == "complete"
            foreign.append(loaded and not d.find_elements(By.CSS_SELECTOR, "header a#home"))
            return "foreign" if foreign[-2:] == [True, True] else False
        try:
            got = WebDriverWait(self.d, timeout).until(ready)
        except TimeoutException:
            self.fail(f"expected {what or css} (`{css}`) within {timeout}s; the page has none")
        if got == "error":
            self.fail(f"expected {what or css} (`{css}`) but got an error page: "
                      f"{self._error_page()!r}")
        if got == "foreign":
            self.fail(f"expected {what or css} (`{css}`) but this is not a page of the web "
                      "interface (no `header a#home`)")
        return got

    def absent(self, css, why):
        if self.d.find_elements(By.CSS_SELECTOR, css):
            self.fail(f"`{css}` should be absent: {why}")

    def all(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def texts(self, css):
        return [e.text.strip() for e in self.all(css)]

    def goto(self, url, step, css):
        self.d.get(url)
        element = self.wait_css(css, f"the page of step {step}")
        self.shot(step)
        return element

    def reload_until(self, url, css, step, timeout=REPLICATION, gone=None):
        """Reloads `url` until `css` is there (and `gone` is not): replication."""
        def ready(d):
            d.get(url)
            if not d.find_elements(By.CSS_SELECTOR, css):
                return False
            return gone is None or not d.find_elements(By.CSS_SELECTOR, gone)
        try:
            WebDriverWait(self.d, timeout, poll_frequency=0.5).until(ready)
        except TimeoutException:
            extra = f" and no `{gone}`" if gone else ""
            self.fail(f"{url} did not show `{css}`{extra} within {timeout}s")
        self.shot(step)

    def wait_text(self, css, expected, timeout=WAIT, exact=True):
        def ready(d):
            for e in d.find_elements(By.CSS_SELECTOR, css):
                text = e.text.strip()
                if (text == expected) if exact else (expected in text):
                    return e
            return False
        try:
            return WebDriverWait(self.d, timeout).until(ready)
        except TimeoutException:
            err = self._error_page()
            self.fail(f"expected `{css}` with text {expected!r} ({'exact' if exact else 'contains'}); "
                      f"found {self.texts(css)!r}" + (f"; error page {err!r}" if err else ""))

    def path(self):
        return re.sub(r"^https?://[^/]+", "", self.d.current_url)

    def expect_path(self, pattern, what):
        """Waits for the current path (with query, without the fragment) to match."""
        try:
            WebDriverWait(self.d, WAIT).until(
                lambda d: re.fullmatch(pattern, self.path().split("#")[0]))
        except TimeoutException:
            self.fail(f"expected to be at {pattern} ({what}), at {self.path()}")
        return re.fullmatch(pattern, self.path().split("#")[0])

    def fill(self, css, value):
        element = self.wait_css(css)
        element.clear()
        element.send_keys(value)

    def choose(self, css, value):
        """Selects the option of `css` whose value (given or implied by its text) is
        `value`."""
        select = Select(self.wait_css(css))
        for option in select.options:
            if option.get_attribute("value") == value:
                option.click()
                return
        self.fail(f"`{css}` has no option {value!r}: "
                  f"{[o.get_attribute('value') for o in select.options]}")

    def click(self, css):
        self.wait_css(css).click()

    def attr(self, css, name):
        return self.wait_css(css).get_attribute(name)

    # ---- XSS checks ----

    def assert_inert(self, where):
        """No payload ran on this page: no alert, `window.__xss` undefined, the title
        untouched, and no script, event handler or `javascript:` URL in the DOM."""
        try:
            WebDriverWait(self.d, WAIT).until(lambda d: d.execute_script(
                "return document.readyState === 'complete' && "
                "Array.from(document.images).every(i => i.complete)"))
        except UnexpectedAlertPresentException:
            pass
        except TimeoutException:
            self.fail(f"{where}: the page and its images did not finish loading")
        try:
            alert = self.d.switch_to.alert
            text = alert.text
            alert.dismiss()
            self.fail(f"{where}: a payload ran: an alert opened with {text!r}")
        except NoAlertPresentException:
            pass
        state = self.d.execute_script("return [typeof window.__xss, String(window.__xss)]")
        if state[0] != "undefined":
            self.fail(f"{where}: a payload ran: window.__xss = {state[1]!r}")
        if "pwned" in self.d.title:
            self.fail(f"{where}: a payload ran: document.title = {self.d.title!r}")
        bad = self.d.execute_script("""
            const bad = [];
            for (const s of document.scripts) {
              if (!s.src || s.text.includes('__xss') || s.src.includes('__xss')) bad.push('script: ' + (s.src || s.text).slice(0, 80));
            }
            for (const e of document.querySelectorAll('*')) {
              for (const n of e.getAttributeNames()) {
                const v = (e.getAttribute(n) || '').replace(/[\\s\\u0000-\\u001f]/g, '').toLowerCase();
                if (n.startsWith('on')) bad.push(e.tagName + '[' + n + ']');
                const url = ['href', 'src', 'action', 'formaction', 'xlink:href', 'data', 'srcdoc', 'poster'].includes(n);
                if (url && (v.startsWith('javascript:') || v.startsWith('data:text/html'))) bad.push(e.tagName + '[' + n + '=' + v.slice(0, 60) + ']');
              }
            }
            for (const e of document.querySelectorAll('iframe, object, embed, frame')) bad.push(e.tagName);
            return bad;""")
        if bad:
            self.fail(f"{where}: live markup from a payload in the DOM: {bad}")


def user(spec):
    login, _, password = spec.partition(":")
    if not login or not password:
        raise argparse.ArgumentTypeError("expected login:password")
    return login, password


def ask(what, payload):
    """Asks the test to act; returns its JSON answer."""
    log(f"NEED {what} {json.dumps(payload)}")
    line = sys.stdin.readline()
    if not line:
        raise Failure(f"the test did not answer NEED {what}")
    answer = json.loads(line)
    if "error" in answer:
        raise Failure(f"the test could not {what}: {answer['error']}")
    return answer


# ---- Signing in and out ----

def sign_in(b, base, login, password, step):
    b.goto(f"{base}/login", f"{step}-login-form", "form#login-form")
    b.fill("form#login-form input[name=login]", login)
    b.fill("form#login-form input[name=password]", password)
    b.click("#sign-in")
    b.wait_text("#user-menu #current-user", login)
    b.expect_path("/", "the dashboard after signing in")
    b.shot(f"{step}-signed-in")


def sign_out(b, base, step):
    b.click("form#sign-out button")
    b.wait_css("a#sign-in-link", "the sign-in link after signing out")
    b.expect_path("/", "the home page after signing out")
    b.absent("#current-user", "signed out")
    b.shot(f"{step}-signed-out")


# ---- Scenario: the whole collaboration flow ----

def entry(b, name):
    for e in b.all("table#files a.entry"):
        if e.text.strip() == name:
            return e
    b.fail(f"no entry {name!r} in table#files; entries: {b.texts('table#files a.entry')}")


def scenario_flow(b, args):
    a_url, b_url = args.url.rstrip("/"), (args.url_b or args.url).rstrip("/")
    (alice, alice_pw), (bob, bob_pw) = args.alice, args.bob
    repo = args.repo
    full = f"{alice}/{repo}"

    # Signed out: the welcome page; sign in through its link.
    b.goto(f"{a_url}/", "welcome", "a#sign-in-link")
    b.absent("#current-user", "nobody signed in yet")
    b.click("a#sign-in-link")
    b.expect_path(r"/login(\?.*)?", "the sign-in link")
    b.wait_css("form#login-form")
    b.fill("form#login-form input[name=login]", alice)
    b.fill("form#login-form input[name=password]", alice_pw)
    b.click("#sign-in")
    b.wait_text("#current-user", alice)
    b.expect_path("/", "the dashboard")
    b.wait_css("a#new-repo-link", "the dashboard's new-repository link")
    b.shot("dashboard")

    # A new repository through the form.
    b.click("a#new-repo-link")
    b.expect_path("/new", "the new-repository link")
    b.wait_css("form#new-repo-form")
    b.shot("new-repo-form")
    b.fill("form#new-repo-form input[name=name]", repo)
    b.fill("form#new-repo-form input[name=description]", "Made in a browser")
    for box in ["private", "auto_init"]:
        if b.wait_css(f"form#new-repo-form input[name={box}]").is_selected():
            b.fail(f"the {box} checkbox should start unchecked")
    b.click("#create-repo")
    b.wait_text("h1#repo-name", full)
    b.expect_path(f"/{full}", "the new repository's page")
    b.wait_css("#empty-repo", "the empty repository's push instructions")
    clone = b.attr("input#clone-url", "value")
    if clone != f"{a_url}/{full}.git":
        b.fail(f"clone URL {clone!r}, expected {a_url}/{full}.git")
    b.shot("empty-repo")

    pushed = ask("push", {"repo": full, "clone_url": clone})

    # The dashboard lists it.
    b.goto(f"{a_url}/", "dashboard-with-repo", "#my-repos")
    b.wait_css("#activity", "the dashboard's activity")
    if not any(e.get_attribute("href").endswith(f"/{full}") for e in b.all("#my-repos a.repo-link")):
        b.fail(f"the dashboard does not link {full}: {b.texts('#my-repos a.repo-link')}")

    # The code: tree, README, blob, raw link.
    b.goto(f"{a_url}/{full}", "repo-code", "table#files")
    names = sorted(b.texts("table#files a.entry"))
    if names != sorted(pushed["top"]):
        b.fail(f"entries {names}, expected {sorted(pushed['top'])}")
    b.absent("#empty-repo", "the repository has commits now")
    b.wait_text("article#readme h1", pushed["readme_heading"])
    directory, file_name = pushed["blob_path"].split("/")
    entry(b, directory).click()
    b.expect_path(f"/{full}/tree/{REF}/{directory}", "a directory entry")
    b.wait_css("table#files a.entry")
    b.shot("tree")
    entry(b, file_name).click()
    b.expect_path(f"/{full}/blob/{REF}/{pushed['blob_path']}", "a file entry")
    b.wait_css("table#blob")
    lines = pushed["blob_lines"]
    rows = b.all("table#blob tr[id^=L]")
    if len(rows) != len(lines):
        b.fail(f"{len(rows)} lines shown, the file has {len(lines)}")
    for n in [1, len(lines)]:
        got = b.wait_css(f"table#blob tr#L{n} td.code").text
        if got.rstrip() != lines[n - 1].rstrip():
            b.fail(f"line {n} shows {got!r}, expected {lines[n - 1]!r}")
    raw = b.attr("a#raw-link", "href")
    if not re.search(f"/{full}/raw/{REF}/{pushed['blob_path']}$", raw):
        b.fail(f"raw link {raw!r}")
    b.shot("blob")

    # Commits.
    b.click("a#tab-commits")
    b.expect_path(f"/{full}/commits(/{REF})?(\\?.*)?", "the commits tab")
    b.wait_css("li.commit")
    titles = b.texts("li.commit .commit-title")
    if titles != pushed["titles"]:
        b.fail(f"commit titles {titles}, expected {pushed['titles']}")
    first = b.all("li.commit a.commit-link")[0]
    if not first.get_attribute("href").endswith(f"/{full}/commit/{pushed['main']}"):
        b.fail(f"first commit links to {first.get_attribute('href')}, expected {pushed['main']}")
    b.shot("commits")
    first.click()
    b.expect_path(f"/{full}/commit/{pushed['main']}", "a commit link")
    b.wait_text("#commit-title", pushed["titles"][0])
    b.wait_css("#diff .file table.diff")
    changed = b.texts("#diff .file .file-name")
    if pushed["blob_path"] not in changed:
        b.fail(f"the commit's diff names {changed}, expected {pushed['blob_path']}")
    b.shot("commit")

    # An issue and a comment.
    b.click("a#tab-issues")
    b.expect_path(f"/{full}/issues(\\?.*)?", "the issues tab")
    b.click("a#new-issue")
    b.expect_path(f"/{full}/issues/new", "the new-issue link")
    b.wait_css("form#issue-form")
    b.fill("form#issue-form input[name=title]", "The greeting is rude")
    b.fill("form#issue-form textarea[name=body]", "It says **hey** instead of hello.")
    b.shot("issue-form")
    b.click("#submit-issue")
    issue = int(b.expect_path(f"/{full}/issues/(\\d+)", "the new issue").group(1))
    b.wait_text("#issue-title", "The greeting is rude", exact=False)
    b.wait_text("#issue-state", "Open")
    b.wait_text("#issue-body strong", "hey")
    b.fill("form#comment-form textarea[name=body]", "Reproduced with `cargo test`.")
    b.click("#submit-comment")
    b.wait_text(".comment .comment-body", "Reproduced with", exact=False)
    b.wait_text(".comment .comment-body code", "cargo test")
    b.expect_path(f"/{full}/issues/{issue}", "the issue after commenting")
    b.shot("issue-commented")
    b.goto(f"{a_url}/{full}/issues", "issues", "a.issue-link")
    links = [e for e in b.all("a.issue-link")
             if e.get_attribute("href").endswith(f"/{full}/issues/{issue}")]
    if not links or "The greeting is rude" not in links[0].text:
        b.fail(f"issue {issue} not listed: {b.texts('a.issue-link')}")

    # Bob may push (his approval counts).
    b.click("a#tab-settings")
    b.expect_path(f"/{full}/settings", "the settings tab")
    b.fill("form#collaborator-form input[name=login]", bob)
    b.choose("form#collaborator-form select[name=permission]", "push")
    b.click("#add-collaborator")
    b.wait_text(".collaborator", bob, exact=False)
    b.shot("collaborators")

    # A pull request from the compare page.
    b.goto(f"{a_url}/{full}/compare/main...{pushed['feature_branch']}", "compare", "#diff")
    files = b.texts("#diff .file .file-name")
    if pushed["feature_file"] not in files:
        b.fail(f"compare shows {files}, expected {pushed['feature_file']}")
    b.fill("form#pull-form input[name=title]", "Say goodbye")
    b.fill("form#pull-form textarea[name=body]", "Adds a **farewell**.")
    b.click("#submit-pull")
    pull = int(b.expect_path(f"/{full}/pull/(\\d+)", "the new pull request").group(1))
    b.wait_text("#pull-title", "Say goodbye", exact=False)
    b.wait_text("#pull-state", "Open")
    b.wait_text("#pull-body strong", "farewell")
    b.absent("form#review-form", "authors do not review their own pull request")
    blocked = b.wait_css("#merge-blocked", "why the merge waits (an approval is required)")
    if not blocked.find_elements(By.TAG_NAME, "li"):
        b.fail("#merge-blocked lists no reason")
    b.shot("pull-open")
    b.click("a#tab-files")
    b.expect_path(f"/{full}/pull/{pull}/files", "the files tab")
    if pushed["feature_file"] not in b.texts("#diff .file .file-name"):
        b.fail(f"files tab shows {b.texts('#diff .file .file-name')}")
    b.shot("pull-files")

    # The rest on node B (or A again): the session made on A is valid there.
    pull_url = f"{b_url}/{full}/pull/{pull}"
    if b_url != a_url:
        b.goto(f"{b_url}/", "node-b-dashboard", "#current-user")
        b.wait_text("#current-user", alice)
    sign_out(b, b_url, "alice")
    sign_in(b, b_url, bob, bob_pw, "bob")
    b.reload_until(pull_url, "form#review-form", "bob-pull")
    b.fill("form#review-form textarea[name=body]", "Looks good to me.")
    b.click("form#review-form input[name=event][value=APPROVE]")
    b.click("#submit-review")
    b.wait_text(".review", "Looks good to me.", exact=False)
    states = [s.lower() for s in b.texts(".review .review-state")]
    if not any("approved" in s for s in states):
        b.fail(f"review states {states}, expected one 'approved'")
    b.shot("bob-approved")
    sign_out(b, b_url, "bob")
    sign_in(b, b_url, alice, alice_pw, "alice-again")
    b.reload_until(pull_url, "form#merge-form", "alice-merge", gone="#merge-blocked")
    b.choose("form#merge-form select[name=merge_method]", "merge")
    b.click("#merge-button")
    b.wait_text("#pull-state", "Merged")
    b.expect_path(f"/{full}/pull/{pull}", "the pull request after merging")
    b.absent("form#merge-form", "a merged pull request cannot be merged again")
    b.shot("merged")
    log("RESULT " + json.dumps({"issue": issue, "pull": pull}))


# ---- Scenario: hostile content renders inert ----

def scenario_xss(b, args):
    fixture = json.loads(args.fixture)
    url = args.url.rstrip("/")
    (alice, alice_pw) = args.alice
    full = fixture["repo"]

    # The detector itself: the same kinds of payload, unsanitised, are caught.
    b.d.get("data:text/html,<title>t</title><img src=x onerror=\"window.__xss='self-check'\">")
    try:
        b.assert_inert("self-check")
    except Failure as e:
        if "window.__xss" not in str(e):
            raise
    else:
        b.fail("the XSS detector did not notice a payload that ran")

    sign_in(b, url, alice, alice_pw, "alice")

    # File names and the README on the repository page.
    b.goto(f"{url}/{full}", "repo", "table#files")
    b.assert_inert("repository page")
    names = b.texts("table#files a.entry")
    for name in fixture["names"]:
        if name not in names:
            b.fail(f"file name {name!r} not shown literally; entries: {names}")
    for e in b.all("table#files a.entry"):
        href = e.get_attribute("href")
        if not href.startswith(f"{url}/{full}/blob/") and not href.startswith(f"{url}/{full}/tree/"):
            b.fail(f"entry {e.text!r} links to {href!r}, outside the repository")
    b.wait_text("article#readme", fixture["readme_marker"], exact=False)
    b.wait_text("article#readme code", fixture["readme_code"])
    for i in range(len(b.all("article#readme a"))):
        link = b.all("article#readme a")[i]
        # An empty heading anchor has no box to click; its href was checked inert above.
        if not link.is_displayed() or not link.size.get("width"):
            continue
        link.click()
        b.assert_inert(f"README link {i} clicked")
        if b.path().split("#")[0] != f"/{full}":
            b.goto(f"{url}/{full}", "repo-again", "article#readme")

    # Each hostile name opens its file, the name shown literally.
    for i, name in enumerate(fixture["names"]):
        b.goto(f"{url}/{full}", f"repo-{i}", "table#files")
        entry(b, name).click()
        b.wait_css("table#blob")
        b.assert_inert(f"blob page of {name!r}")
        if name not in b.d.find_element(By.TAG_NAME, "body").text:
            b.fail(f"the blob page of {name!r} does not show its name literally")
        b.shot(f"hostile-name-{i}")

    # The commit that added them: its diff names each file literally.
    b.goto(f"{url}/{full}/commit/{fixture['commit']}", "commit", "#diff")
    b.assert_inert("commit page")
    changed = b.texts("#diff .file .file-name")
    for name in fixture["names"]:
        if name not in changed:
            b.fail(f"the commit's diff does not name {name!r} literally: {changed}")

    # Hostile contents shown as text.
    for path, lines in fixture["contents"].items():
        b.goto(f"{url}/{full}/blob/main/{path}", f"blob-{path}", "table#blob")
        b.assert_inert(f"blob page of {path}")
        for n, line in enumerate(lines, start=1):
            got = b.wait_css(f"table#blob tr#L{n} td.code").text
            if got.rstrip() != line.rstrip():
                b.fail(f"{path} line {n} shows {got!r}, expected the literal {line!r}")
        # Viewed raw, under `Content-Security-Policy: sandbox`, nothing runs.
        b.d.get(f"{url}/{full}/raw/main/{path}")
        b.assert_inert(f"raw {path}")
        b.shot(f"raw-{path}")

    # An issue: the title is text, the Markdown body sanitised.
    b.goto(f"{url}/{full}/issues/new", "issue-form", "form#issue-form")
    b.fill("form#issue-form input[name=title]", fixture["title"])
    b.fill("form#issue-form textarea[name=body]", fixture["body"])
    b.click("#submit-issue")
    b.expect_path(f"/{full}/issues/(\\d+)", "the new issue")
    b.wait_css("#issue-body")
    b.assert_inert("issue page")
    b.wait_text("#issue-title", fixture["title"], exact=False)
    b.wait_text("#issue-body", fixture["body_marker"], exact=False)
    b.wait_text("#issue-body code", fixture["body_code"])
    b.shot("issue")
    b.fill("form#comment-form textarea[name=body]", fixture["comment"])
    b.click("#submit-comment")
    b.wait_text(".comment .comment-body", fixture["comment_marker"], exact=False)
    b.assert_inert("issue page with the comment")
    b.wait_text(".comment .comment-body code", fixture["comment_code"])
    b.shot("issue-commented")
    issue_path = b.path().split("#")[0]
    for css in ["#issue-body a", ".comment-body a"]:
        for i in range(len(b.all(css))):
            links = b.all(css)
            if i >= len(links):
                break
            link = links[i]
            # An empty heading anchor has no box to click; its href was checked inert.
            if not link.is_displayed() or not link.size.get("width"):
                continue
            link.click()
            b.assert_inert(f"link {i} of {css} clicked")
            if b.path().split("#")[0] != issue_path:
                b.goto(f"{url}{issue_path}", "issue-again", "#issue-body")
    b.goto(f"{url}/{full}/issues", "issues", "a.issue-link")
    b.assert_inert("issue list")
    if not any(fixture["title"] in t for t in b.texts("a.issue-link")):
        b.fail(f"the issue list does not show the title literally: {b.texts('a.issue-link')}")


# ---- Scenario: a 5,000-line file ----

def scenario_big_blob(b, args):
    fixture = json.loads(args.fixture)
    url = args.url.rstrip("/")
    target = fixture["anchor_line"]
    b.d.get(f"{url}/{fixture['repo']}/blob/main/{fixture['path']}#L{target}")
    b.wait_css("table#blob")
    b.absent("#too-large", f"{fixture['lines']} short lines are not too large to show")
    count = len(b.all("table#blob tr[id^=L]"))
    if count != fixture["lines"]:
        b.fail(f"{count} lines shown, the file has {fixture['lines']}")
    got = b.wait_css(f"table#blob tr#L{target} td.code").text
    if got.rstrip() != fixture["anchor_text"]:
        b.fail(f"line {target} shows {got!r}, expected {fixture['anchor_text']!r}")
    targeted = b.d.execute_script("const t = document.querySelector(':target'); return t && t.id")
    if targeted != f"L{target}":
        b.fail(f"#L{target} targets {targeted!r}")
    box = b.d.execute_script(
        f"const r = document.getElementById('L{target}').getBoundingClientRect();"
        "return [r.top, r.bottom, window.innerHeight, window.scrollY];")
    if not (box[0] >= -1 and box[1] <= box[2] + 1 and box[3] > 0):
        b.fail(f"line {target} is not scrolled into view: rect {box[:2]}, "
               f"viewport {box[2]}, scrollY {box[3]}")
    b.shot("big-blob-anchor")


SCENARIOS = {"flow": scenario_flow, "xss": scenario_xss, "big-blob": scenario_big_blob}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--url", required=True, help="node A's base URL")
    parser.add_argument("--url-b", help="node B's base URL (flow: finish there)")
    parser.add_argument("--alice", type=user, help="login:password of the owner")
    parser.add_argument("--bob", type=user, help="login:password of the reviewer")
    parser.add_argument("--repo", default="webflow", help="flow: the repository to create")
    parser.add_argument("--fixture", default="{}", help="xss, big-blob: what the test prepared")
    parser.add_argument("--shots", required=True, help="directory for the screenshots")
    args = parser.parse_args()
    try:
        browser = Browser(args.shots)
    except Failure as e:
        sys.stderr.write(f"FAIL: {e}\n")
        return 1
    except WebDriverException as e:
        sys.stderr.write(f"FAIL: chromium did not start under chromedriver: {e}\n"
                         "(scripts/test.sh installs Debian's chromium and chromium-driver)\n")
        return 1
    try:
        SCENARIOS[args.scenario](browser, args)
    except Failure as e:
        browser.report(str(e))
        return 1
    except UnexpectedAlertPresentException as e:
        browser.report(f"a payload ran: an alert opened ({e.alert_text!r})")
        return 1
    except (NoSuchElementException, TimeoutException, WebDriverException) as e:
        browser.report(f"{e.__class__.__name__}: {e.msg if hasattr(e, 'msg') else e}")
        return 1
    finally:
        try:
            browser.d.quit()
        except WebDriverException:
            pass
    log(f"WEB {args.scenario}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
