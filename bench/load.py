"""``make load``: open-loop mixed traffic through the local HTTP API, N containers per function.

Run: ``python -m bench.load [--quick]`` -> ``bench/results/load.json``, ``docs/capacity/*.png``;
``python -m bench.load --cpu [--workers N] [--cpu-rate R]`` -> ``bench/results/load-cpu.json``:
only the CPU per request of each process group, analyze and smart below the knee.

Each step starts ``order-router run --workers N`` (N worker processes per function, each one
invocation at a time as a Lambda container) on free ports, makes the paper brokers answer at
once and never refuse for rate, and drives it with locust (``bench/locust_mix.py``): requests
start at Poisson arrival times of the target rate whether earlier ones answered or not (open
loop). A step reports the achieved rate, p50/p95/p99, errors (unanswered at the end included),
where the time went (front door, waiting for a container, handler: the local server's
``Server-Timing``), CPU per request of the service, Postgres, Redis and the load generator, and
the machine's load averages before and after (the machine is shared).

Why locust: maintained, Python (no other toolchain), and its FastHttpUser (geventhttpclient)
is cheap enough per request on this machine; its users are closed loops, so ``locust_mix.py``
uses one user per process as a clock that starts each request in a greenlet of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import redis

from bench.harness import write_result
from local import seed
from local.runtime import AUDIENCE, DATABASE, LOCAL_ISSUER, jwt_secret
from local.services import free_port
from local.tokens import issue_local_token
from shared.domain.contracts import ApiPath

REPO = Path(__file__).resolve().parent.parent
FIGURES = REPO / "docs" / "capacity"
TRADERS = 500
# Answer at once, never refuse, fill in full: the run measures our path, not the simulation.
PAPER = {
    "rejectRate": 0.0,
    "timeoutRate": 0.0,
    "partialFillRate": 0.0,
    "simulateDelay": False,
}
SWEEP_RATES = (25, 50, 100, 200, 400)
"""Offered analyze rates of the latency curve: below this machine's knee, at it and past it."""
SCALING_RATE = 400
"""Offered analyze rate of the throughput-against-N steps: above what any N achieves here."""
MIXES: dict[str, dict[str, float]] = {
    "analyze": {"analyze": 1.0},
    "smart": {"smart": 1.0},
    "mixed": {"analyze": 0.45, "smart": 0.3, "order": 0.15, "analytics": 0.03, "postback": 0.07},
}


@dataclass
class LocalRun:
    """A running ``order-router run`` for the load steps."""

    api: str
    pg_port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    tokens_file: Path


