"""Example applications built on streamcore and its operators."""
