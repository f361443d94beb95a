"""The live status page, in a real browser: headless Chromium against the fraud app while it runs.

The two-worker Kafka page (owners, links to the other worker) is in
``tests/integration/test_kafka.py``. With ``STREAMCORE_SCREENSHOT=docs/status-page.png``
this test also writes the README's screenshot.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import urllib.request
from pathlib import Path

import orjson
from browser import open_page
from live import live_worker, stop_worker

from streamcore.io.log import EmbeddedLog, TopicConfig

ROOT = Path(__file__).parents[2]


def _terminals(log_dir: Path, stop: threading.Event, per_tick: int = 40) -> None:
    """Four terminals appending fraud-app transactions in real time (every 100 ms) until `stop`."""
    from streamcore.apps.fraud.generate import TransactionGenerator

    generator = TransactionGenerator(seed=11, cards=500)
    log = EmbeddedLog(log_dir)
    log.create_topic(TopicConfig("transactions", 4))
    try:
        while not stop.is_set():
            now = int(time.time() * 1000)
            for p in range(4):
                batch = generator.batch(now, per_tick, p)
                log.producer("transactions").send_many(batch, [now] * len(batch), partition=p)
            stop.wait(0.1)
    finally:
        log.close()


async def _page(url: str, shot: Path) -> str:
    """The page's DOM after three polls at least, in real time; a screenshot of it goes to `shot`."""
    async with open_page(url) as page:
        for _ in range(100):
            if int(await page.evaluate("document.body.dataset.polls || 0")) >= 3:
                break
            await asyncio.sleep(0.1)
        png = await page.screenshot()
        await asyncio.to_thread(shot.write_bytes, png)
        return await page.dom()


def _cells(dom: str, attribute: str, name: str) -> list[str]:
    """The text of each cell of the row whose `attribute` is `name`."""
    row = re.search(rf'<tr {attribute}="{re.escape(name)}">(.*?)</tr>', dom, re.S)
    assert row is not None, f"no row {attribute}={name!r} in the page"
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]


def test_the_status_page_shows_the_running_fraud_app(tmp_path: Path) -> None:
    stop = threading.Event()
    terminals = threading.Thread(target=_terminals, args=(tmp_path / "log", stop), daemon=True)
    terminals.start()
    time.sleep(0.5)  # the topic exists before the worker starts
    proc, url = live_worker(str(ROOT / "apps" / "fraud" / "app.py"), tmp_path, "--checkpoint-interval-ms", "500")
    try:
        time.sleep(2)
        shot = Path(os.environ.get("STREAMCORE_SCREENSHOT") or tmp_path / "status.png")
        dom = asyncio.run(_page(f"{url}/", shot))
        with urllib.request.urlopen(f"{url}/status") as answer:
            document = orjson.loads(answer.read())
    finally:
        stop.set()
        stop_worker(proc)
        terminals.join(10)

    assert '<h1 id="app">fraud</h1>' in dom and "ready" in dom
    assert int(re.search(r'data-polls="(\d+)"', dom).group(1)) >= 2  # it polled and re-rendered
    graph = re.findall(r'<span class="node[^"]*">([^<]*)</span>', dom)
    assert graph == [
        "topic transactions", "key_by('card')", "features card", "score(fraud → score)", "map(decide)",
        "features card_decisions", "topic decisions",
    ]  # fmt: skip
    task, positions, _, watermark_lag, rate_in, *_ = _cells(dom, "data-task", "transactions")
    assert task == "transactions" and re.fullmatch(r"0 @ [\d,]+, 1 @ [\d,]+, 2 @ [\d,]+, 3 @ [\d,]+", positions)
    assert re.fullmatch(r"[\d.]+ (ms|s)", watermark_lag) and float(rate_in.replace(",", "")) > 0
    checkpoint = _cells(dom, "data-task", "transactions")[9]
    assert re.fullmatch(r"[\d.]+ (ms|s) ago, [\d.]+ ms, [\d.]+ (B|KiB|MiB)", checkpoint), checkpoint
    for view in ("card", "card_decisions"):
        card = re.search(rf'data-view="{view}">(.*?)</svg>', dom, re.S)
        assert card is not None and re.search(r"p99 ≤ [\d.]+ (ms|s) · [\d,]+ samples", card.group(1)), view
        assert card.group(1).count("<rect") == 16  # one bar per bucket, +Inf too
    model = _cells(dom, "data-model", "fraud")
    assert model[:2] == ["fraud", "card"] and int(model[2].replace(",", "")) > 0 and model[6] == "none"
    assert "0 pinned" in dom and "one worker serves every partition" in dom

    (task_document,) = document["tasks"]
    assert task_document["records_in"] == sum(task_document["positions"].values())  # every record read is counted
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
