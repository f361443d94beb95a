"""The dataflow a user describes: apps, topics, streams, and the operator interface.

Owns `app` (`App`: topics, streams, models), `stream` (the fluent builder that turns
``app.stream(...).key_by(...).window(...).aggregate(...).to(...)`` into a `Pipeline`)
and `operator` (the protocols a stateful operator implements; `streamcore.operators`
implements them). It describes, it does not run. May import `base`, `eventtime`,
`state`, `io.transport` (topic specs) and `online` (for the types of the operator
context).
"""
