"""Which worker serves which partition: a small compacted topic that every worker reads.

Once a worker has restored a partition it gained, it announces itself on
``<app>-owners`` (one partition, compacted): key ``<topic>/<partition>``, value
``{"url": "http://host:port", "views": [...], "at": <ms>}``. Every worker reads that
topic from its start and keeps the newest record per key, so a request for an entity
whose partition another worker owns can be sent on to the owner (`streamcore.serving`),
and a worker that owns nothing yet still knows every view and where it is served.

A record can be out of date while a partition moves (the old owner let it go, the new
one has not announced yet). The worker it names then answers from the partition's last
checkpoint, marked stale (`streamcore.runtime.handover`), until `on_taken` tells it that
another worker announced the partition; a worker that no longer has even that answers
421, and the request gets a 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamcore.io.kafka import KafkaBroker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Owner:
    """The worker that announced a partition last."""

    url: str
    views: tuple[str, ...]
    at_ms: int


class PartitionOwners:
    """The directory of partition owners, followed from the ``<app>-owners`` topic."""

    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self.broker = broker
        self.topic = topic
        self._owners: dict[tuple[str, int], Owner] = {}
        self._announced: dict[tuple[str, int], tuple[str, int]] = {}  # by this worker: (url, offset)
        self.on_taken: Callable[[str, int], None] | None = None
        """Called with (topic, partition) when another worker announces a partition after
        this worker last did (in the topic's order, not by the workers' clocks)."""
        self._consumer: AIOKafkaConsumer | None = None
        self._follow: asyncio.Task[None] | None = None

    async def start(self) -> None:
        s = self.broker.settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=f"{s.client_id}-owners",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        await self._consumer.start()
        tp = TopicPartition(self.topic, 0)
        self._consumer.assign([tp])
        await self._consumer.seek_to_beginning(tp)
        self._follow = asyncio.create_task(self._read_forever(tp), name="partition-owners")

    async def announce(self, topic: str, partition: int, url: str, views: list[str]) -> None:
        """This worker serves `partition` of `topic` from now on (known here at once)."""
        owner = Owner(url, tuple(views), int(time.time() * 1000))
        self._owners[(topic, partition)] = owner
        value = orjson.dumps({"url": owner.url, "views": list(owner.views), "at": owner.at_ms})
        delivery = await self.broker.producer.send(self.topic, value, key=f"{topic}/{partition}".encode(), partition=0)
        self._announced[(topic, partition)] = (url, (await delivery).offset)

    def owner(self, topic: str, partition: int) -> Owner | None:
        return self._owners.get((topic, partition))

    def topic_of(self, view: str) -> str | None:
        """The input topic of the stream that keeps `view` (None: no worker announced it)."""
        for (topic, _), owner in self._owners.items():
            if view in owner.views:
                return topic
        return None

    def all(self) -> dict[tuple[str, int], Owner]:
        """(topic, partition) -> its owner, for every partition announced."""
        return dict(self._owners)

    def views(self) -> set[str]:
        return {view for owner in self._owners.values() for view in owner.views}

    async def close(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
        if self._consumer is not None:
            await self._consumer.stop()

    async def _read_forever(self, tp: TopicPartition) -> None:
        assert self._consumer is not None
        while True:
            found = await self._consumer.getmany(tp, timeout_ms=500)
            for record in found.get(tp, []):
                self._apply(record.key, record.value, record.offset)

    def _apply(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        try:
            topic, _, partition = (key or b"").decode().rpartition("/")
            doc = orjson.loads(value or b"")
            owner = Owner(str(doc["url"]), tuple(str(v) for v in doc["views"]), int(doc["at"]))
            entry = (topic, int(partition))
        except (ValueError, KeyError, TypeError) as exc:  # not ours: say so, do not route by it
            log.warning("%s offset %d: not an owner record (%s); ignored", self.topic, offset, exc)
            return
        self._owners[entry] = owner  # the log's order decides, not the workers' clocks
        mine = self._announced.get(entry)
        if mine is not None and owner.url != mine[0] and offset > mine[1] and self.on_taken is not None:
            self.on_taken(*entry)
