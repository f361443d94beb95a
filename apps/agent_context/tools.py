"""Tools for an agent, all reading one pinned snapshot, so one plan sees one context.

An agent that answers "can this customer get a refund?" calls several tools, each a
moment apart, while the customer's events keep arriving. If each call read the live
state, the context tool might see two open tickets and the eligibility tool three, and
the plan would rest on two different moments. A `PlanContext` pins a snapshot when the
plan starts; every tool reads through it, and `position` says which input it reflects.

Over HTTP the same: ``POST /snapshots`` → id; then ``GET /features/{customer}?snapshot=id``
and ``POST /score/churn_risk {"entity": ..., "snapshot": id}``.
"""

from __future__ import annotations

from typing import Any

from streamcore.online.models import Model
from streamcore.online.views import OnlineState


class PlanContext:
    """One agent plan: a pinned snapshot and the tools that read it."""

    def __init__(self, online: OnlineState, model: Model, *, ttl_ms: int = 60_000) -> None:
        self.online = online
        self.model = model
        self.snapshot = online.pin(ttl_ms)

    def __enter__(self) -> PlanContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.online.release(self.snapshot.id)

    def _features(self, customer: str) -> dict[str, Any]:
        return self.online.read("customer", customer, self.snapshot.id).values()

    @property
    def position(self) -> dict[str, dict[int, int]]:
        return {stream: dict(parts) for stream, parts in self.snapshot.positions.items()}

    def customer_context(self, customer: str) -> dict[str, Any]:
        """What the agent should know about the customer right now (as of the plan)."""
        f = self._features(customer)
        return {
            "customer": customer,
            "plan": f["plan"],
            "orders_30d": f["orders_30d"],
            "spend_30d": round(f["spend_30d"], 2),
            "tickets_7d": f["tickets_7d"],
            "last_ticket_topic": f["last_ticket_topic"],
            "last_event": f["last_event"],
        }

    def risk_score(self, customer: str) -> dict[str, Any]:
        """The churn-risk model, scored from the plan's snapshot."""
        score = self.model.score(self.model.inputs(self._features(customer)))
        return {"customer": customer, "churn_risk": score.value, "fallback": score.reason}

    def eligibility(self, customer: str) -> dict[str, Any]:
        """Whether a goodwill refund is allowed, and why."""
        f = self._features(customer)
        risk = self.risk_score(customer)["churn_risk"]
        reasons = []
        if f["failed_payments_7d"] >= 2:
            reasons.append("2+ failed payments this week")
        if f["orders_30d"] == 0:
            reasons.append("no orders in 30 days")
        return {
            "customer": customer,
            "eligible": not reasons and risk >= 0.3,
            "churn_risk": risk,
            "reasons": reasons or (["low churn risk"] if risk < 0.3 else []),
        }
