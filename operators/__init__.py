"""Operators built on streamcore's operator interface: windows, aggregations and feature views.

    from streamcore.operators import Tumbling, Sliding, Session, Count, Sum, Min, Max, Mean, Aggregate

(the common ones are also in ``streamcore`` itself). Installed as `streamcore.operators`
from the repository's ``operators/`` folder. It implements `streamcore.dataflow.operator`
and may import every layer up to `streamcore.runtime`'s inputs (`base`, `state`,
`online`, `dataflow`), never the runtime, which never imports it.
"""

from .aggregations import Aggregate, Aggregation, Count, CountDistinct, Max, Mean, Min, Sum
from .features import FeatureView, Latest, Rolling
from .windows import Session, Sliding, Tumbling, window_from_dict

__all__ = [
    "Aggregate",
    "Aggregation",
    "Count",
    "CountDistinct",
    "FeatureView",
    "Latest",
    "Max",
    "Mean",
    "Min",
    "Rolling",
    "Session",
    "Sliding",
    "Sum",
    "Tumbling",
    "window_from_dict",
]
