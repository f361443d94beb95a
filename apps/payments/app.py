"""Per-card spend and per-merchant load over card payments.

Input (topic ``payments``, 4 partitions), one JSON object per payment:

    {"card": "c42", "merchant": "m7", "amount": 12.5, "ts": 1700000000123}

* ``spend-per-card``: per card, 5 s tumbling windows: count, total, mean and
  largest amount, revised for events up to 5 s late, to ``card-spend``.
* ``merchant-load``: per merchant, 20 s windows sliding every 5 s: payments and
  total amount, to ``merchant-load``.

Events may be 2 s out of order; later ones go to the late output (``payments-late``)
once their windows have closed. Records that are not
JSON, lack a field, or carry a timestamp more than a minute in the future (a
terminal with a wrong clock) are dead-lettered (``payments-dlq``).

    streamcore run apps/payments/app.py
"""

from __future__ import annotations

from streamcore import App, Count, EventTime, Max, Mean, Sliding, Sum, Tumbling

app = App("payments", version="1")
payments = app.topic("payments", partitions=4)
card_spend = app.topic("card-spend")
merchant_load = app.topic("merchant-load")

event_time = EventTime("ts", max_out_of_orderness="2s", idle_timeout="10s", max_future_skew="1m")

(
    app.stream(payments, event_time=event_time, name="spend-per-card")
    .key_by("card")
    .window(Tumbling("5s"), allowed_lateness="5s")
    .aggregate(payments=Count(), total=Sum("amount"), mean=Mean("amount"), largest=Max("amount"))
    .to(card_spend)
)

(
    app.stream(payments, event_time=event_time, name="merchant-load")
    .key_by("merchant")
    .window(Sliding("20s", slide="5s"))
    .aggregate(payments=Count(), total=Sum("amount"))
    .to(merchant_load)
)
