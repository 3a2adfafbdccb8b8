"""Schemathesis against the running service: no 5xx, no schema violations.

Positive and negative cases for every documented operation, sent to a real `toeangle serve`
on loopback; bounded so the suite stays fast. The schema is the app's own OpenAPI document
(the same one the server serves, checked below); it is loaded at import because
schemathesis' lazy fixture loader does not work with pytest 9.
"""

from __future__ import annotations

import os

import httpx
import schemathesis
from hypothesis import HealthCheck, settings

from toeangle.service import create_app
from toeangle.settings import Settings

SPEC = create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(SPEC)


def test_the_server_serves_this_schema(server):
    assert httpx.get(server.url + "/openapi.json").json() == SPEC


@schema.parametrize()
# The same examples on every run, so that the suite does not flip on a new draw;
# TOEANGLE_FRESH_EXAMPLES=1 draws new ones, to go looking for bugs.
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=os.environ.get("TOEANGLE_FRESH_EXAMPLES") != "1")
def test_api_conforms_to_its_schema(case, server):
    # Every check but "schema-valid data is accepted": a JSON Schema cannot say "these bytes are a
    # photo" or "these points are not collinear", so random bytes get a 415 and random points a 422,
    # as documented; the explicit tests in test_service_api.py cover those answers.
    excluded = [schemathesis.checks.positive_data_acceptance]
    if "multipart/form-data" in (case.media_type or ""):
        # Schemathesis' "negative" multipart bodies include valid ones: a number field "made an
        # array" is sent as no field at all when the array is empty. Invalid and repeated fields
        # are tested explicitly in test_service_api.py (422 invalid-request / malformed-form).
        excluded.append(schemathesis.checks.negative_data_rejection)
    case.call_and_validate(base_url=server.url, timeout=30, excluded_checks=excluded)
