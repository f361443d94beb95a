"""The ``streamcore`` command line: run and worker, demo, the embedded log's tools, dead letters.

The top of the runtime: it may import every layer (it starts a `Runner`); the bundled
demos are imported by name (`streamcore.apps`), not by an import statement.
"""
