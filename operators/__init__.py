"""Operators built on streamcore's operator interface: windows and aggregations.

from operators import Tumbling, Sliding, Session, Count, Sum, Min, Max, Mean, Aggregate
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
