"""The event-time contract's conformance kit, shipped with the project: ``python -m chaos tck``.

* `reference` — the reference model of ``SEMANTICS.md`` (with `records`, `aggregates`,
  `settings`: the decode, number and setting-range rules);
* `named` and `generator` — hand-shaped cases at the contract's edges, and random ones;
  ``cases/`` holds them with their expectations;
* `harness` and `compare` — run cases against an adapter and judge its outputs;
* `streamcore_adapter` — streamcore's public API as the adapter, around its own window
  operator or one of yours.
"""
