"""Card transactions in real time: ordinary spending, fraud bursts, and the usual mess.

* Ordinary cards spend at a few home merchants, amounts around their own typical one.
* Now and then a card is compromised: for a few seconds it pays many merchants it never
  used, every few hundred ms, several times its usual amount. The generator remembers
  their ids (`fraud_tx`) so the demo can score the detector.
* Events arrive up to 1.5 s out of order; a terminal sometimes flushes two-minute-old
  transactions (late); terminal 3's clock jumps ten minutes ahead for a while (its
  events are quarantined); a few records are broken.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import orjson

SKEWED_TERMINAL = 3
SKEW_MS = 600_000


@dataclass
class Burst:
    card: str
    until_ms: int
    next_ms: int


@dataclass
class TransactionGenerator:
    seed: int = 7
    cards: int = 20_000
    merchants: int = 500
    fraud_every_s: float = 1.5
    rnd: random.Random = field(init=False)
    bursts: list[Burst] = field(default_factory=list)
    fraud_tx: set[str] = field(default_factory=set)
    _next_fraud_ms: int = 0
    _tx: int = 0

    def __post_init__(self) -> None:
        self.rnd = random.Random(self.seed)

    def _home(self, card: int) -> tuple[list[int], float]:
        rnd = random.Random(card)  # stable per card
        return [rnd.randrange(self.merchants) for _ in range(3)], round(rnd.uniform(15, 120), 2)

    def batch(self, now_ms: int, n: int, terminal: int, clock_skew_ms: int = 0) -> list[bytes]:
        """`n` ordinary transactions seen by `terminal` at `now_ms`, plus any fraud due.

        `clock_skew_ms` is how far the terminal's clock is off (it stamps event times).
        """
        rnd = self.rnd
        out = []
        for _ in range(n):
            card = rnd.randrange(self.cards)
            merchants, typical = self._home(card)
            ts = now_ms + clock_skew_ms - rnd.randrange(1_500)
            out.append(
                self._tx_json(
                    f"c{card}", f"m{rnd.choice(merchants)}", round(typical * rnd.uniform(0.5, 1.6), 2), ts, fraud=False
                )
            )
        if terminal == 0:
            out.extend(self._fraud(now_ms))
        roll = rnd.random()
        if roll < 0.02:  # a terminal flushes transactions from two minutes ago
            out.append(self._tx_json("c1", "m1", 12.0, now_ms - 120_000, fraud=False))
        elif roll < 0.03:
            out.append(
                rnd.choice(
                    [
                        b'{"tx": "broken", "card": ',
                        b'{"tx":"t","card":"c1","amount":"lots","ts":1}',
                        b'{"tx":"t","merchant":"m1","amount":1,"ts":1}',
                    ]
                )
            )
        return out

    def _fraud(self, now_ms: int) -> list[bytes]:
        rnd = self.rnd
        if now_ms >= self._next_fraud_ms:
            card = f"c{rnd.randrange(self.cards)}"
            self.bursts.append(Burst(card, now_ms + rnd.randrange(4_000, 8_000), now_ms))
            self._next_fraud_ms = now_ms + int(self.fraud_every_s * 1000)
        out = []
        for burst in list(self.bursts):
            if now_ms >= burst.until_ms:
                self.bursts.remove(burst)
                continue
            if now_ms >= burst.next_ms:
                _, typical = self._home(int(burst.card[1:]))
                amount = round(typical * rnd.uniform(3, 8), 2)
                out.append(self._tx_json(burst.card, f"m{rnd.randrange(self.merchants)}", amount, now_ms, fraud=True))
                burst.next_ms = now_ms + rnd.randrange(150, 400)
        return out

    def _tx_json(self, card: str, merchant: str, amount: float, ts: int, *, fraud: bool) -> bytes:
        self._tx += 1
        tx = f"t{self._tx}"
        if fraud:
            self.fraud_tx.add(tx)
        return orjson.dumps({"tx": tx, "card": card, "merchant": merchant, "amount": amount, "ts": ts})
