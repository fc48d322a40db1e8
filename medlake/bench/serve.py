"""Load bench of ``medlake serve`` (not CI): patient-360 lookups offered at a fixed rate by locust ``FastHttpUser``s
on loopback, against the lake of ``MEDLAKE_HOME`` (built by ``medlake demo``; lay it out first with
``medlake maintain``). The server runs as ``medlake serve`` in its own process; this process only generates load.

    python -m medlake.bench.serve --rate 200 --seconds 60 --users 50
    python -m medlake.bench serve --size 200      # the same through make bench: SIZE is the offered rate

Prints p50/p95/p99 latency (ms), the rate the generator actually reached, errors, the machine's core count and
whether the audit holds exactly one record per request (read after the server has stopped and flushed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

__all__ = ["bench_serve", "main", "run_load"]

_BENCH_USER = "load-bench"
_BENCH_PASSWORD = "load-bench-password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(base: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"medlake serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"medlake serve did not answer {base}/health within {timeout} s")


def _token(base: str) -> str:
    body = f"username={_BENCH_USER}&password={_BENCH_PASSWORD}".encode()
    request = urllib.request.Request(f"{base}/token", data=body,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["access_token"])


def _master_ids(settings: Any, count: int) -> list[str]:
    from medlake.engine import get_engine

    engine = get_engine(settings.engine)
    ids = engine.to_arrow(engine.read(str(settings.table_path("dwd", "golden_record"))).select("master_id"))
    values = ids.column(0).to_pylist()
    return random.Random(7).sample(values, min(count, len(values)))


def run_load(rate: float, seconds: float, users: int) -> dict[str, Any]:
    """Offer ``rate`` patient-360 requests/s for ``seconds`` from ``users`` locust users; the figures."""
    from locust import FastHttpUser, constant_throughput, task
    from locust.env import Environment

    from medlake.config import child_environment, settings
    from medlake.services.audit import read_audit
    from medlake.services.users import UserStore

    current = settings()
    UserStore(current).add(_BENCH_USER, "clinician", _BENCH_PASSWORD)
    since = datetime.now(UTC)
    masters = _master_ids(current, 5000)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    # the server's own settings come from the environment, as for `medlake serve`; the rate limit is lifted for it
    environment = child_environment({"MEDLAKE_SERVE_RATE": str(int(rate * 120) + 1000)})
    server = subprocess.Popen([sys.executable, "-c", "from medlake.cli import main; main()", "serve", "--port",
                               str(port)], env=environment)
    try:
        _wait_until_up(base, server)
        header = {"Authorization": f"Bearer {_token(base)}"}

        class PatientLookup(FastHttpUser):
            host = base
            wait_time = constant_throughput(rate / users)

            @task
            def patient_360(self) -> None:
                self.client.get(f"/patients/{random.choice(masters)}?limit=50", headers=header,
                                name="/patients/{master_id}")

        env = Environment(user_classes=[PatientLookup], stop_timeout=60)  # users finish the request in flight
        runner = env.create_local_runner()
        runner.start(users, spawn_rate=users)
        started = time.monotonic()
        time.sleep(seconds)  # locust has monkey-patched time.sleep: the users run meanwhile
        elapsed = time.monotonic() - started
        runner.stop()  # waits (up to stop_timeout) for the requests in flight, which are then counted
        runner.quit()
        total = env.stats.total
        figures = {
            "cores": os.cpu_count(), "offered_rate": rate, "users": users, "seconds": round(elapsed, 1),
            "requests": total.num_requests, "failures": total.num_failures,
            "reached_rate": round(total.num_requests / elapsed, 1),
            "p50_ms": total.get_response_time_percentile(0.50), "p95_ms": total.get_response_time_percentile(0.95),
            "p99_ms": total.get_response_time_percentile(0.99), "patients": len(masters),
        }
    finally:
        server.terminate()  # SIGTERM: uvicorn runs the lifespan's end, which flushes the audit
        server.wait(timeout=120)
    from medlake.resources import LakeResource

    audited = read_audit(LakeResource.from_settings(current).engine, current, user=_BENCH_USER,
                         service="patient360", since=since, limit=10_000_000)
    figures["audit_rows"] = audited.num_rows
    figures["audit_rows_equal_requests"] = audited.num_rows == figures["requests"]
    return figures


def bench_serve(rate: int = 200) -> dict[str, Any]:
    """``make bench``'s entry: ``rate`` patient-360 requests/s for 60 s from 50 users against ``MEDLAKE_HOME``'s
    lake (a clear error when it has no master index yet: run ``make demo`` or build the lake first)."""
    from medlake.config import settings
    from medlake.errors import ConfigurationError

    golden = settings().table_path("dwd", "golden_record")
    if not golden.exists():
        raise ConfigurationError(f"{golden}: no master index to look patients up in; run `make demo` first")
    return run_load(float(rate), 60.0, 50)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second offered")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args(argv)
    print(json.dumps(run_load(args.rate, args.seconds, args.users), indent=2))


if __name__ == "__main__":
    main()
