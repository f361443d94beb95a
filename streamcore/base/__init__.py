"""The base layer: records, errors, durations, clocks, JSON codecs and dead-letter envelopes.

Owns the vocabulary every other layer speaks. It imports nothing from streamcore, so
anything may import it.
"""
