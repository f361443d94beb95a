"""Window operators on the compiled kernels (`_window_kernels`), where they apply.

The kernels keep the windows of built-in aggregations (`Count`, `Sum`, `Min`, `Max`,
`Mean`) in C arrays and read records straight from their JSON bytes; `FixedWindows`
and `SessionWindows` stay the references. A kernel applies when it was built (and
``STREAMCORE_PURE_PYTHON`` does not ask for the references), every aggregation is
built-in, and there are at most `MAX_AGGREGATIONS` (eight) of them; otherwise the
functions here return None and the reference runs. A kernel hands its state to its
reference the moment a value leaves what C holds exactly (an integer beyond 64 bits),
so results never depend on the path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamcore.base import kernels
from streamcore.base.codec import decode_state, encode_state
from streamcore.dataflow.operator import Operator, OperatorContext, admit_any

from .aggregations import Count, Max, Mean, Min, Sum
from .fixed_windows import FixedWindows
from .fused import fuse
from .session_windows import SessionWindows
from .window_base import WindowBase, WindowShape

_kernel: Any = kernels.load("streamcore.operators._window_kernels", "windows")
COMPILED = _kernel is not None

_KINDS = {Count: 0, Sum: 1, Min: 2, Max: 3, Mean: 4}


def compiled_fixed_windows(spec: WindowShape, context: OperatorContext) -> Operator | None:
    """The compiled tumbling or sliding operator for `spec`, or None where the reference must run."""
    common = _kernel_settings(spec, context, lambda: FixedWindows(spec, context))
    if common is None:
        return None
    operator: Operator = _kernel.FixedKernel(size=spec.size, slide=spec.slide, **common)
    return operator


def compiled_session_windows(spec: WindowShape, context: OperatorContext) -> Operator | None:
    """The compiled session operator for `spec`, or None where the reference must run."""
    common = _kernel_settings(spec, context, lambda: SessionWindows(spec, context))
    if common is None:
        return None
    operator: Operator = _kernel.SessionKernel(gap=spec.gap, **common)
    return operator


def _kernel_settings(
    spec: WindowShape, context: OperatorContext, make_reference: Callable[[], WindowBase]
) -> dict[str, Any] | None:
    """What every kernel is built with, or None if the kernel does not apply to `spec`."""
    if _kernel is None:
        return None
    names, aggs = tuple(spec.aggregations), tuple(spec.aggregations.values())
    fused = fuse(names, aggs)
    if fused is None or len(aggs) > _kernel.MAX_AGGREGATIONS:
        return None
    fields: tuple[str, ...] = fused.namespace["FIELDS"]  # fewer than the aggregations, or as many
    return {
        "lateness": spec.allowed_lateness_ms,
        "kinds": [_KINDS[type(agg)] for agg in aggs],
        "field_of": [-1 if agg.field is None else fields.index(agg.field) for agg in aggs],
        "fields": fields,
        "emit": context.emit,
        "results": fused.results,
        "extract": fused.extract,
        "admit": context.admit,
        "check_future": context.admit is not admit_any,
        "encode_key": WindowBase.encode_key,
        "decode_key": WindowBase.decode_key,
        "encode_state": encode_state,
        "decode_state": decode_state,
        "make_reference": make_reference,
    }
