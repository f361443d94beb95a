"""Send generated card transactions to Kafka, keyed by card (so a card's features live in one partition).

python -m streamcore.apps.fraud.produce_kafka --broker kafka://127.0.0.1:9092 --count 20000
python -m streamcore.apps.fraud.produce_kafka --broker kafka://kafka:9092 --count 0 --rate 500   # until stopped

With ``--rate`` the transactions are sent in real time, that many a second (in batches
every 100 ms), as payment terminals would; without it as fast as the broker takes them.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson
from aiokafka import AIOKafkaProducer
from streamcore.apps.fraud.generate import TransactionGenerator


async def produce(bootstrap: str, count: int, topic: str = "transactions", rate: float = 0.0) -> int:
    """Send `count` transactions (0: until cancelled), at `rate` a second (0: as fast as it can)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        generator = TransactionGenerator(seed=1)
        while count == 0 or sent < count:
            if rate:
                await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
            now = time.time_ns() // 1_000_000
            size = max(1, int(rate / 10)) if rate else 500
            for raw in generator.batch(now, size if count == 0 else min(size, count - sent), sent % 4):
                try:
                    key = str(orjson.loads(raw)["card"]).encode()
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    key = None  # the generator's deliberately broken records: dead-lettered downstream
                await producer.send(topic, raw, key=key, timestamp_ms=now)
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default="kafka://127.0.0.1:9092")
    ap.add_argument("--count", type=int, default=20_000, help="transactions to send (0: until stopped)")
    ap.add_argument("--rate", type=float, default=0.0, help="transactions a second (0: as fast as possible)")
    return ap


def main() -> None:
    args = build_parser().parse_args()
    bootstrap = args.broker.removeprefix("kafka://")
    print(f"sent {asyncio.run(produce(bootstrap, args.count, rate=args.rate))} transactions")


if __name__ == "__main__":
    main()
