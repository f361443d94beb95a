"""The ``streamcore`` command line."""
