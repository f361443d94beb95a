"""Example applications built on streamcore and its operators: payments, fraud, agent context.

Installed as `streamcore.apps`; each may import anything, as a user's app would (most
import the facade, ``from streamcore import App, Tumbling, Count``).
"""
