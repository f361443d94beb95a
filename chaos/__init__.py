"""Chaos tools: real processes, killed for real."""
