"""``adapterConfig`` of a broker, validated per adapter kind when an operator writes it.

Each kind has a typed, strict model: unknown keys, wrong types (no ``"0.5"`` for a number) and
values beyond sane bounds are refused, and so is anything that looks like a secret written in
plain text: credentials live in the secret store and ``adapterConfig`` names them by reference
(``appRef``, ``credentialsRef``). A refusal is a 422 ``INVALID_REQUEST`` whose ``field`` is the
dotted camelCase path of the first bad value (``adapterConfig.limits.perSecond``).

The adapters read the same keys (``shared.adapters.brokers.paper.PaperBehaviour`` and
``shared.adapters.brokers.catalog.RealBrokerSettings``); these models add the bounds and the
per-kind rules an operator's input needs (docs/api.md, "Admin API").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel, to_snake

from shared.domain.errors import InvalidRequestError
from shared.domain.models import FrozenModel

FIELD = "adapterConfig"
MAX_LATENCY_MS = 60_000.0
MAX_BPS = 1_000.0
MAX_MAPPED_INSTRUMENTS = 20_000
MAX_RATE_PER_S = 10_000
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9._-]{1,100}){1,4}$"
"""A secret-store reference is a path (``kite/app``): a bare token is refused as a secret."""
SECRET_KEY = re.compile(
    r"(^|_)(secret|password|passwd|token|api_key|apikey|private_key|totp|pin|access_token)($|_)"
)
"""Key names (snake_case) that hold a credential, not a reference to one."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
INSTRUMENT_KEY = r"^(NSE|BSE):[A-Z0-9&_-]{1,20}$"


def _url(value: str) -> str:
    parts = urlsplit(value)
    if not parts.netloc or parts.username or parts.password:
        raise ValueError("must be an absolute URL without credentials")
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        return value
    raise ValueError("must be https (http only to this machine, for a simulator)")


Url = Annotated[str, Field(max_length=2_048), AfterValidator(_url)]
Ref = Annotated[str, Field(pattern=REF_PATTERN, max_length=200)]
InstrumentMap = Annotated[
    dict[
        Annotated[str, Field(pattern=INSTRUMENT_KEY)],
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_|.-]+$")],
    ],
    Field(max_length=MAX_MAPPED_INSTRUMENTS),
]


class _Strict(FrozenModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True
    )


class PaperConfig(_Strict):
    """A paper broker's hidden behaviour (``adapter`` ``paper``)."""

    ack_latency_ms: float = Field(default=40.0, ge=0, le=MAX_LATENCY_MS)
    ack_jitter_ms: float = Field(default=10.0, ge=0, le=MAX_LATENCY_MS)
    fill_latency_ms: float = Field(default=150.0, ge=0, le=MAX_LATENCY_MS)
    reject_rate: float = Field(default=0.01, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    partial_fill_rate: float = Field(default=0.05, ge=0, le=1)
    slippage_bps_mean: float = Field(default=1.0, ge=-MAX_BPS, le=MAX_BPS)
    slippage_bps_std: float = Field(default=1.0, ge=0, le=MAX_BPS)
    simulate_delay: bool = False


class LimitsConfig(_Strict):
    """A broker's order-rate limits per account (its published ones when absent)."""

    per_second: int = Field(gt=0, le=MAX_RATE_PER_S)
    per_minute: int | None = Field(default=None, gt=0, le=60 * MAX_RATE_PER_S)
    per_hour: int | None = Field(default=None, gt=0, le=3_600 * MAX_RATE_PER_S)
    per_day: int | None = Field(default=None, gt=0, le=86_400 * MAX_RATE_PER_S)
    source: str = Field(default="", max_length=500)


class RealConfig(_Strict):
    """A real broker (``kite``, ``upstox``, ``dhan``): nothing secret, credentials by reference.

    The keys are the adapters' (``RealBrokerSettings``), so a configuration read back from
    ``GET /admin/brokers`` can be sent back as it is; a key only another kind uses must be
    empty (:data:`UNUSED`).
    """

    credentials_ref: Ref | None = None
    app_ref: Ref | None = None
    login_url: Url | None = None
    base_url: Url | None = None
    order_base_url: Url | None = None
    """Upstox only: the order (HFT) host."""
    instruments: InstrumentMap = Field(default_factory=dict)
    """Upstox only: ``"NSE:RELIANCE"`` -> instrument key."""
    security_ids: InstrumentMap = Field(default_factory=dict)
    """Dhan only: ``"NSE:RELIANCE"`` -> security id."""
    limits: LimitsConfig | None = None


class GenericConfig(_Strict):
    """A broker this build has no adapter for (``generic``): nothing to configure."""


CONFIG_MODELS: Mapping[str, type[_Strict]] = {
    "paper": PaperConfig,
    "kite": RealConfig,
    "upstox": RealConfig,
    "dhan": RealConfig,
    "generic": GenericConfig,
}
"""``brokers.adapter`` -> the model its ``adapterConfig`` must satisfy."""
UNUSED: Mapping[str, tuple[str, ...]] = {
    "kite": ("order_base_url", "instruments", "security_ids"),
    "upstox": ("security_ids",),
    "dhan": ("order_base_url", "instruments"),
}
"""Keys of :class:`RealConfig` a kind does not use: given, they must be empty."""


def check_adapter_config(adapter: str, config: Mapping[str, Any]) -> None:
    """Refuse an ``adapterConfig`` its adapter cannot use, naming the first bad field.

    Raises
    ------
    InvalidRequestError
        422, ``field`` the dotted camelCase path (``adapterConfig.baseUrl``): an unknown
        adapter, a key that holds a secret, an unknown key, a wrong type, a value out of bounds.
    """
    model = CONFIG_MODELS.get(adapter)
    if model is None:
        raise InvalidRequestError("adapter", f"unknown adapter {adapter!r}")
    secret = _secret_path(config, (FIELD,))
    if secret is not None:
        raise InvalidRequestError(
            secret,
            "looks like a credential in plain text: store it in the secret store and give "
            "its reference (appRef or credentialsRef, e.g. 'kite/app')",
        )
    try:
        valid = model.model_validate(dict(config))
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join([FIELD, *(_camel(part) for part in first["loc"])])
        raise InvalidRequestError(path, f"{first['msg']} (adapter {adapter})") from exc
    for name in UNUSED.get(adapter, ()):
        if getattr(valid, name):
            raise InvalidRequestError(
                f"{FIELD}.{to_camel(name)}", f"not used by adapter {adapter}: leave it out"
            )


def _secret_path(value: Any, path: tuple[str, ...]) -> str | None:
    if not isinstance(value, Mapping):
        return None
    for key, inner in value.items():
        where = (*path, str(key))
        # The instrument maps' keys are symbols, not settings: "NSE:PIN" is no PIN.
        if path[-1] not in ("instruments", "securityIds", "security_ids") and SECRET_KEY.search(
            to_snake(str(key)).lower()
        ):
            return ".".join(where)
        found = _secret_path(inner, where)
        if found is not None:
            return found
    return None


def _camel(part: int | str) -> str:
    return to_camel(part) if isinstance(part, str) and "_" in part else str(part)
