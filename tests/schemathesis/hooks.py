"""Schemathesis hooks for tests/schemathesis/run.sh (loaded through SCHEMATHESIS_HOOKS).

`filter_failure` drops a failure only when the service gave the answer the OpenAPI
document promises for something a JSON Schema cannot describe (state: a stale If-Match, a
reused Idempotency-Key, a cursor or feed token the service never issued, the records of an
import's JSON lines or CSV; a path segment that makes the
URL another route; the web page's files with web_ui off), or when schemathesis sent a
request with a part it had generated to violate the schema but labelled it schema-valid.
Each rule names that answer exactly (status and problem `code`, where it applies the
field), so any other refusal of a schema-valid request still fails the run. Schemathesis
counts what it drops in its summary ("Filtered"), and run.sh lists them by reason.

`map_case` leaves the cursor and the feed's `since` out of schema-valid cases (see there).
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import schemathesis


def _problem(response) -> dict:
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}


def _state_dependent_refusal(response) -> bool:
    """Whether a refused schema-valid request got one of the documented answers that depend
    on what the service holds rather than on the request's shape."""
    problem = _problem(response)
    code = problem.get("code")
    status = response.status_code
    # If-Match naming a version that is not the task's current one (any well-formed tag
    # can be stale): the documented 412, which changes nothing.
    if status == 412 and code == "precondition_failed":
        return True
    # An Idempotency-Key used before with another body (generated keys repeat): the
    # contract's 422 idempotency_key_reused.
    if status == 422 and code == "idempotency_key_reused":
        return True
    # A cursor is valid only if the service issued it for this query, and a change feed's
    # `since` only if it issued it; a generated one never is. Only a 400 that names them and
    # nothing else is dropped.
    errors = problem.get("errors") or []
    if (
        status == 400
        and code == "invalid_parameter"
        and errors
        and all(e.get("field") in ("cursor", "since") for e in errors)
    ):
        return True
    return False


def _float_id_refusal(case, response) -> bool:
    """A batch operation's `id` written as a float (`12.0`): JSON Schema calls it an
    integer, the service takes an id only as a JSON integer as written (docs/api.md,
    "Batches"). Dropped only when every problem is such an id."""
    problem = _problem(response)
    if (response.status_code, problem.get("code")) != (422, "validation_failed"):
        return False
    body = case.body if isinstance(case.body, dict) else {}
    ops = body.get("operations")
    errors = problem.get("errors") or []
    if not isinstance(ops, list) or not errors:
        return False
    for e in errors:
        field = e.get("field", "")
        if not (field.startswith("operations[") and field.endswith("].id")):
            return False
        try:
            op = ops[int(field[len("operations[") : -len("].id")])]
        except (ValueError, IndexError):
            return False
        if not (isinstance(op, dict) and isinstance(op.get("id"), float)):
            return False
    return True


def _import_content_refusal(case, response) -> bool:
    """An import's body is JSON lines or CSV, which the document can only call a string:
    any string is schema-valid, so its records' and columns' problems (the documented 422
    `validation_failed`, or 400 `malformed_body` for CSV that does not parse or a body that
    is not UTF-8) are no failure."""
    if not urlsplit(response.request.url).path.endswith("/tasks/import"):
        return False
    code = _problem(response).get("code")
    status = response.status_code
    return (status, code) in ((422, "validation_failed"), (400, "malformed_body"))


# The `{user_id}` values the document excludes (`not: enum`) because they make the path
# another route: `/api/tasks/tasks` is the token-scoped task `tasks`, `/api/v1/tasks` the
# token-scoped list. A request with one of them is a request to that other operation.
ROUTES_ELSEWHERE = {"tasks", "v1"}


def _generated_invalid(case) -> bool:
    """Whether some part of the request was generated to violate the schema. Schemathesis'
    coverage phase labels such cases schema-valid at times (seen: an empty `If-Match`, which
    the document refuses, beside a path or body it varied), so their refusal is no failure."""
    meta = case.meta
    if meta is None:
        return False
    return any(info.mode.is_negative for info in meta.components.values())


@schemathesis.hook
def map_case(context, case):
    """Leave the cursor out of schema-valid cases: only a cursor the service issued for the
    same query is valid, which no generated value is, so each such case would only test
    that refusal (negative cases keep theirs, and must still be refused)."""
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and case.query:
        case.query.pop("cursor", None)
        case.query.pop("since", None)
    return case


def _drop_reason(failure, case, response) -> str | None:
    """Why a failure is not one, or None to keep it."""
    if failure.code == "ST202" and _state_dependent_refusal(response):
        return "state-dependent answer"
    if failure.code == "ST202" and _generated_invalid(case):
        return "generated to violate the schema"
    if failure.code == "ST202" and _import_content_refusal(case, response):
        return "import content"
    if failure.code == "ST202" and _float_id_refusal(case, response):
        return "batch id written as a float"
    if (case.path_parameters or {}).get("user_id") in ROUTES_ELSEWHERE:
        return "user_id routes elsewhere"
    # With the web_ui setting off (as run.sh serves it) the page's files do not exist, so
    # every method on them is the documented 404, not a 405.
    if (
        failure.code == "ST204"
        and response.status_code == 404
        and urlsplit(response.request.url).path.startswith("/web/")
        and _problem(response).get("code") == "not_found"
    ):
        return "web_ui off"
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure but those `_drop_reason` explains. With SCHEMATHESIS_DROPPED_LOG
    set, each dropped one is written there (reason, check code, status and problem code,
    operation)."""
    reason = _drop_reason(failure, case, response)
    log = os.environ.get("SCHEMATHESIS_DROPPED_LOG")
    if reason is not None and log:
        with open(log, "a", encoding="utf-8") as f:
            code = _problem(response).get("code", "-")
            f.write(f"{reason}\t{failure.code}\t{response.status_code} {code}\t{case.operation.label}\n")
    return reason is None
