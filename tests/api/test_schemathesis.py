"""Property-based run of the OpenAPI document: no server error, no response off the schema.

Django's routes in process (WSGI) so generated data shares the test's database transaction; the
front door's ingest routes, which only the ASGI application serves, through it, with committed
data. The key is valid and holds every scope, and the project id is the key's own, so the
routes are exercised past authentication rather than answering 404 to random ids.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from config.asgi import application

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keep_the_test_connection")]


@pytest.fixture
def seeded(make_event):
    make_event(session_id="sess-1")
    make_event(session_id="sess-1", kind="warning", code="HIGH_JITTER")


# Loading the document touches no database, so it can happen at collection.
DOOR_PATHS = r"/events(/batch)?$"
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler()).exclude(
    path_regex=DOOR_PATHS
)
door_schema = schemathesis.openapi.from_asgi(
    "/api/v1/openapi.json", application, headers={"Host": "localhost"}
).include(path_regex=DOOR_PATHS)


@pytest.fixture(autouse=True)
def no_rate_limit(settings):
    # Once per test, not once per example: each assignment nests another settings override,
    # and the coverage phase runs hundreds of examples for the events body alone.
    settings.ERRORSINK_API_RATE_LIMIT = 0


@schema.parametrize()
@hypothesis_settings(
    max_examples=40,
    database=None,  # no .hypothesis folder in the checkout
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_it_finds_no_server_error_and_no_response_off_the_schema(case, project, key, seeded):
    if case.path_parameters and "project_id" in case.path_parameters:
        case.path_parameters["project_id"] = str(project.id)
    parameters = case.path_parameters or {}
    if parameters.get("session_id") and len(parameters["session_id"]) % 2:
        parameters["session_id"] = "sess-1"  # half the cases reach a session that exists
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {key}", "Host": "localhost"},
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
    )
    assert response.headers.get("x-request-id")  # on every response, errors included


@door_schema.parametrize()
@hypothesis_settings(
    max_examples=40,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.django_db(transaction=True)
def test_the_front_door_finds_no_server_error_and_no_response_off_the_schema(
    case, project, key, empty_queue
):
    case.path_parameters["project_id"] = str(project.id)
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {key}", "Host": "localhost"},
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
    )
    assert response.headers.get("x-request-id")
