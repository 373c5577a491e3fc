"""Checks recorded webhook deliveries against GitHub's published webhook descriptions.

GitHub publishes every webhook it sends as the npm package @octokit/openapi-webhooks
(`generated/api.github.com.json`): an OpenAPI 3.1 document whose top-level `webhooks`
map has one entry per event and action (`push`, `ping`, `pull-request-opened`, ...),
each with the payload schema and the headers GitHub sends. A GitHub integration (a CI
system, a bot, octokit/webhooks) is written against exactly that, so a delivery from
Guts must satisfy it too.

    python validate_payloads.py --openapi DOC [--secret S] RECORD...
    python validate_payloads.py --openapi DOC --self-check

RECORD is what tests/webhooks/receiver.py wrote (one JSON line per request). For each
delivery the webhook is picked by the `X-GitHub-Event` header (`pull_request`) and the
payload's `action` (`opened`): `pull-request-opened` when the document has it, else
`pull-request`. The payload is validated with JSON Schema 2020-12 (what OpenAPI 3.1
schemas are), `#/components/...` references resolved through a `referencing` registry,
formats checked (`uri`, `date-time`, `email`). The headers are checked too: those the
document marks required for the webhook (X-GitHub-Event, X-GitHub-Delivery as a GUID,
X-GitHub-Hook-ID, the installation target headers, a `GitHub-Hookshot/` User-Agent)
and, with `--secret`, an `X-Hub-Signature-256` that is the HMAC-SHA256 of the raw body.

No departure is tolerated (the last one, `ssh_url: null` in a repository object,
went with the SSH server).

Each violation prints as `event[.action] json.path: rule` (array indices as `[*]`, so
one bad field in a list of fifty reads once); the exit status is 0 without violations,
1 with, 2 on bad input. `--self-check` feeds known-bad deliveries through the same
checks and fails unless each is caught: the `uri` format check silently passes
everything when the package implementing it is missing, so a caller runs the
self-check before it trusts a clean result.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "conformance"))
from validate import json_path, rule  # noqa: E402

# The base URI the document is registered under, so its `#/components/...` resolve.
DOC_URI = "urn:github:webhooks"
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER
FORM = "application/x-www-form-urlencoded"


class Webhooks:
    """GitHub's webhook document, indexed by webhook key."""

    def __init__(self, path: str):
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        if "webhooks" not in self.doc:
            raise SystemExit(f"{path} has no `webhooks` map: not @octokit/openapi-webhooks")
        self.version = self.doc.get("info", {}).get("version", "?")
        resource = Resource(contents=self.doc, specification=DRAFT202012)
        self.registry = Registry().with_resource(DOC_URI, resource)
        self.hooks: dict[str, dict] = {k: v["post"] for k, v in self.doc["webhooks"].items()}

    def key_for(self, event: str, action: Any) -> str | None:
        """The document's key for `event` (as in X-GitHub-Event) with `action`."""
        base = event.replace("_", "-")
        if isinstance(action, str) and f"{base}-{action.replace('_', '-')}" in self.hooks:
            return f"{base}-{action.replace('_', '-')}"
        return base if base in self.hooks else None

    def required_headers(self, key: str) -> list[str]:
        """The lower-cased names of the headers the document requires for `key`."""
        return [
            p["name"].lower()
            for p in self.hooks[key].get("parameters", [])
            if p.get("in") == "header" and p.get("required")
        ]

    @lru_cache(maxsize=None)
    def _validator(self, key: str) -> Draft202012Validator:
        content = self.hooks[key]["requestBody"]["content"]["application/json"]
        ref = content["schema"]["$ref"]
        assert ref.startswith("#/"), ref
        return Draft202012Validator(
            {"$ref": f"{DOC_URI}{ref}"}, registry=self.registry, format_checker=FORMAT_CHECKER
        )

    def check_payload(self, key: str, payload: Any) -> list[tuple[str, str]]:
        """(json path, rule) for each departure of `payload` from webhook `key`."""
        errors = self._validator(key).iter_errors(payload)
        return sorted({(json_path(parts), name) for parts, name in explain(errors)})


