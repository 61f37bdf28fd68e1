"""Schemathesis fuzzing of a service's OpenAPI in-process: bounded, deterministic hypothesis settings and the checks.

Each service's `test_fuzz.py` builds `schema_of(app)` at import from an app that is never started (the OpenAPI
document needs no model) and, in a test taking the served app from a fixture, calls `fuzz(case, app)`: schemathesis
runs that app's lifespan on its own event loop thread and ends it with the test. (schemathesis' `from_fixture`
would be the natural loader, but its lazy schemas break on pytest 9.2's node ids.)
"""

from __future__ import annotations

from typing import Any

import hypothesis
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from schemathesis import Case
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from comps.core.errors import ErrorCategory, class_for_status


def settings(max_examples: int) -> hypothesis.settings:
    """At most `max_examples` generated cases per operation, the same ones in every run, no time limit per case."""
    return hypothesis.settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


def error_envelope(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every 4xx/5xx answers in the one error envelope, its `type` the category of the status."""
    if response.status_code < 400 or case.method.upper() == "HEAD":  # a HEAD answer has no body
        return None
    body: Any = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the error envelope: {response.text[:300]}"
    error = body["error"]
    assert isinstance(error.get("message"), str) and error["message"], error
    assert {"type", "code", "param"} <= set(error), error
    expected = class_for_status(response.status_code).category
    assert ErrorCategory(error["type"]) == expected, f"{response.status_code} with type {error['type']}"
    return True


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, error_envelope]
"""No 5xx; answers conform to the schema where it declares them (content type too); every refusal in the envelope.

Edge values come from schemathesis' coverage phase (each bound, just past it, 5e-324 above an exclusive 0, ...):
each must be answered or refused with a 4xx; which field a refusal names is asserted by the services' own tests.

schemathesis' `negative_data_rejection` is left out on purpose: pydantic's lax mode accepts `0` for a bool or
`"5"` for an int (as OpenAI-compatible servers built on it do), which that check counts as accepting invalid data.
Invalid cases are still generated and sent: they must be refused with a 4xx, never a 5xx.
"""


@schemathesis.serializer("application/sdp")
def _sdp(ctx: Any, value: Any) -> bytes:
    """The live mode's SDP offers are text (`POST /v1/realtime`)."""
    return value if isinstance(value, bytes) else str(value).encode()


def schema_of(app: FastAPI) -> OpenApiSchema:
    """The schemathesis schema of `app`'s OpenAPI document."""
    return schemathesis.openapi.from_dict(app.openapi())


def fuzz(case: Case[Any], app: FastAPI) -> Response:
    """Send `case` to `app` in-process (ASGI), run every check on the answer and return it."""
    return case.call_and_validate(app=app, checks=CHECKS)


def send_valid(schema: OpenApiSchema, app: FastAPI, method: str, path: str, **fields: Any) -> Response:
    """Send a hand-written valid request through the same checks (random input seldom reaches the happy path).

    `fields` are `Case` fields (body, media_type, query, path_parameters); the answer must be a 2xx.
    """
    response = fuzz(schema[path][method].Case(**fields), app)
    assert 200 <= response.status_code < 300, response.text[:500]
    return response
