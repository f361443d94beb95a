"""State and checkpoints: a task's RocksDB store, atomic journaled checkpoints, keyed state.

Owns `TaskStore` (one database per task, checkpoints cut at once and written in steps
under a journal), `KeyedState` (a write-back cache larger than memory) and the
`StateWriter` contract operators write their checkpoint deltas to. May import
`streamcore.base` only.
"""
