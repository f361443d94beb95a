"""The fraud model: a small logistic regression, shaped like a scikit-learn classifier.

It reads, for the card of a transaction, how many transactions and distinct merchants it
had in the last 1 and 5 minutes, and how this amount compares with the card's average
over the last hour. The weights are set by hand for the demo's traffic (a real app
would load a trained estimator; anything with ``predict_proba`` works the same way).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FEATURES = ("txn_1m", "merchants_1m", "txn_5m", "merchants_5m", "amount", "avg_amount_60m")


class FraudModel:
    """P(fraud) from card velocity and spend, for rows in the order of `FEATURES`."""

    intercept = -7.0
    weights = {"txn_1m": 0.25, "merchants_1m": 0.9, "txn_5m": 0.02, "merchants_5m": 0.15, "spend_ratio": 0.8}

    def predict_proba(self, rows: Sequence[Sequence[float]]) -> list[list[float]]:
        out = []
        for txn_1m, merchants_1m, txn_5m, merchants_5m, amount, avg_60m in rows:
            spend_ratio = min(8.0, amount / avg_60m) if avg_60m else 1.0
            w = self.weights
            z = (
                self.intercept
                + w["txn_1m"] * txn_1m
                + w["merchants_1m"] * merchants_1m
                + w["txn_5m"] * txn_5m
                + w["merchants_5m"] * merchants_5m
                + w["spend_ratio"] * spend_ratio
            )
            p = 1 / (1 + math.exp(-z))
            out.append([1 - p, p])
        return out
