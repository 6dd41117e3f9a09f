"""Contract fuzzing: schemathesis drives the running local mode from its own OpenAPI document.

Every operation of the trader API (and health, and the document itself) is called with cases
schemathesis derives from ``/api/v1/openapi.json`` (valid and invalid ones) and every built-in
check runs on each answer: no 5xx, only documented statuses, content types, headers and bodies,
invalid data refused, valid data accepted (or refused for a documented business reason), auth
not ignored, unsupported methods answered 405 with ``Allow``. Once with a trader's token and once
without one. The seed is fixed; ``FUZZ_MAX_EXAMPLES`` raises the examples per operation
(``make fuzz``). The broker webhooks are in the document but outside this suite: their bodies
are signed, so random ones only exercise the signature check (the webhook tests cover them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from shared.domain.contracts import TRADER_PREFIX, ApiPath
from tests.e2e.support import REPO, Runtime

OPENAPI = REPO / "docs" / "openapi.json"

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "12"))
SEED = 20260412
FUZZED_PATHS = r"^/api/v1/(trading/|health$|openapi\.json$)"

# A schema-valid order may still be refused for a documented reason: an unknown symbol, no
# broker able to take it, an order value over the limit (422), a key reused with another body
# (409), an order id that does not exist (404).
BUSINESS_REFUSALS = ["2XX", "404", "409", "422"]

cases: list[tuple[str, int]] = []


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            # Unknown query parameters are ignored by contract (docs/api.md), as HTTP APIs do.
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "mode": "all",
                "allow-extra-parameters": False,
            },
            "checks": {"positive_data_acceptance": {"expected-statuses": BUSINESS_REFUSALS}},
            "phases": {"stateful": {"enabled": False}},
        }
    )


@pytest.fixture(scope="module", autouse=True)
def case_count() -> Iterator[None]:
    """Print how many cases ran and what they answered (``make fuzz`` records it)."""
    yield
    statuses: dict[int, int] = {}
    for _, status in cases:
        statuses[status] = statuses.get(status, 0) + 1
    print(f"\ncontract fuzz: {len(cases)} cases, statuses {dict(sorted(statuses.items()))}")


# The committed document, which local mode serves unchanged (a test checks that); loaded at
# import because schemathesis' lazy fixture loader does not run under pytest 9.
schema = schemathesis.openapi.from_path(OPENAPI, config=_config()).include(path_regex=FUZZED_PATHS)


def test_local_mode_serves_the_committed_document(runtime: Runtime) -> None:
    # GIVEN the running local mode; WHEN its document is fetched
    served = httpx.get(f"{runtime.api}{ApiPath.OPENAPI}")
    # THEN it is the one fuzzed here
    assert served.status_code == 200
    assert served.json() == json.loads(OPENAPI.read_text())


@schema.parametrize()
def test_the_api_keeps_its_contract_for_a_trader(case: Any, runtime: Runtime) -> None:
    # GIVEN a generated request (valid or not) with a trader's token
    # WHEN it is sent; THEN every check holds
    response = case.call_and_validate(base_url=runtime.api, headers=runtime.auth("fuzz-trader"))
    cases.append((case.operation.label, response.status_code))


@schema.parametrize()
def test_the_api_keeps_its_contract_without_a_token(case: Any, runtime: Runtime) -> None:
    # GIVEN a generated request without a token
    # WHEN it is sent
    # (a schema-valid request without a token is refused by design: 401, asserted below)
    response = case.call_and_validate(
        base_url=runtime.api, excluded_checks=[checks.positive_data_acceptance]
    )
    cases.append((case.operation.label, response.status_code))
    # THEN a trader route refused it, in the one error shape
    if case.operation.path.startswith(f"{TRADER_PREFIX}/"):
        assert response.status_code in (401, 404, 405), response.text
        if case.method != "HEAD":  # a HEAD answer has no body
            assert set(response.json()) == {"error"}
