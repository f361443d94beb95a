"""Send generated card transactions to Kafka, keyed by card (so a card's features live in one partition).

python -m streamcore.apps.fraud.produce_kafka --broker kafka://127.0.0.1:9092 --count 20000
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson
from aiokafka import AIOKafkaProducer
from streamcore.apps.fraud.generate import TransactionGenerator


async def produce(bootstrap: str, count: int, topic: str = "transactions") -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent = 0
    try:
        generator = TransactionGenerator(seed=1)
        while sent < count:
            now = time.time_ns() // 1_000_000
            for raw in generator.batch(now, min(500, count - sent), sent % 4):
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default="kafka://127.0.0.1:9092")
    ap.add_argument("--count", type=int, default=20_000)
    args = ap.parse_args()
    print(f"sent {asyncio.run(produce(args.broker.removeprefix('kafka://'), args.count))} transactions")


if __name__ == "__main__":
    main()
