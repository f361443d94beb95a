"""HTTP serving on the worker's loop: features, scores, snapshots, health and metrics.

Owns `http` (the aiohttp server, its hardening, forwarding between Kafka workers). It
reads the worker through the `ServedWorker` protocol, so it may import `base` and
`online` and never the runtime that starts it.
"""
