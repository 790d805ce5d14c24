"""Schemathesis against the service's own /openapi.json (WSGI, in process), bounded for CI.

Every operation of the document is fuzzed with schema-valid and schema-invalid data (examples and
fuzzing phases; the coverage phase, which enumerates hundreds of boundary cases, is off): at most 45
examples per operation; the four GET operations without parameters give one each, so about 95
calls in all, a few seconds.

Checks: no 5xx, status codes and content types the document declares, and bodies and headers that
match the document's schemas. The positive/negative data checks are not run: the OpenAPI 3.0 schema
cannot express the service's conditional rules (fhirServer is required with fhirAuthorization;
acceptedSuggestions with outcome "accepted"; every prefetch key must be present or fetchable, else
412), so schema-valid requests are rightly answered 400 or 412. `service_id` is pinned to the real
service; other ids are covered by the explicit 404 tests.
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
import schemathesis.generation.dictionaries  # imported here, not lazily inside a deep hypothesis draw
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks
from schemathesis.config import SchemathesisConfig

from cds_service.app import create_app

EXAMPLES_PER_OPERATION = 45
CALLS: collections.Counter[tuple[str, str, int]] = collections.Counter()

_DB_DIR = Path(tempfile.mkdtemp(prefix="cds-schemathesis-"))
APP = create_app({"database_url": f"sqlite:///{_DB_DIR}/feedback.sqlite3", "TESTING": True})
CONFIG = SchemathesisConfig.from_dict({
    "parameters": {"service_id": "posterior-knee-pain"},
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION},
})
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP, config=CONFIG)

CHECKS: list[Any] = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
]


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_openapi_contract(case: schemathesis.Case) -> None:
    response = case.call_and_validate(checks=CHECKS)
    CALLS[(case.method, case.path, response.status_code)] += 1
