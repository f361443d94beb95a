"""The live status page of a two-worker Kafka run, in a real browser (headless Chromium).

Each worker's page shows its own tasks (one per partition it owns) and which worker owns
every partition, with a link to the other worker's page.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import pytest
from browser import open_page

from streamcore.testing import free_port
from tests.integration.conftest import Worker, create_topic, produce, run, window_events

pytestmark = pytest.mark.integration


async def _dom_once_owners_are_known(url: str, shot: Path) -> str:
    async with open_page(url) as page:
        for _ in range(200):
            if int(await page.evaluate("document.querySelectorAll('[data-owner]').length")) == 4:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # a poll more: rates
        png = await page.screenshot()
        await asyncio.to_thread(shot.write_bytes, png)
        return await page.dom()


def test_each_workers_page_shows_its_tasks_and_who_owns_every_partition(kafka: str, tmp_path: Path) -> None:
    name = f"s{uuid.uuid4().hex[:8]}"
    run(create_topic(kafka, f"{name}-events", 4))
    run(create_topic(kafka, f"{name}-totals", 1))
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    workers = [Worker(kafka, name, tmp_path / f"w{i}", http_port=port) for i, port in enumerate(ports)]
    try:
        time.sleep(3)
        run(produce(kafka, f"{name}-events", window_events(keys=16, per_key=5)))
        shots = [tmp_path / f"w{i}.png" for i in range(2)]
        doms = [asyncio.run(_dom_once_owners_are_known(f"{url}/", shot)) for url, shot in zip(urls, shots, strict=True)]
    finally:
        for w in workers:
            w.stop()
    owned: dict[str, set[str]] = {url: set() for url in urls}
    for i, dom in enumerate(doms):
        me, other = urls[i], urls[1 - i]
        assert f'<h1 id="app">{name}</h1>' in dom
        rows = re.findall(r'<tr data-owner="([^"]+)"><td>[^<]*</td><td>(.*?)</td>', dom)
        assert len(rows) == 4, rows
        for partition, served_by in rows:
            if "(this worker)" in served_by:
                assert me in served_by
                owned[me].add(partition)
            else:
                assert f'<a href="{other}/">{other}</a>' == served_by  # a link to the other worker's page
        tasks = re.findall(r'<tr data-task="([^"]+)">', dom)
        assert sorted(tasks) == sorted(f"totals/p{p.rsplit('/', 1)[1]}" for p in owned[me])  # its own tasks only
    assert owned[urls[0]].isdisjoint(owned[urls[1]]) and len(owned[urls[0]] | owned[urls[1]]) == 4
