"""Checks a JSON answer against GitHub's own published description of the operation.

Guts claims to be GitHub-compatible. The node's own OpenAPI document says what the node
thinks it serves; this module says what GitHub's clients expect, from the description
GitHub publishes (the npm package @octokit/openapi, `generated/api.github.com.json`,
OpenAPI 3.0.3). Given an operationId of GitHub's, an HTTP status and a JSON body, it
returns every place the body departs from that operation's response schema:

    Violation(operation, status, json_path, rule)

- `$ref`s are resolved against the whole description (responses and schemas);
- OpenAPI 3.0 `nullable`, `oneOf`/`anyOf`/`allOf` are honoured (openapi-schema-validator's
  OAS 3.0 dialect on top of jsonschema);
- formats are checked (`uri`, `date-time`, `email`, ...): `""` is not a URI;
- a status the description does not document for the operation is a violation itself;
- array indices in paths are written `[*]`, so one wrong field in a list of fifty is one
  violation, and the same violation reads the same on every run.

Run as a script for a self-check of the format checker (the `uri` check silently does
nothing when the package that implements it is missing, so the driver calls
`self_check()` before it trusts a clean result).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

from jsonschema import validators
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# The base URI under which the description is registered, so that its internal
# `#/components/...` references resolve.
DOC_URI = "urn:github:api.github.com"

HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def _github_reading(keyword: str):
    """The OAS 3.0 keyword `keyword` (a union, `$ref` or `enum`) read the way
    GitHub's description means it, where openapi-schema-validator reads it narrowly:

    - `nullable: true` admits null next to a union or a `$ref` without `type` (GitHub
      writes `{"nullable": true, "oneOf": [simple-user, empty-object]}` for a commit's
      author) and next to an `enum` that does not list null (an open issue's
      `state_reason`, null on GitHub itself); OAS 3.0.3 promises that only for `type`,
      so the library refuses both;
    - a `discriminator` on a union whose alternatives are not all objects (contents:
      a directory is an array) cannot pick by property; the union is then checked as a
      plain union, which is what it says without the hint.
    """
    original = OAS30Validator.VALIDATORS[keyword]
    plain = validators.Draft4Validator.VALIDATORS.get(keyword, original)

    def check(validator, value, instance, schema):
        if instance is None and schema.get("nullable") is True:
            return
        if "discriminator" in schema and not isinstance(instance, dict):
            yield from plain(validator, value, instance, schema)
            return
        yield from original(validator, value, instance, schema)

    return check


GitHubValidator = validators.extend(
    OAS30Validator,
    {k: _github_reading(k) for k in ("oneOf", "anyOf", "allOf", "$ref", "enum")},
)


@dataclass(frozen=True, order=True)
class Violation:
    operation: str
    status: int
    path: str
    rule: str

    def line(self) -> str:
        return f"{self.operation} {self.status} {self.path} {self.rule}"

    @staticmethod
    def parse(line: str) -> "Violation":
        operation, status, path, rule = line.split(" ")
        return Violation(operation, int(status), path, rule)


class Description:
    """GitHub's description, indexed by operationId and by (method, path template)."""

    def __init__(self, path: str):
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        self.version = self.doc.get("info", {}).get("version", "?")
        resource = Resource(contents=self.doc, specification=DRAFT4)
        self.registry = Registry().with_resource(DOC_URI, resource)
        # operationId -> (method, path template)
        self.operations: dict[str, tuple[str, str]] = {}
        # (method, template with parameter names erased) -> operationId
        self.by_shape: dict[tuple[str, str], str] = {}
        for template, item in self.doc["paths"].items():
            for method, op in item.items():
                if method in HTTP_METHODS and "operationId" in op:
                    self.operations[op["operationId"]] = (method, template)
                    self.by_shape[(method, shape(template))] = op["operationId"]

    def operation_for(self, method: str, template: str) -> str | None:
        """GitHub's operationId for `method template` (parameter names may differ)."""
        return self.by_shape.get((method.lower(), shape(template)))

    def _pointer(self, pointer: str) -> Any:
        node = self.doc
        for part in pointer.lstrip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def schema_pointer(self, operation: str, status: int) -> str | None:
        """A JSON pointer into the description to the schema of the JSON body GitHub
        documents for `operation` answering `status`; "" when it documents the status
        without a JSON body (204, a bare 404); None when it does not document it."""
        method, template = self.operations[operation]
        base = f"/paths/{escape(template)}/{method}/responses"
        responses = self._pointer(base)
        key = next(
            (k for k in (str(status), f"{status // 100}XX", "default") if k in responses),
            None,
        )
        if key is None:
            return None
        # Follow `$ref`s to shared responses, so that the pointer names where the schema
        # really sits and the relative `$ref`s inside it resolve against the document.
        pointer = f"{base}/{escape(key)}"
        while "$ref" in (response := self._pointer(pointer)):
            pointer = response["$ref"][1:]
        content = response.get("content") or {}
        media = next(
            (m for m in ("application/json", "application/scim+json") if m in content),
            next((m for m in content if m.endswith("json")), None),
        )
        if media is None or "schema" not in content[media]:
            return ""
        return f"{pointer}/content/{escape(media)}/schema"

    @lru_cache(maxsize=None)
    def _validator(self, pointer: str) -> GitHubValidator:
        return GitHubValidator(
            {"$ref": f"{DOC_URI}#{pointer}"},
            registry=self.registry,
            format_checker=oas30_format_checker,
        )

    def check(self, operation: str, status: int, body: Any) -> list[Violation]:
        """Every departure of `body` (parsed JSON, or None for no body) from what
        GitHub documents for `operation` answering `status`."""
        pointer = self.schema_pointer(operation, status)
        if pointer is None:
            return [Violation(operation, status, "$", "status-undocumented")]
        if not pointer or body is None:
            return []
        errors = self._validator(pointer).iter_errors(body)
        return sorted(
            {Violation(operation, status, json_path(parts), name) for parts, name in self._explain(errors)}
        )

    def _explain(self, errors: Iterable[ValidationError]) -> Iterable[tuple[list, str]]:
        """(instance path, rule) for each error worth reporting. A failed `oneOf`/`anyOf`
        is explained by the branch that came closest (fewest errors), so that a missing
        field reads as that field and not as "matches no alternative". A union whose
        discriminating property is missing is reported as such, and then explained the
        same way (the validator stops at the missing property)."""
        for error in errors:
            here = list(error.absolute_path)
            if error.validator in ("oneOf", "anyOf", "allOf") and "discriminating property" in error.message:
                prop = error.schema.get("discriminator", {}).get("propertyName", "?")
                yield here, f"discriminator:{prop}"
                branches = [
                    list(self._explain(self._branch(b).iter_errors(error.instance)))
                    for b in error.validator_value
                ]
                for parts, name in min(branches, key=len):
                    yield here + parts, name
            elif error.validator in ("oneOf", "anyOf") and error.context:
                by_branch: dict[int, list[ValidationError]] = {}
                for sub in error.context:
                    by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
                best = min(sorted(by_branch.items()), key=lambda kv: len(kv[1]))[1]
                yield from self._explain(best)
            elif error.validator == "required":
                # One error per missing property; point at the property.
                missing = re.match(r"'(.*)' is a required property", error.message)
                yield here + [missing.group(1) if missing else "?"], "required"
            elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
                known = set(error.schema.get("properties", {}))
                for extra in sorted(set(error.instance) - known):
                    yield here + [extra], "additionalProperties:false"
            else:
                yield here, rule(error)

    def _branch(self, schema: dict) -> GitHubValidator:
        ref = schema.get("$ref", "")
        assert ref.startswith("#/"), f"an inline alternative of a discriminated union: {schema}"
        return self._validator(ref[1:])


