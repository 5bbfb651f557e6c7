"""``/metrics`` with ``serve --workers N``: every worker's figures, in one answer.

The workers share one port, so a scrape reaches one of them, at random. That one
asks every worker for its figures over the broker (``<prefix>:metrics``), waits
for their answers (at most :data:`WAIT_S`), and answers the scrape with all of
them, each sample labelled with its worker's ``node``. A worker that doesn't
answer in time is left out of that scrape, and the scrape says so in a comment.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from classroom.broker import Broker, BrokerError
from classroom.broker.reading import read_forever

log = logging.getLogger(__name__)

REQUESTS = "metrics"
WAIT_S = 2.0


class WorkerFigures:
    def __init__(self, broker: Broker, node: str, own: Callable[[], bytes], workers: int) -> None:
        self._broker = broker
        self._node = node
        self._own = own
        self._workers = workers
        self._ids = itertools.count(1)
        self._waiting: dict[str, tuple[dict[str, bytes], asyncio.Event]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        requests = await self._broker.subscribe(REQUESTS)
        answers = await self._broker.subscribe(f"{REQUESTS}:{self._node}")
        what = "metrics of the other workers"
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(
                read_forever(self._broker, REQUESTS, self._asked, what=what, first=requests)
            ),
            loop.create_task(
                read_forever(
                    self._broker, answers.channel, self._answered, what=what, first=answers
                )
            ),
        ]

    async def _asked(self, payload: bytes) -> None:
        request = json.loads(payload)
        answer = {"rid": request["rid"], "node": self._node, "figures": self._own().decode()}
        with contextlib.suppress(BrokerError):
            await self._broker.publish(f"{REQUESTS}:{request['from']}", json.dumps(answer).encode())

    def _answered(self, payload: bytes) -> None:
        answer = json.loads(payload)
        waiting = self._waiting.get(answer["rid"])
        if waiting is not None:
            got, done = waiting
            got[answer["node"]] = answer["figures"].encode()
            if len(got) >= self._workers:
                done.set()

    async def gather(self) -> bytes:
        """Every worker's figures that came within :data:`WAIT_S`, merged."""
        rid = f"{self._node}:{next(self._ids)}"
        got: dict[str, bytes] = {}
        done = asyncio.Event()
        self._waiting[rid] = (got, done)
        try:
            request = json.dumps({"from": self._node, "rid": rid}).encode()
            await self._broker.publish(REQUESTS, request)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), WAIT_S)
        except BrokerError as exc:
            log.warning("figures of the other workers not asked for: %s", exc)
        finally:
            del self._waiting[rid]
        got.setdefault(self._node, self._own())
        text = merged(got)
        if len(got) < self._workers:
            text += (
                f"# {self._workers - len(got)} of {self._workers} workers did not answer\n".encode()
            )
        return text

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def merged(figures: dict[str, bytes]) -> bytes:
    """Several processes' expositions as one, each sample labelled with its ``node``."""
    families: dict[str, Metric] = {}
    for node, text in sorted(figures.items()):
        for family in text_string_to_metric_families(text.decode()):
            into = families.get(family.name)
            if into is None:
                into = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            for sample in family.samples:
                into.samples.append(sample._replace(labels={**sample.labels, "node": node}))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families.values())))
    return generate_latest(registry)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