def explain(errors: Iterable[ValidationError]) -> Iterable[tuple[list, str]]:
    """(instance path, rule) for each error worth reporting. A failed `oneOf`/`anyOf`
    is explained by its closest branch (fewest errors), so that a missing field reads
    as that field and not as "matches no alternative"."""
    for error in errors:
        here = list(error.absolute_path)
        if error.validator in ("oneOf", "anyOf") and error.context:
            by_branch: dict[int, list[ValidationError]] = {}
            for sub in error.context:
                by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
            best = min(sorted(by_branch.items()), key=lambda kv: len(kv[1]))[1]
            yield from explain(best)
        elif error.validator == "required":
            missing = re.match(r"'(.*)' is a required property", error.message)
            yield here + [missing.group(1) if missing else "?"], "required"
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - known):
                yield here + [extra], "additionalProperties:false"
        else:
            yield here, rule(error)


def payload_of(delivery: dict) -> tuple[Any, str | None]:
    """(the parsed payload, a problem with the body or None), from the raw body."""
    media = delivery["headers"].get("content-type", "").split(";", 1)[0].strip().lower()
    raw = delivery.get("body", "")
    try:
        if media == "application/json":
            return json.loads(raw), None
        if media == FORM:
            from urllib.parse import parse_qs

            fields = parse_qs(raw, keep_blank_values=True, strict_parsing=True)
            if list(fields) != ["payload"] or len(fields["payload"]) != 1:
                return None, "form-without-one-payload-field"
            return json.loads(fields["payload"][0]), None
    except ValueError:
        return None, "body-not-json"
    return None, f"content-type:{media or 'missing'}"


def check_delivery(hooks: Webhooks, delivery: dict, secret: str | None) -> list[str]:
    """The violations of one recorded delivery, as `event[.action] path: rule` lines."""
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    event = headers.get("x-github-event", "")
    payload, problem = payload_of({**delivery, "headers": headers})
    action = payload.get("action") if isinstance(payload, dict) else None
    label = (event or "?") + (f".{action}" if isinstance(action, str) else "")
    found: list[tuple[str, str]] = []
    if delivery.get("method") != "POST":
        found.append(("method", f"not-POST:{delivery.get('method')}"))
    if problem:
        found.append(("$", problem))
    key = hooks.key_for(event, action) if event else None
    if not event:
        found.append(("header[x-github-event]", "missing"))
    elif key is None:
        found.append(("header[x-github-event]", f"unknown-event:{event}"))
    required = hooks.required_headers(key) if key else ["x-github-event", "x-github-delivery", "x-github-hook-id", "user-agent"]
    for name in required:
        if name == "x-hub-signature-256" and secret is None:
            continue
        if not headers.get(name):
            found.append((f"header[{name}]", "missing"))
    checks = {
        "x-github-delivery": lambda v: GUID.fullmatch(v) is not None,
        "x-github-hook-id": str.isdigit,
        "x-github-hook-installation-target-id": str.isdigit,
        "x-github-hook-installation-target-type": lambda v: v in ("repository", "organization"),
        "user-agent": lambda v: v.startswith("GitHub-Hookshot/"),
    }
    for name, ok in checks.items():
        value = headers.get(name)
        if value and not ok(value):
            found.append((f"header[{name}]", "format"))
    if secret is not None and headers.get("x-hub-signature-256"):
        body = delivery.get("body", "").encode("utf-8", "surrogateescape")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers["x-hub-signature-256"]):
            found.append(("header[x-hub-signature-256]", "hmac-mismatch"))
    if isinstance(payload, dict) and isinstance(headers.get("x-github-hook-id"), str):
        if event == "ping" and str(payload.get("hook_id")) != headers["x-github-hook-id"]:
            found.append(("$.hook_id", "not-the-hook-id-header"))
    if key is not None and problem is None:
        found.extend(hooks.check_payload(key, payload))
    return sorted({f"{label} {path}: {name}" for path, name in found})


def load(records: Iterable[str]) -> list[dict]:
    deliveries = []
    for record in records:
        for n, raw in enumerate(Path(record).read_text(encoding="utf-8", errors="surrogateescape").splitlines(), 1):
            if raw.strip():
                try:
                    deliveries.append(json.loads(raw))
                except ValueError as e:
                    raise SystemExit(f"{record}:{n}: not a JSON line: {e}")
    return deliveries