def shape(template: str) -> str:
    """A path template with its parameter names erased: `/a/{x}/b` -> `/a/{}/b`."""
    return re.sub(r"\{[^}]*\}", "{}", template)


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += "[*]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", part):
            out += f".{part}"
        else:
            out += "[" + json.dumps(part).replace(" ", "%20") + "]"
    return out


def rule(error: ValidationError) -> str:
    """A short, stable name for what failed: the keyword and what it asked for."""
    keyword = error.validator
    value = error.validator_value
    if keyword == "type":
        if error.instance is None:
            return "type:not-nullable"
        expected = "|".join(value) if isinstance(value, list) else value
        return f"type:{expected}"
    if keyword == "format":
        return f"format:{value}"
    if keyword == "oneOf" and "valid under each of" in error.message:
        return "oneOf:several-match"
    if keyword in ("enum", "const"):
        return f"{keyword}:{json.dumps(error.instance).replace(' ', '')}"
    return str(keyword)


def self_check(description: Description | None = None) -> None:
    """Fails loudly when the checks this module promises would silently pass."""
    assert not oas30_format_checker.conforms("", "uri"), (
        "format 'uri' is not checked: install rfc3986-validator (scripts/test.sh does)"
    )
    assert not oas30_format_checker.conforms("yesterday", "date-time"), (
        "format 'date-time' is not checked: install rfc3339-validator"
    )
    if description is not None:
        user = {"login": "x", "avatar_url": "", "id": 1}
        found = description.check("users/get-by-username", 200, user)
        assert any(v.rule == "format:uri" for v in found), found
        assert description.check("users/get-by-username", 599, {}) == [
            Violation("users/get-by-username", 599, "$", "status-undocumented")
        ]


if __name__ == "__main__":
    import sys

    self_check(Description(sys.argv[1]) if len(sys.argv) > 1 else None)
    print("validate: self-check ok")
