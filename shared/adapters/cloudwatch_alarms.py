"""The :class:`~shared.ports.AlarmStatus` port over CloudWatch ``DescribeAlarms`` (AWS).

One paginated ``DescribeAlarms`` call filtered by the stack's alarm name prefix
(``Settings.alarm_name_prefix``; the admin function's role may describe those alarms only).
Alarms are matched to :data:`~shared.domain.alarms.ALARM_DEFINITIONS` by the name after the
prefix; a definition CloudWatch does not know (a stack not yet deployed) is reported as
``INSUFFICIENT_DATA`` saying so, and alarms of the prefix that no definition names are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.domain.alarms import (
    ALARM_DEFINITIONS,
    AlarmState,
    AlarmSummary,
    AlarmView,
    view_of,
)
from shared.domain.errors import MonitoringUnavailableError

SOURCE = "cloudwatch"


class CloudWatchAlarmStatus:
    """The stack's alarms as CloudWatch holds them.

    Parameters
    ----------
    prefix
        The alarm name prefix of this stack (``order-router-<stage>-``).
    region
        The AWS region (the client is created on first use).
    client
        A CloudWatch client (tests pass moto's); built lazily when ``None``.
    clock
        Current time (the summary's ``evaluatedAt``).
    """

    def __init__(
        self,
        prefix: str,
        *,
        region: str | None = None,
        client: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not prefix:
            raise ValueError("an alarm name prefix is required (alarm_name_prefix)")
        self._prefix = prefix
        self._region = region
        self._client = client
        self._clock = clock

    def summary(self) -> AlarmSummary:
        """Every defined alarm with CloudWatch's state, reason and last state change.

        Raises
        ------
        MonitoringUnavailableError
            CloudWatch refused or did not answer (503).
        """
        found = self._describe()
        now = self._clock()
        views: list[AlarmView] = []
        for definition in ALARM_DEFINITIONS:
            alarm = found.get(definition.name)
            if alarm is None:
                views.append(
                    view_of(
                        definition,
                        AlarmState.INSUFFICIENT_DATA,
                        f"No alarm named {self._prefix}{definition.name} in CloudWatch "
                        "(is the stack deployed?)",
                        now,
                    )
                )
                continue
            updated = alarm.get("StateUpdatedTimestamp")
            views.append(
                view_of(
                    definition,
                    AlarmState(alarm["StateValue"]),
                    str(alarm.get("StateReason", "")),
                    updated if isinstance(updated, datetime) else now,
                )
            )
        return AlarmSummary(source=SOURCE, evaluated_at=now, alarms=tuple(views))

    def _describe(self) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            paginator = self._cloudwatch().get_paginator("describe_alarms")
            found: dict[str, Any] = {}
            for page in paginator.paginate(
                AlarmNamePrefix=self._prefix, AlarmTypes=["MetricAlarm"]
            ):
                for alarm in page.get("MetricAlarms", []):
                    found[alarm["AlarmName"].removeprefix(self._prefix)] = alarm
        except (BotoCoreError, ClientError) as exc:
            raise MonitoringUnavailableError(
                f"CloudWatch DescribeAlarms failed: {exc.__class__.__name__}"
            ) from exc
        return found

    def _cloudwatch(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "cloudwatch",
                region_name=self._region,
                # An operator's page must not hang on a slow API: fail fast, say 503.
                config=Config(
                    connect_timeout=2,
                    read_timeout=3,
                    retries={"max_attempts": 2, "mode": "standard"},
                ),
            )
        return self._client
