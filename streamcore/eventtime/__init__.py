"""The event-time core: where timestamps come from and the watermark of a set of partitions.

Owns `EventTime` (the settings) and `WatermarkTracker` (per-partition watermarks,
idleness, the monotonic combined watermark). May import `streamcore.base` only.
"""
