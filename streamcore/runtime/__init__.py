"""The runtime: tasks that run pipelines over partitions, and the runner that drives them.

Owns `task` (the hot loop of one pipeline: decode, validate, apply, fire, dead-letter),
`nodes` (the stateless steps), `repartition` (the shuffle between two stages on
Kafka), `runner` (the loop, publishing, checkpoints, signals, Kafka assignment),
`settings`, `metrics` and `gc_pacer`. May import every layer below it (`base`,
`eventtime`, `state`, `io`, `online`, `dataflow`, `serving`), never `streamcore.operators`.
"""
