"""Customer context for an AI agent: live features of each customer, and a churn-risk model.

Input (topic ``customer-events``): orders, payments and support tickets, e.g.

    {"customer": "u7", "type": "order", "amount": 42.0, "ts": 1700000000000}
    {"customer": "u7", "type": "payment_failed", "ts": ...}
    {"customer": "u7", "type": "ticket", "topic": "refund", "ts": ...}
    {"customer": "u7", "type": "plan", "plan": "pro", "ts": ...}

The stream keeps view ``customer`` current; `tools.py` gives an agent functions that
read it through one pinned snapshot per plan.
"""

from __future__ import annotations

from typing import Any

from streamcore import App, Count, EventTime, FeatureView, Latest, Rolling, Sum

app = App("agent_context", version="1")
events = app.topic("customer-events", partitions=2, key="customer")

customer = FeatureView(
    "customer",
    entity="customer",
    features={
        "events_30d": Rolling(Count(), over="30d", pane="1d"),
        "orders_30d": Rolling(Sum("is_order"), over="30d", pane="1d"),
        "spend_30d": Rolling(Sum("order_amount"), over="30d", pane="1d"),
        "tickets_7d": Rolling(Sum("is_ticket"), over="7d", pane="12h"),
        "failed_payments_7d": Rolling(Sum("is_failed_payment"), over="7d", pane="12h"),
        "last_event": Latest("type"),
        "plan": Latest("plan", required=False),
        "last_ticket_topic": Latest("topic", required=False),
    },
    description="A customer's context: orders, spend, support tickets and failed payments, plan and last event",
)


def churn_risk(f: dict[str, Any]) -> float:
    """A readable stand-in for a trained model: support trouble and failed payments raise risk."""
    risk = 0.1 + 0.15 * min(f["tickets_7d"], 4) + 0.2 * min(f["failed_payments_7d"], 2)
    return round(min(0.99, float(risk - 0.05 * min(f["orders_30d"], 4))), 3)


app.model(
    "churn_risk",
    churn_risk,
    view="customer",
    features=["tickets_7d", "failed_payments_7d", "orders_30d"],
    fallback=0.5,
    timeout_ms=20,
    description="How likely a customer is to leave (0..1), from support trouble, failed payments and orders",
)


def normalize(event: dict[str, Any]) -> dict[str, Any]:
    """One numeric field per event type, so rolling sums count each type."""
    kind = event.get("type")
    event["is_order"] = int(kind == "order")
    event["order_amount"] = event.get("amount", 0) if kind == "order" else 0
    event["is_ticket"] = int(kind == "ticket")
    event["is_failed_payment"] = int(kind == "payment_failed")
    return event


(
    app.stream(events, event_time=EventTime("ts", max_out_of_orderness="5s"))
    .map(normalize)
    .key_by("customer")
    .features(customer)
    .discard()
)
