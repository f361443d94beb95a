"""Online state and models: feature views that co-located scoring reads, snapshots, models.

Owns `views` (entity stores of feature views, coherent reads, pinned snapshots, the
freshness of every read) and `models` (registered models, their fallbacks and time
limits). May import `streamcore.base` and `streamcore.state`.
"""