def load_averages() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (what ``uptime`` prints)."""
    return [round(x, 2) for x in os.getloadavg()]


@contextlib.contextmanager
def local_run(workers: int, tmp: Path) -> Iterator[LocalRun]:
    """``order-router run --workers N`` on free ports, ready for orders; stopped with SIGINT."""
    ports = [free_port() for _ in range(5)]
    data_dir = tmp / f"run-{workers}"
    log = (tmp / f"run-{workers}.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "AWS_"))}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "local.cli", "run", f"--workers={workers}"),
            *(f"--{name}-port={port}" for name, port in zip(_PORT_NAMES, ports, strict=True)),
            *(f"--data-dir={data_dir}", "--relay-interval=1", "--ignore-market-hours"),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{ports[0]}"
    try:
        _wait_healthy(api, process)
        _prepare(ports[3], ports[4])
        tokens_file = tmp / "tokens.txt"
        secret = jwt_secret(data_dir, create=False)
        tokens_file.write_text(
            "\n".join(
                issue_local_token(
                    secret,
                    user_id=f"load-{i}",
                    issuer=LOCAL_ISSUER,
                    audience=AUDIENCE,
                    ttl_s=3600,
                )
                for i in range(TRADERS)
            )
        )
        yield LocalRun(api, ports[3], data_dir, process, tokens_file)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


_PORT_NAMES = ("http", "ws", "internal", "pg", "redis")


def _wait_healthy(api: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"order-router run exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api}{ApiPath.HEALTH}", timeout=1).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("order-router run not healthy within 120 s")


def _prepare(pg_port: int, redis_port: int) -> None:
    # Brokers' real per-second limits would refuse a load test's orders: lifted, as in
    # bench/route_order.py; the cached profiles (which carry the limit) are dropped.
    url = f"postgresql://postgres@127.0.0.1:{pg_port}/{DATABASE}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE brokers SET adapter_config = adapter_config || %s::jsonb, "
            "rate_limit_per_s = 1000000",
            (json.dumps(PAPER),),
        )
    from shared.adapters.redis.profile_cache import RedisProfileCache

    client = redis.Redis(port=redis_port)
    RedisProfileCache(client, ttl_s=60).clear()
    client.close()


def _tree_cpu(pids: set[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def _service_pids(run: LocalRun) -> dict[str, set[int]]:
    # The root process is the front door (HTTP server, authorizer, event bus); its Python
    # children are the containers (worker processes).
    root = psutil.Process(run.process.pid)
    groups: dict[str, set[int]] = {
        "front_door": {root.pid},
        "containers": set(),
        "postgres": set(),
        "redis": set(),
    }
    for child in root.children(recursive=True):
        name = child.name()
        key = "redis" if "redis" in name else "postgres" if "postgres" in name else "containers"
        groups[key].add(child.pid)
    pid_file = run.data_dir / "postgres" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        master = psutil.Process(int(pid_file.read_text().split()[0]))
        groups["postgres"] |= {master.pid, *(c.pid for c in master.children(recursive=True))}
    return groups


def step(run: LocalRun, tmp: Path, *, mix: str, rate: float, duration_s: int) -> dict[str, Any]:
    """One open-loop run of ``mix`` at ``rate`` per second for ``duration_s``; its figures."""
    out = tmp / f"samples-{mix}-{rate}.json"
    warmup_s = min(5.0, duration_s / 5)
    env = {
        **os.environ,
        "LOAD_RATE": str(rate),
        "LOAD_MIX": json.dumps(MIXES[mix]),
        "LOAD_TOKENS": str(run.tokens_file),
        "LOAD_SECRETS": json.dumps(seed.webhook_secrets()),
        "LOAD_WARMUP_S": str(warmup_s),
        "LOAD_OUT": str(out),
    }
    before = {"load_avg": load_averages()}
    pids = _service_pids(run)
    cpu_before = {k: _tree_cpu(v) for k, v in pids.items()}
    locust = subprocess.Popen(
        [
            *(sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "locust_mix.py")),
            *("--headless", "-u", "1", "-r", "1", "--run-time", f"{duration_s}s"),
            *("--host", run.api, "--only-summary", "--stop-timeout", "5", "--loglevel", "ERROR"),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / f"locust-{mix}-{rate}.log").open("wb"),
    )
    generator = psutil.Process(locust.pid)
    generator_cpu = 0.0
    while locust.poll() is None:
        with contextlib.suppress(psutil.Error):
            times = generator.cpu_times()
            generator_cpu = times.user + times.system
        time.sleep(0.5)
    pids = _service_pids(run)
    cpu = {k: _tree_cpu(v) - cpu_before.get(k, 0.0) for k, v in pids.items()}
    cpu["service"] = cpu["front_door"] + cpu["containers"]
    cpu["load_generator"] = generator_cpu
    data = json.loads(out.read_text())
    figures = summarise(data, rate=rate, warmup_s=warmup_s)
    figures["cpu_ms_per_request"] = {
        k: round(v * 1000 / max(1, figures["completed"]), 3) for k, v in cpu.items()
    }
    figures["load_avg_before"] = before["load_avg"]
    figures["load_avg_after"] = load_averages()
    print(json.dumps({"mix": mix, "rate": rate, **_brief(figures)}), flush=True)
    return {"mix": mix, **figures}


def _pct(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1], 2)


def _latency(values_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": _pct(ms, 50), "p95_ms": _pct(ms, 95), "p99_ms": _pct(ms, 99)}


def summarise(data: dict[str, Any], *, rate: float, warmup_s: float) -> dict[str, Any]:
    """Rates, percentiles, errors and server stages of one step's samples.

    Throughput counts the answers that *arrived* inside the window (after the warm-up, before
    the end), whenever their request started; latency is that of the requests *started* after
    the warm-up that were answered, and the ones still unanswered at the end are errors (an
    overloaded step's latency is unbounded: its p99 is a lower bound).
    """
    ended = float(data["ended_s"])
    window = max(1e-9, ended - warmup_s)
    samples = data["samples"]
    started_late = [s for s in samples if s[0] >= warmup_s]
    done_in_window = [s for s in samples if s[3] and warmup_s <= s[0] + s[2] <= ended]
    unanswered = sum(data.get("in_flight", {}).values())
    by_kind: dict[str, Any] = {}
    for kind in sorted({s[1] for s in samples}):
        mine = [s for s in started_late if s[1] == kind]
        stages = {
            name: _pct([s[4][name] for s in mine if name in s[4]], 50)
            for name in ("front", "queue", "handler")
        }
        by_kind[kind] = {
            **_latency([s[2] for s in mine if s[3]]),
            "errors": sum(1 for s in mine if not s[3]),
            "error_kinds": dict(Counter(s[5] for s in mine if not s[3])),
            "achieved_per_s": round(sum(1 for s in done_in_window if s[1] == kind) / window, 1),
            "server_stage_p50_ms": stages,
        }
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(len(done_in_window) / window, 1),
        "window_s": round(window, 1),
        "completed": len(samples),
        "errors": sum(1 for s in started_late if not s[3]) + unanswered,
        "unanswered_at_end": unanswered,
        "latency": _latency([s[2] for s in started_late if s[3]]),
        "by_kind": by_kind,
        "start_lag_p99_ms": _pct([x * 1000 for x in data["lag"]], 99),
    }


def _brief(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "achieved": figures["achieved_per_s"],
        "p99_ms": figures["latency"]["p99_ms"],
        "errors": figures["errors"],
        "load": figures["load_avg_after"],
    }


def plots(results: dict[str, Any]) -> list[str]:
    """Latency against offered load, and throughput against N; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    written = []
    # The analyze target run (1,000/s) is the curve's last point.
    sweep = [*results["latency_vs_offered"], results["targets_run"]["analyze"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        ax.plot([s["offered_per_s"] for s in sweep], [s["latency"][key] or 0 for s in sweep], "o-")
    ax.axhline(50, color="grey", linestyle="--", label="routing SLO 50 ms")
    ax.set_xlabel("offered analyze requests/s (open loop; p99 of answered requests)")
    ax.set_xscale("log")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.legend(["p50", "p95", "p99", "SLO 50 ms"])
    ax.set_title(f"analyze, {results['sweep_workers']} containers per function")
    fig.tight_layout()
    fig.savefig(FIGURES / "latency-vs-offered-load.png", dpi=100)
    written.append("docs/capacity/latency-vs-offered-load.png")
    scaling = results["throughput_vs_workers"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([s["workers"] for s in scaling], [s["achieved_per_s"] for s in scaling], "o-")
    ax.set_xlabel("containers per function (N)")
    ax.set_ylabel("achieved analyze requests/s")
    ax.set_title(f"offered {scaling[0]['offered_per_s']:.0f}/s, 2-core machine (shared)")
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(FIGURES / "throughput-vs-workers.png", dpi=100)
    written.append("docs/capacity/throughput-vs-workers.png")
    plt.close("all")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short steps while developing")
    parser.add_argument("--workers", type=int, default=4, help="N for the target runs")
    parser.add_argument("--target-s", type=int, default=60, help="seconds of each target run")
    parser.add_argument("--sweep-s", type=int, default=20, help="seconds of each other step")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="only CPU per request, analyze and smart below the knee (results/load-cpu.json)",
    )
    parser.add_argument("--cpu-rate", type=float, default=100, help="offered rate of --cpu steps")
    args = parser.parse_args(argv)
    if args.cpu:
        cpu_per_request(args.workers, args.cpu_rate, args.sweep_s)
        return
    target_s, sweep_s = (15, 10) if args.quick else (args.target_s, args.sweep_s)
    results: dict[str, Any] = {
        "sweep_workers": args.workers,
        "machine_cpus": os.cpu_count(),
        "target_run_s": target_s,
        "step_s": sweep_s,
        "load_avg_at_start": load_averages(),
    }
    with tempfile.TemporaryDirectory(prefix="load-") as name:
        tmp = Path(name)
        scaling = []
        for workers in (1, 2, args.workers):
            with local_run(workers, tmp) as run:
                if workers == args.workers:
                    results["latency_vs_offered"] = [
                        step(run, tmp, mix="analyze", rate=r, duration_s=sweep_s)
                        for r in SWEEP_RATES
                    ]
                    results["targets_run"] = {
                        mix: step(run, tmp, mix=mix, rate=r, duration_s=target_s)
                        for mix, r in (("analyze", 1000), ("smart", 300), ("mixed", 400))
                    }
                saturated = step(run, tmp, mix="analyze", rate=SCALING_RATE, duration_s=sweep_s)
                scaling.append({"workers": workers, **saturated})
        results["throughput_vs_workers"] = scaling
    results["figures"] = plots(results)
    results["targets"] = _targets(results["targets_run"])
    write_result("load", results)


def cpu_per_request(workers: int, rate: float, duration_s: int) -> None:
    """CPU milliseconds per request of each process group, analyze and smart, below the knee.

    The figure contention moves least (CPU seconds consumed over a step ÷ requests answered):
    what a change to the request path is judged by on a shared machine.
    """
    results: dict[str, Any] = {"workers": workers, "load_avg_at_start": load_averages()}
    with tempfile.TemporaryDirectory(prefix="load-") as name, local_run(workers, Path(name)) as run:
        for mix in ("analyze", "smart"):
            results[mix] = step(run, Path(name), mix=mix, rate=rate, duration_s=duration_s)
            print(mix, json.dumps(results[mix]["cpu_ms_per_request"]), flush=True)
    write_result("load-cpu", results)


def _targets(runs: dict[str, Any]) -> dict[str, Any]:
    analyze, smart = runs["analyze"], runs["smart"]
    return {
        "analyze_ge_1000_per_s": analyze["achieved_per_s"] >= 1000,
        "smart_ge_300_per_s": smart["achieved_per_s"] >= 300,
        "p99_le_50ms": all((r["latency"]["p99_ms"] or 1e9) <= 50 for r in (analyze, smart)),
        "zero_errors": analyze["errors"] == 0 and smart["errors"] == 0,
    }


if __name__ == "__main__":
    main()
