"""Property-based fuzzing of every API operation from the app's own OpenAPI schema
(schemathesis): no request may get a 500, and every response must match the schema."""

from __future__ import annotations

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from api.main import create_app
from tests.api.factories import event_json, jpeg, make_key, post

EXAMPLES_PER_OPERATION = 12  # bounded so CI stays fast; raise locally to dig deeper
# What the issue asks: no 500, and responses as documented. (Schemathesis' "positive data
# accepted" check is left out: an `event` form field is a string in the schema, and a string
# that is not an event must still be refused.)
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


def test_no_server_errors_and_responses_match_the_schema(sqlite_backend):
    app = create_app(sqlite_backend)
    headers = {"Authorization": f"Bearer {make_key(sqlite_backend, 'admin')}"}
    with TestClient(app, headers=headers) as client:  # something to find: order 1 with evidence
        post(client, event_json(), annotated=jpeg())
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def fuzz(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:  # collect all operations' failures, then report them together
            failures[operation.label] = str(exc)[:800]
    assert operations >= 25
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
