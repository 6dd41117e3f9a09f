"""Pure rules of the admin API and of the order-history cursor."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain.admin import (
    BrokerRegistration,
    BrokerUpdate,
    RoutingStatus,
    StatusChange,
    admin_from_claims,
)
from shared.domain.errors import AuthenticationError, ForbiddenError, InvalidRequestError
from shared.domain.history import HistoryKey, HistoryQuery, decode_cursor, encode_cursor
from shared.domain.models import FeeSchedule
from tests import factories

AT = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("groups", "ok"),
    [(["ADMIN"], True), ("[TRADER ADMIN]", True), (["TRADER"], False), ("admin", False)],
)
def test_only_the_admin_group_is_an_admin(groups: object, ok: bool) -> None:
    # GIVEN verified claims with these groups WHEN read as an operator
    claims = {"sub": "op", "cognito:groups": groups}
    # THEN ADMIN passes (in every shape the authorizer renders) and anything else is 403
    if ok:
        assert admin_from_claims(claims).user_id == "op"
    else:
        with pytest.raises(ForbiddenError):
            admin_from_claims(claims)


@pytest.mark.parametrize("claims", [None, {}, {"sub": ""}, {"sub": 7, "cognito:groups": ["ADMIN"]}])
def test_no_subject_is_401(claims: dict[str, object] | None) -> None:
    # GIVEN claims without a subject WHEN read THEN 401, not 403
    with pytest.raises(AuthenticationError):
        admin_from_claims(claims)


def test_an_update_changes_only_what_it_names() -> None:
    # GIVEN a broker and an update of its rate limit and intraday fee
    broker = factories.broker("zerodha", rate_limit_per_s=10)
    update = BrokerUpdate.model_validate(
        {"rateLimitPerS": 20, "feeSchedule": {"intraday": {"minInr": "5", "capInr": "5"}}}
    )
    # WHEN applied
    changed = update.apply(broker)
    # THEN those fields change, into models, and the rest is the broker's
    assert changed.rate_limit_per_s == 20
    assert isinstance(changed.fee_schedule, FeeSchedule)
    assert str(changed.fee_schedule.intraday.cap_inr) == "5"
    assert (
        changed.model_copy(update={"rate_limit_per_s": 10, "fee_schedule": broker.fee_schedule})
        == broker
    )
    assert update.changes() == {
        "rate_limit_per_s": 20,
        "fee_schedule": {
            "delivery": {"rate_pct": "0", "min_inr": "0", "cap_inr": None},
            "intraday": {"rate_pct": "0", "min_inr": "5", "cap_inr": "5"},
            "dp_charge_inr": "0",
        },
    }


@pytest.mark.parametrize(
    "body",
    [
        {"status": "MAINTENANCE"},
        {"status": "MAINTENANCE", "reason": ""},
        {"status": "OFFLINE", "reason": "x"},
        {"status": "MAINTENANCE", "reason": "x" * 501},
    ],
)
def test_a_status_needs_a_known_value_and_a_reason(body: dict[str, str]) -> None:
    # GIVEN a status change without a reason, with an unknown status or an essay
    # WHEN validated THEN it is refused
    with pytest.raises(ValidationError):
        StatusChange.model_validate(body)
    assert StatusChange(status=RoutingStatus.SUSPENDED, reason="r").status == "SUSPENDED"


def test_a_registration_refuses_an_unknown_adapter_and_a_bad_id() -> None:
    # GIVEN registrations with an unknown adapter and an id that is no slug
    base = {"displayName": "X", "webhookAuth": "HMAC", "webhookSecretRef": "x/webhook"}
    # WHEN validated THEN both are refused
    with pytest.raises(ValidationError):
        BrokerRegistration.model_validate({**base, "brokerId": "x", "adapter": "telnet"})
    with pytest.raises(ValidationError):
        BrokerRegistration.model_validate({**base, "brokerId": "X Y", "adapter": "paper"})


def test_a_cursor_round_trips_under_the_same_filters_only() -> None:
    # GIVEN a query and the key of a page's last order
    query = HistoryQuery(symbol="TCS", limit=10)
    key = HistoryKey(created_at=AT, order_id="ord-9")
    # WHEN encoded and decoded
    cursor = encode_cursor(query, key)
    # THEN the same filters get the key back exactly (microseconds included), others are refused
    assert decode_cursor(query.model_copy(update={"limit": 50}), cursor) == key
    with pytest.raises(InvalidRequestError, match="other filters"):
        decode_cursor(HistoryQuery(symbol="INFY"), cursor)
    with pytest.raises(InvalidRequestError):
        decode_cursor(HistoryQuery(symbol="TCS", since=AT - timedelta(days=1)), cursor)


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "x" * 600,
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _b64([1, 2]),
        _b64({"t": "not a time", "o": "ord", "f": HistoryQuery().digest()}),
        _b64({"t": "2026-11-25T09:30:00", "o": "ord", "f": HistoryQuery().digest()}),
        _b64({"o": "ord", "f": HistoryQuery().digest()}),
        _b64({"t": AT.isoformat(), "o": "", "f": HistoryQuery().digest()}),
    ],
)
def test_a_cursor_that_is_not_ours_is_invalid_request(cursor: str) -> None:
    # GIVEN a cursor that does not decode, is not an object, or carries no valid key
    # WHEN decoded THEN it is InvalidRequestError on the cursor (422), never another error
    with pytest.raises(InvalidRequestError) as refused:
        decode_cursor(HistoryQuery(), cursor)
    assert refused.value.field == "cursor"


@pytest.mark.parametrize(
    "moment",
    ["2026-11-25T09:30:00+23:59", "0001-01-01T00:00:00+01:00", "2026-11-25T15:00:00+05:30"],
)
def test_filters_are_kept_in_utc_or_refused(moment: str) -> None:
    # GIVEN a zoned timestamp with a large offset, one that underflows in UTC, and IST
    # WHEN used as a filter THEN it is UTC (Postgres accepts offsets up to 16 h), or refused
    try:
        query = HistoryQuery.model_validate({"since": moment})
    except ValidationError:
        assert moment.startswith("0001")
        return
    assert query.since is not None
    assert query.since.utcoffset() == timedelta(0)
    assert query.since == datetime.fromisoformat(moment)
