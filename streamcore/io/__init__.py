"""I/O: the broker interface and its two implementations, the embedded log and Kafka.

Owns `transport` (the `Broker`, `Source` and `Sink` protocols the runtime reads and
writes through), `log` (the embedded, partitioned, append-only log on disk),
`embedded` (that log as a broker), `kafka` (aiokafka as a broker, and the changelog
that replicates a task's state) and `owners` (which worker owns which partition).
May import `streamcore.base` and `streamcore.state` (a changelog restores a store).
"""