def self_check(hooks: Webhooks) -> None:
    """Fails loudly when a check this module promises would silently pass."""
    assert not FORMAT_CHECKER.conforms("", "uri"), (
        "format 'uri' is not checked: install rfc3986-validator (scripts/test.sh does)"
    )
    assert not FORMAT_CHECKER.conforms("yesterday", "date-time"), (
        "format 'date-time' is not checked: install rfc3339-validator"
    )
    assert not FORMAT_CHECKER.conforms("nobody", "email"), "format 'email' is not checked"
    secret = "self-check-secret"
    example = hooks.doc["components"]["examples"]["ping"]["value"]
    body = json.dumps(example)
    good_headers = {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/guts",
        "x-github-event": "ping",
        "x-github-delivery": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
        "x-github-hook-id": str(example["hook_id"]),
        "x-github-hook-installation-target-id": "1",
        "x-github-hook-installation-target-type": "repository",
        "x-hub-signature-256": "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest(),
    }

    def run(headers: dict, payload: Any, raw: str | None = None) -> list[str]:
        delivery = {"method": "POST", "headers": headers, "body": raw if raw is not None else json.dumps(payload)}
        return check_delivery(hooks, delivery, secret)

    clean = run(good_headers, example, body)
    assert clean == [], f"GitHub's own ping example does not pass: {clean}"
    bad_hook = json.loads(body)
    bad_hook["hook"]["ping_url"] = ""
    del bad_hook["hook"]["created_at"]
    found = run(good_headers, bad_hook)  # signed for the original body: a mismatch too
    assert "ping $.hook.ping_url: format:uri" in found, found
    assert "ping $.hook.created_at: required" in found, found
    bad_hook = json.loads(body)
    bad_hook["hook"]["created_at"] = "yesterday"
    assert "ping $.hook.created_at: format:date-time" in run(good_headers, bad_hook), "date-time"
    assert "ping header[x-hub-signature-256]: hmac-mismatch" in found, found
    broken = {**good_headers, "x-github-delivery": "42", "user-agent": "Guts"}
    del broken["x-github-hook-id"]
    found = run(broken, example, body)
    for line in ("header[x-github-delivery]: format", "header[user-agent]: format", "header[x-github-hook-id]: missing"):
        assert f"ping {line}" in found, (line, found)
    # The webhook is picked by event and action: an opened pull request without its
    # pull request is caught as such, and an unknown event is a violation itself.
    found = run({**good_headers, "x-github-event": "pull_request"}, {"action": "opened", "number": 1})
    assert "pull_request.opened $.pull_request: required" in found, found
    found = run({**good_headers, "x-github-event": "no_such_event"}, {})
    assert any("unknown-event" in line for line in found), found
    # A form delivery is the same payload under `payload=`.
    from urllib.parse import urlencode

    form = urlencode({"payload": body})
    signature = "sha256=" + hmac.new(secret.encode(), form.encode(), hashlib.sha256).hexdigest()
    found = run({**good_headers, "content-type": FORM, "x-hub-signature-256": signature}, None, form)
    assert found == [], found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--openapi", required=True, help="@octokit/openapi-webhooks generated/api.github.com.json")
    parser.add_argument("--secret", default=None, help="the hook's secret: signatures are then required")
    parser.add_argument("--self-check", action="store_true", help="check that bad deliveries are caught, and exit")
    parser.add_argument("records", nargs="*", help="receiver.py records")
    args = parser.parse_args()
    hooks = Webhooks(args.openapi)
    if args.self_check:
        self_check(hooks)
        print(f"validate_payloads: self-check ok (openapi-webhooks {hooks.version})")
        return 0
    if not args.records:
        parser.error("no record given")
    deliveries = load(args.records)
    problems: set[str] = set()
    for n, delivery in enumerate(deliveries, 1):
        found = check_delivery(hooks, delivery, args.secret)
        guid = delivery.get("headers", {}).get("x-github-delivery", "?")
        for line in found:
            print(f"  #{n} {guid} {line}")
        problems.update(found)
    print(
        f"validate_payloads: {len(deliveries)} deliveries checked against openapi-webhooks "
        f"{hooks.version}, {len(problems)} distinct violations"
    )
    for line in sorted(problems):
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
