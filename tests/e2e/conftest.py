"""The e2e harness: the real ``order-router run`` in a subprocess, driven over HTTP and WebSocket.

One runtime per session (start-up takes a few seconds: initdb, migrations, seed), on free ports
with a throwaway data directory. It is started as ``python -m local.cli run`` from the repository
root: the same ``main()`` as the ``order-router`` console script, without depending on how the
virtualenv's editable install maps packages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from local.runtime import DATABASE
from tests.e2e.support import PAPER_BEHAVIOUR, Runtime, start_runtime, stop_runtime


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """``order-router run`` on free ports; stopped with SIGINT, which must end it cleanly."""
    run = start_runtime(tmp_path_factory.mktemp("order-router-run"))
    try:
        _configure_paper_brokers(run)
        yield run
    finally:
        stop_runtime(run)


def _configure_paper_brokers(run: Runtime) -> None:
    # Before the first order: the runtime builds each paper broker from its row on first use.
    url = f"postgresql://postgres@127.0.0.1:{run.pg_port}/{DATABASE}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE brokers SET adapter_config = adapter_config || %s::jsonb "
            "WHERE adapter = 'paper'",
            (json.dumps(PAPER_BEHAVIOUR),),
        )
