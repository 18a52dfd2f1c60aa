"""Serve CityGraph exactly as ``citygraph serve`` does, with CPU probes around policy evaluation.

bench/run.py starts the gateway through this file so it can report the share of server CPU spent
deciding policy. The probes wrap, without changing them, the synchronous steps of a decision:

* ``prepare`` (event-loop thread): summarising the operation (``schema.policy.summarize``),
  grouping its coordinates into decisions (``schema.policy.grouped``), building the input documents
  (``schema.policy.input_docs``), the decision cache's key
  (``policies.cache.cache_key``) and the engine's input encoding (``policies.embedded.encode_input``);
* ``rego`` (the engine's worker threads): ``EmbeddedEngine._evaluate``, i.e. Rego evaluation and
  decision parsing, on a decision-cache miss.

A probe times one call in :data:`SAMPLE_EVERY`, drawn at random, and adds the calling thread's
CPU time (``time.thread_time``) times that to the Prometheus counter
``bench_policy_cpu_seconds_total{part}``, served on the gateway's own ``/metrics``; each Rego
evaluation also increments ``bench_policy_evaluations_total`` (every one, not sampled). Applying
masks to records and writing the audit trail are not counted. Timing every call cost the measured
server two clock reads (system calls, about a microsecond each here) and a counter increment per
probed call: eight calls per dossier request while its five decisions are cached, more than 1% of
its CPU, which the peers do not pay. Sampled, the probe costs a random draw per call, and the
estimate rests on hundreds of timed calls per measured cell. ``bench_graphql_requests_total``
counts the requests that reached the GraphQL endpoint, the denominator of the per-request figures.

    python bench/citygraph_probe.py serve --port 8765
"""

from __future__ import annotations

import functools
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import Counter  # noqa: E402

import gateway  # noqa: E402
import policies.cache  # noqa: E402
import policies.embedded  # noqa: E402
import schema.policy  # noqa: E402

#: One probed call in this many is timed (at random); its time counts this many times.
SAMPLE_EVERY = 8
_DRAW = random.Random(8).random  # seeded: the same draws on every run (the calls they fall on vary)

POLICY_CPU = Counter("bench_policy_cpu_seconds", "CPU seconds in policy evaluation (bench probe)", ["part"])
EVALUATIONS = Counter("bench_policy_evaluations", "Rego evaluations (decision-cache misses; bench probe)")
REQUESTS = Counter("bench_graphql_requests", "Requests that reached /graphql (bench probe)")


def _probe(owner: object, name: str, part: str, count: bool = False) -> None:
    original: Callable[..., Any] = getattr(owner, name)
    spent = POLICY_CPU.labels(part=part)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if count:
            EVALUATIONS.inc()
        if _DRAW() * SAMPLE_EVERY >= 1:
            return original(*args, **kwargs)
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent.inc((time.thread_time() - start) * SAMPLE_EVERY)

    setattr(owner, name, timed)


for _owner, _name in (
    (schema.policy, "summarize"),
    (schema.policy, "grouped"),
    (schema.policy, "input_docs"),
    (policies.cache, "cache_key"),
    (policies.embedded, "encode_input"),
):
    _probe(_owner, _name, "prepare")
_probe(policies.embedded.EmbeddedEngine, "_evaluate", "rego", count=True)
_ENDPOINT = "execute_http"  # imported by name into gateway.py, which calls it for every /graphql request
_execute_http: Callable[..., Any] = getattr(gateway, _ENDPOINT)


async def _counted(*args: Any, **kwargs: Any) -> Any:
    REQUESTS.inc()
    return await _execute_http(*args, **kwargs)


setattr(gateway, _ENDPOINT, _counted)

if __name__ == "__main__":
    gateway.cli()
