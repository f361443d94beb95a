"""What the Kafka scenarios share: workers of `chaos/apps/kafka_cards.py`, a producer, the exact check.

The input is in event-time order per card (no event is late), so the final windows
must equal a plain count and sum of what the input topic holds: an event lost or
counted twice anywhere (offsets, changelog restore, a zombie's writes) shows as a wrong
window. Records are produced one at a time and each acknowledged, and every
acknowledged one must be in the topic. The topic may hold one twice: a producer
without idempotence (Tansu has none) sends again a record whose acknowledgement a reset
connection lost; the engine must then count it twice, as the topic holds it twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from chaos.suite import Verdict
from streamcore.base.records import Record
from streamcore.io.kafka_settings import kafka_partition
from streamcore.testing import cli_command, results_table

APP = Path(__file__).parent / "apps" / "kafka_cards.py"
SESSION_TIMEOUT_MS = 2_000
PARTITIONS = 4
START_MS = 1_700_000_000_000


class KafkaRun:
    """One scenario run's topics (named by a fresh run id), workers and producer on `bootstrap`."""

    def __init__(self, bootstrap: str, workdir: Path, stall_file: Path | None = None) -> None:
        self.bootstrap = bootstrap
        self.stall_file = stall_file
        """Set: the workers' sink waits while this file exists, then writes results to ``<file>.out``."""
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:8]
        self.events_topic = f"chaos-{self.run_id}-events"
        self.totals_topic = f"chaos-{self.run_id}-totals"
        self.produced: list[dict[str, Any]] = []
        """Every event the broker acknowledged, in the order sent."""
        self._input: list[dict[str, Any]] | None = None
        """What the input topic holds, read once the input is complete (`expected`)."""
        asyncio.run(self._create_topics())

    async def _create_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(self.events_topic, PARTITIONS, 1, topic_configs={"cleanup.policy": "delete"}),
                    NewTopic(self.totals_topic, 1, 1, topic_configs={"cleanup.policy": "delete"}),
                ]
            )
        finally:
            await admin.close()

    def worker(
        self, name: str, state_root: Path | None = None, http_port: int | None = None, advertise: str = ""
    ) -> subprocess.Popen[bytes]:
        """A ``streamcore worker`` of the app; its output goes to ``<name>.log``, its state to
        ``<state_root>/<name>`` (default: the run's directory). With `http_port` the app keeps
        its feature view and the worker serves it on that loopback port, telling the others
        to forward to `advertise` (default: that port)."""
        serving = ["--http", f"127.0.0.1:{http_port}", *(["--advertise", advertise] if advertise else [])]
        env = {
            **os.environ,
            "STREAMCORE_CHAOS_RUN": self.run_id,
            "STREAMCORE_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "STREAMCORE_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            "STREAMCORE_KAFKA_LINGER_MS": "1",
            **({"STREAMCORE_CHAOS_STALL_FILE": str(self.stall_file)} if self.stall_file else {}),
            **({"STREAMCORE_CHAOS_VIEW": "1"} if http_port else {}),
        }
        with open(self.workdir / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                cli_command(
                    "worker", str(APP), "--broker", f"kafka://{self.bootstrap}",
                    "--state-dir", str((state_root or self.workdir) / name),
                    "--checkpoint-interval-ms", "300", "--quiet", *(serving if http_port else []),
                ),
                env=env,
                stdout=log,
                stderr=log,
            )  # fmt: skip

    def produce(self, count: int, seconds: float, first: int = 0) -> None:
        """Send `count` events over about `seconds`, each acknowledged before the next."""
        asyncio.run(self._produce(count, seconds, first))

    async def _produce(self, count: int, seconds: float, first: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0, request_timeout_ms=60_000)
        await producer.start()
        started = time.monotonic()
        try:
            for i in range(first, first + count):
                event = {"card": f"c{i % 40}", "amount": i % 97, "ts": START_MS + i * 50}
                await (await producer.send(self.events_topic, orjson.dumps(event), key=event["card"].encode()))
                self.produced.append(event)
                await asyncio.sleep(max(0.0, started + (i - first + 1) * seconds / count - time.monotonic()))
        finally:
            await producer.stop()

    def close_windows(self) -> None:
        """One event per partition a minute after the last: every window of the input fires."""
        last = max(e["ts"] for e in self.produced)
        keys: dict[int, str] = {}
        i = 0
        while len(keys) < PARTITIONS:
            keys.setdefault(kafka_partition(f"close{i}".encode(), PARTITIONS), f"close{i}")
            i += 1
        asyncio.run(self._send_closing(list(keys.values()), last + 60_000))

    async def _send_closing(self, cards: list[str], ts: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0)
        await producer.start()
        try:
            for card in cards:
                value = orjson.dumps({"card": card, "amount": 0, "ts": ts})
                await (await producer.send(self.events_topic, value, key=card.encode()))
        finally:
            await producer.stop()

    def expected(self) -> dict[tuple[str, int], tuple[int, int]]:
        """Each window's (count, sum) over what the input topic holds (close events aside)."""
        if self._input is None:
            self._input = [e for e in asyncio.run(self._read_input()) if not e["card"].startswith("close")]
        out: dict[tuple[str, int], list[int]] = {}
        for e in self._input:
            acc = out.setdefault((e["card"], e["ts"] - e["ts"] % 10_000), [0, 0])
            acc[0] += 1
            acc[1] += e["amount"]
        return {k: (v[0], v[1]) for k, v in out.items()}

    def results(self) -> dict[tuple[str, int], tuple[int, int]]:
        """The final value of every window in the totals topic (close events left out)."""
        if self.stall_file is not None:
            out = Path(f"{self.stall_file}.out")
            values = [orjson.loads(line) for line in out.read_bytes().splitlines()] if out.exists() else []
            records = [Record(self.totals_topic, 0, i, 0, None, orjson.dumps(v)) for i, v in enumerate(values)]
        else:
            records = asyncio.run(self._read_totals())
        table = results_table(records)
        return {(k, s): (w["n"], w["total"]) for (k, s, _), w in table.items() if not k.startswith("close")}

    async def _read_input(self) -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(self.events_topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            events: list[dict[str, Any]] = []
            deadline = time.monotonic() + 60
            # to the end offsets (an empty fetch proves nothing: a busy broker may answer late)
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"could not read {self.events_topic} to its end in 60 s")
                found = await consumer.getmany(*tps, timeout_ms=500)
                events += [orjson.loads(r.value) for batch in found.values() for r in batch]
            return events
        finally:
            await consumer.stop()

    def input_diff(self) -> tuple[int, int]:
        """(acknowledged events not in the input topic, events it holds beyond those acknowledged)."""
        self.expected()
        held = Counter(orjson.dumps(e) for e in self._input or [])
        acknowledged = Counter(orjson.dumps(e) for e in self.produced)
        return sum((acknowledged - held).values()), sum((held - acknowledged).values())

    async def _read_totals(self) -> list[Record]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(self.totals_topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            records = []
            while True:
                found = await consumer.getmany(tp, timeout_ms=300)
                if not found.get(tp):
                    return [_record(r) for r in records]
                records.extend(found[tp])
        finally:
            await consumer.stop()

    def judge(self, verdict: Verdict, since: float, timeout_s: float = 90.0) -> None:
        """Close every window, wait for the results and judge them; recovery counts from `since` (monotonic)."""
        self.close_windows()
        got, _ = self.wait_for_results(timeout_s)
        verdict.recovery_s = round(time.monotonic() - since, 2)
        verdict.records_in, verdict.records_out = len(self._input or []), len(got)
        lost, written_twice = self.input_diff()
        if lost:
            verdict.problems.append(f"{lost} acknowledged events are not in the input topic")
        if written_twice:  # a producer's retry after a reset connection: counted twice, as the topic holds it
            verdict.notes["input_written_twice"] = written_twice
        verdict.problems += window_problems(self.expected(), got)

    def wait_for_results(self, timeout_s: float = 90.0) -> tuple[dict[tuple[str, int], tuple[int, int]], float]:
        """Until the results equal the expected ones (or `timeout_s`); return them and the time it took."""
        expected, started = self.expected(), time.monotonic()
        got: dict[tuple[str, int], tuple[int, int]] = {}
        while time.monotonic() - started < timeout_s:
            got = self.results()
            if got == expected:
                break
            time.sleep(0.5)
        return got, time.monotonic() - started


def peak_rss_kib(proc: subprocess.Popen[bytes]) -> int:
    """The process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc")


def stop_all(workers: list[subprocess.Popen[bytes]], verdict: Verdict, what: str = "the workers") -> None:
    """SIGTERM each worker and wait; a worker that does not exit 0 fails the run."""
    codes = [stop(w) for w in workers]
    if any(codes):
        verdict.problems.append(f"{what} exited with {codes}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def window_problems(expected: dict[Any, tuple[int, int]], got: dict[Any, tuple[int, int]]) -> list[str]:
    if got == expected:
        return []
    missing = sorted(expected.keys() - got.keys())[:3]
    wrong = [(k, expected[k], got[k]) for k in sorted(expected.keys() & got.keys()) if expected[k] != got[k]][:3]
    extra = sorted(got.keys() - expected.keys())[:3]
    return [f"windows differ from what was produced: missing {missing}, wrong (expected, got) {wrong}, extra {extra}"]


def _record(r: Any) -> Record:
    return Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers))
