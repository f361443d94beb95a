"""Card fraud detection with features computed in the stream and a model scored in-process.

Input (topic ``transactions``, 4 partitions), one JSON object per card transaction:

    {"tx": "t81", "card": "c42", "merchant": "m7", "amount": 42.5, "ts": 1700000000123}

For each transaction, in this order and before the next one:

1. the card's features are updated (view ``card``): transactions and distinct merchants
   over the last 1, 5 and 60 minutes, average amount over the last hour, latest amount;
2. the fraud model scores the card from exactly those features;
3. rules and score make a decision (approve / review / decline, with reasons);
4. the decision goes to the ``decisions`` topic and into the online state (view
   ``card_decisions``: latest decision and score, declines in the last hour).

    streamcore run apps/fraud/app.py --http 127.0.0.1:8080
    curl -s localhost:8080/features/c42
    curl -s -X POST localhost:8080/score/fraud -d '{"entity": "c42"}'
"""

from __future__ import annotations

from typing import Any

from streamcore.apps.fraud.model import FEATURES, FraudModel

from streamcore import App, Count, CountDistinct, EventTime, FeatureView, Latest, Mean, Rolling, Sum

app = App("fraud", version="1")
transactions = app.topic("transactions", partitions=4, key="card")
decisions = app.topic("decisions")

card = FeatureView(
    "card",
    entity="card",
    features={
        "txn_1m": Rolling(Count(), over="1m", pane="5s"),
        "txn_5m": Rolling(Count(), over="5m", pane="30s"),
        "txn_60m": Rolling(Count(), over="60m", pane="5m"),
        "merchants_1m": Rolling(CountDistinct("merchant"), over="1m", pane="5s"),
        "merchants_5m": Rolling(CountDistinct("merchant"), over="5m", pane="30s"),
        "merchants_60m": Rolling(CountDistinct("merchant"), over="60m", pane="5m"),
        "avg_amount_60m": Rolling(Mean("amount"), over="60m", pane="5m"),
        "amount": Latest("amount"),
    },
    description="A card's spending velocity: transactions and distinct merchants over the last 1, 5 and "
    "60 minutes, its hourly average amount and its latest amount",
)

card_decisions = FeatureView(
    "card_decisions",
    entity="card",
    features={
        "last_decision": Latest("decision"),
        "last_score": Latest("score"),
        "declines_60m": Rolling(Sum("declined"), over="60m", pane="5m"),
    },
    description="The fraud decisions about a card: the latest decision and score, declines in the last hour",
)

app.model(
    "fraud",
    FraudModel(),
    view="card",
    features=FEATURES,
    fallback=0.5,
    timeout_ms=20,
    description="The probability that a card's latest transaction is fraud (0..1; 0.9 and above declines)",
)


def decide(tx: dict[str, Any]) -> dict[str, Any]:
    """Combine the model's score with rules a fraud analyst can read."""
    f, score = tx["features"], tx["score"]
    reasons = []
    if f["merchants_1m"] >= 6:
        reasons.append("6+ merchants in a minute")
    if f["txn_1m"] >= 12:
        reasons.append("12+ transactions in a minute")
    if f["avg_amount_60m"] and tx["amount"] >= 4 * f["avg_amount_60m"]:
        reasons.append("amount 4x the card's hourly average")
    if score >= 0.9 or len(reasons) >= 2:
        decision = "decline"
    elif score >= 0.6 or reasons:
        decision = "review"
    else:
        decision = "approve"
    return {
        "tx": tx["tx"],
        "card": tx["card"],
        "merchant": tx["merchant"],
        "amount": tx["amount"],
        "ts": tx["ts"],
        "score": round(score, 4),
        "decision": decision,
        "declined": int(decision == "decline"),
        "reasons": reasons,
        "model_fallback": tx.get("score_fallback"),
    }


(
    app.stream(
        transactions, event_time=EventTime("ts", max_out_of_orderness="2s", idle_timeout="10s", max_future_skew="1m")
    )
    .key_by("card")
    .features(card)
    .score("fraud", features_into="features")
    .map(decide)
    .features(card_decisions)
    .to(decisions)
)
