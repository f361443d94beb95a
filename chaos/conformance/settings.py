"""The contract's setting ranges: a job outside them is refused when it is built.

Sizes, slides and gaps are integers of ms in ``[1, 2^40]``; out-of-orderness, lateness
and future skew in ``[0, 2^40]``; an idle timeout in ``[1, 2^40]``; a sliding window's
size is a multiple of its slide; no output is named ``key``, ``start`` or ``end`` (a result's own fields).
`Refused` names the setting, as an engine's error must.
"""

from __future__ import annotations

from typing import Any

MAX_MS = 2**40
RESERVED_OUTPUTS = ("key", "start", "end")


class Refused(ValueError):
    """The job is outside the contract; `setting` is the name an engine's error must contain."""

    def __init__(self, setting: str, why: str) -> None:
        super().__init__(f"{setting}: {why}")
        self.setting = setting


def _in_range(setting: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_MS:
        raise Refused(setting, f"{value!r} is not an integer of ms in [{low}, 2^40]")


def check_job(job: dict[str, Any]) -> None:
    """Raise `Refused` for a job outside the contract's ranges."""
    window = job["window"]
    for name in ("size_ms", "slide_ms", "gap_ms"):
        if name in window:
            _in_range(name.removesuffix("_ms"), window[name], 1)
    if window["type"] == "sliding" and window["size_ms"] % window["slide_ms"]:
        raise Refused("slide", f"size {window['size_ms']} is not a multiple of slide {window['slide_ms']}")
    for name in ("max_out_of_orderness_ms", "allowed_lateness_ms"):
        _in_range(name.removesuffix("_ms"), job[name], 0)
    if job.get("max_future_skew_ms") is not None:
        _in_range("max_future_skew", job["max_future_skew_ms"], 0)
    if job.get("idle_timeout_ms") is not None:
        _in_range("idle_timeout", job["idle_timeout_ms"], 1)
    clash = sorted(set(job["aggs"]) & set(RESERVED_OUTPUTS))
    if clash:
        raise Refused(clash[0], "an output may not be named like a result's key or window bound")
