"""Checks what a GitHub client saw against GitHub's published description.

A client flow (tests/clients/*) records every answer it received as one JSON line
`{"method", "url", "status", "body"}` (`record_requests` does it for anything built on
`requests`, such as PyGithub; the octokit flow writes the same lines from a request
hook). `check` then matches each URL to GitHub's own path templates (the most literal
segments win, as in drive.py) and validates each JSON body against that operation's
response schema, so a client flow ends with zero schema violations, not only with the
client's own (often lenient) parsing succeeding.

No departure is tolerated: the last one, `ssh_url: null`, went with the SSH server.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate import Description, Violation  # noqa: E402

API = "/api/v3"
# Path parameters that may span several segments when they end a template.
GREEDY = {"path", "ref", "basehead"}


def record_requests(path: str) -> None:
    """Makes every `requests` answer in this process append a line to `path`."""
    import requests

    send = requests.Session.send

    def recording_send(self, request, **kwargs):
        response = send(self, request, **kwargs)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        line = {"method": request.method, "url": request.url, "status": response.status_code, "body": body}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        return response

    requests.Session.send = recording_send


def _pattern(template: str) -> re.Pattern:
    out = ""
    for part in re.split(r"(\{[^}]*\})", template):
        if part.startswith("{"):
            greedy = part[1:-1] in GREEDY and template.endswith(part)
            out += "(.+)" if greedy else "([^/]+)"
        else:
            out += re.escape(part)
    return re.compile(out)


def check(description: Description, recording: Path) -> list[str]:
    """The violations in `recording` (as known_violations.txt lines), plus answers no
    GitHub operation describes."""
    routes = [
        (method.upper(), _pattern(template), sum(1 for s in template.split("/") if s and "{" not in s), op)
        for op, (method, template) in description.operations.items()
    ]
    problems: list[str] = []
    answers = 0
    for raw in recording.read_text(encoding="utf-8").splitlines():
        line = json.loads(raw)
        path = urlsplit(line["url"]).path
        if not path.startswith(API + "/"):
            continue  # git, downloads: not the REST API
        path = path[len(API):]
        matches = [(lit, op) for m, pat, lit, op in routes if m == line["method"] and pat.fullmatch(path)]
        if not matches:
            problems.append(f"{line['method']} {path}: no GitHub operation")
            continue
        operation = max(matches)[1]
        status, body = line["status"], line["body"]
        answers += 1
        pointer = description.schema_pointer(operation, status)
        found: list[Violation]
        if pointer is None:
            found = [Violation(operation, status, "$", "status-undocumented")]
        elif not pointer:
            found = []
        elif body is None:
            found = [Violation(operation, status, "$", "body-not-json")]
        else:
            found = description.check(operation, status, body)
        problems.extend(v.line() for v in found)
    print(f"recording: {answers} answers of the REST API checked, {len(problems)} problems")
    return sorted(set(problems))


def main() -> int:
    recording, description = Path(sys.argv[1]), Description(sys.argv[2])
    problems = check(description, recording)
    for p in problems:
        print(f"  {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
