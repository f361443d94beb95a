"""``slow-sink``: the workers' sink stops for a while under a large backlog; memory must stay bounded.

The app's results go to a sink that waits while a file exists. With the sink stopped,
the producer sends `BACKLOG` events (about 5 MB of JSON) as fast as the broker takes
them; the workers must pause their sources (backpressure) instead of buffering the
backlog. Then the sink resumes. It passes when each worker's peak RSS stayed under
`RSS_BOUND_MIB`, the final windows equal what was produced, and both stop cleanly; the
recovery time is from the sink's resumption until every window is right.
"""

from __future__ import annotations

import time

from chaos.kafka_workload import KafkaRun, peak_rss_kib, stop_all
from chaos.suite import Context, Verdict, scenario

RSS_BOUND_MIB = 250
STALL_S = 6.0


@scenario("slow-sink", "stall the sink under a large backlog: backpressure, memory bounded", ("kafka",))
def slow_sink(context: Context, verdict: Verdict) -> None:
    stall = context.workdir / "stall"
    stall.touch()
    run = KafkaRun(context.broker.removeprefix("kafka://"), context.workdir, stall_file=stall)
    workers = [run.worker("w0"), run.worker("w1")]
    try:
        time.sleep(3)  # both joined
        backlog = max(20_000, context.events // 5)
        run.produce(backlog, 0.0)
        time.sleep(STALL_S)
        stall.unlink()
        resumed = time.monotonic()
        run.judge(verdict, since=resumed, timeout_s=120)
        verdict.peak_rss_kib = max(peak_rss_kib(w) for w in workers)
        if verdict.peak_rss_kib > RSS_BOUND_MIB * 1024:
            verdict.problems.append(
                f"peak RSS {verdict.peak_rss_kib // 1024} MiB is over the {RSS_BOUND_MIB} MiB bound"
            )
    finally:
        stall.unlink(missing_ok=True)
        stop_all(workers, verdict)
