# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled twin of `features.FeatureOperator`: a view's per-event update and its reads.

`FeatureKernel.process` does what the reference's `process` does for an event whose
fields are plain: read and check every feature's value, admit the event, add it to the
panes of every rolling feature and to every latest one, store the entity and send the
event on. `compute` is the reference's `compute`. Both work on the reference's own state
layout (per feature a list of ``[pane start, accumulator]``, or ``[event time, value]``),
in place and with the same Python values, so a checkpoint, a snapshot copy or a restore
cannot tell which path wrote an entity, and the two paths can take turns on one state:

* an event the kernel does not read itself (not a dict, a missing or mistyped field, a
  value a built-in aggregation refuses) goes to the reference's `process` whole, which
  applies it or raises the error the contract names; nothing was changed before that;
* a read at a reference time that is not an integer (no event applied yet) is the
  reference's `compute`.

``tests/unit/test_compiled_features.py`` drives both with the same random events.
"""

from cpython.dict cimport PyDict_GetItem
from cpython.number cimport PyNumber_Add
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_Insert, PyList_New, PyList_SET_ITEM
from cpython.object cimport PyObject, PyObject_RichCompareBool
from cpython.ref cimport Py_INCREF
from cpython.set cimport PySet_Add, PySet_GET_SIZE
from libc.math cimport isfinite
from libc.stdint cimport int64_t

cdef extern from "Python.h":
    int Py_EQ

DEF MAX_FEATURES = 64

cdef enum Kind:
    COUNT = 0
    SUM = 1
    MIN = 2
    MAX = 3
    MEAN = 4
    DISTINCT = 5
    LATEST = 6

KINDS = {"count": COUNT, "sum": SUM, "min": MIN, "max": MAX, "mean": MEAN, "count_distinct": DISTINCT, "latest": LATEST}
"""The feature kinds by name (`compiled_features` maps each plan to one)."""
MAX_FEATURE_COUNT = MAX_FEATURES
"""Features a kernel holds; a view with more runs on the reference."""
MAX_SPAN_MS = 1 << 60
"""Largest `over` the kernel's int64 arithmetic holds for event times up to 2^62."""

cdef object _NEG_INF = float("-inf")


cdef inline int64_t _start_of(object pair):
    """A pane's start: the first item of its ``[start, accumulator]``."""
    return <int64_t>(<object>PyList_GET_ITEM(pair, 0))


cdef inline bint _is_number(object value):
    """What a built-in numeric aggregation accepts: an int (not a bool) or a finite float."""
    cdef type kind = type(value)
    return kind is int or (kind is float and isfinite(<double>value))


cdef inline bint _same_distinct(object a, object b) except -1:
    """`aggregations._same`: equal values, where a bool and a number are never the same."""
    if (type(a) is bool) != (type(b) is bool):
        return False
    return PyObject_RichCompareBool(a, b, Py_EQ)


cdef class FeatureKernel:
    """One view's features: kinds, windows and fields as C arrays, and the view's `now`."""

    cdef int count
    cdef int kinds[MAX_FEATURES]
    cdef int64_t overs[MAX_FEATURES]
    cdef int64_t panes[MAX_FEATURES]
    cdef tuple names, fields, types
    cdef int64_t now_ms
    cdef bint has_now
    cdef object store, emit, admit, fallback, fallback_compute
    cdef bint check_future
    cdef object wanted_for  # the last `names` argument of compute, and its mask
    cdef bint wanted[MAX_FEATURES]
    cdef list added  # per event: each rolling feature's new accumulator

    def __init__(self, list kinds, list overs, list panes, tuple names, tuple fields, tuple types):
        cdef int i
        if len(kinds) > MAX_FEATURES:
            raise ValueError(f"a kernel holds at most {MAX_FEATURES} features")
        self.count = len(kinds)
        for i in range(self.count):
            self.kinds[i] = kinds[i]
            self.overs[i] = overs[i]
            self.panes[i] = panes[i]
        self.names, self.fields, self.types = names, fields, types
        self.has_now = False
        self.wanted_for = None
        self.added = [None] * self.count

    def bind(self, store, emit, admit, bint check_future, fallback, fallback_compute):
        """Where entities live, where events go, and the reference's `process` and `compute`."""
        self.store, self.emit, self.admit, self.check_future = store, emit, admit, check_future
        self.fallback, self.fallback_compute = fallback, fallback_compute

    @property
    def now(self):
        """The newest event time applied (reads are as of it); -inf before the first."""
        return self.now_ms if self.has_now else _NEG_INF

    @now.setter
    def now(self, value):
        if value == _NEG_INF:
            self.has_now = False
        else:
            self.now_ms, self.has_now = int(value), True

    # -- per event ------------------------------------------------------------------------------
    def process(self, key, event, ts):
        """Apply `event` of entity `key` at event time `ts` to every feature, then emit it."""
        cdef PyObject *values[MAX_FEATURES]
        cdef PyObject *found
        cdef int i, kind
        cdef object field, kind_of
        if type(event) is not dict or type(ts) is not int:
            return self.fallback(key, event, ts)
        for i in range(self.count):  # validate everything before anything changes
            kind = self.kinds[i]
            field = self.fields[i]
            if field is None:
                values[i] = NULL
                continue
            found = PyDict_GetItem(event, field)
            if found is NULL:
                return self.fallback(key, event, ts)  # missing: the reference says how (or skips it)
            if kind == LATEST:
                kind_of = self.types[i]
                if kind_of is not None and not isinstance(<object>found, kind_of):
                    return self.fallback(key, event, ts)
            elif kind == DISTINCT:
                if isinstance(<object>found, (dict, list)):
                    return self.fallback(key, event, ts)
            elif not _is_number(<object>found):
                return self.fallback(key, event, ts)
            values[i] = found
        cdef int64_t at = ts
        cdef int64_t now = at if not self.has_now or at > self.now_ms else self.now_ms
        store = self.store
        state = store.get_for_update(key)
        cdef list entity = self._empty_state() if state is None else <list>state
        cdef list added = self.added
        for i in range(self.count):  # every accumulator first: one that raises leaves the state as it was
            if self.kinds[i] != LATEST:
                added[i] = self._added(<list>entity[i], i, at, now, None if values[i] is NULL else <object>values[i])
        if self.check_future:
            self.admit(ts)
        self.now_ms, self.has_now = now, True
        for i in range(self.count):
            if self.kinds[i] == LATEST:
                latest = entity[i]
                if latest is None or at >= <int64_t>(<list>latest)[0]:
                    entity[i] = [ts, <object>values[i]]
            else:
                _store_pane(<list>entity[i], self.panes[i], now - self.overs[i], at, added[i])
        store.put(key, entity)
        return self.emit(key, event, ts)

    cdef list _empty_state(self):
        cdef list state = PyList_New(self.count)
        cdef int i
        cdef object slot
        for i in range(self.count):
            slot = None if self.kinds[i] == LATEST else []
            Py_INCREF(slot)
            PyList_SET_ITEM(state, i, slot)
        return state

    cdef object _added(self, list panes, int i, int64_t at, int64_t now, object value):
        """`features._added`: the accumulator of the pane of `at` with `value` in it, or `_OUT`."""
        cdef int64_t pane = self.panes[i]
        cdef int64_t start = at - at % pane
        cdef int64_t pane_start
        cdef Py_ssize_t j
        cdef int kind = self.kinds[i]
        if start + pane <= now - self.overs[i]:
            return _OUT  # older than the window: it can never be read
        for j in range(PyList_GET_SIZE(panes) - 1, -1, -1):
            pair = <list>PyList_GET_ITEM(panes, j)
            pane_start = <int64_t>pair[0]
            if pane_start == start:
                return _add_value(kind, pair[1], value)
            if pane_start < start:
                break
        return _add_value(kind, _create(kind), value)

    # -- reads ----------------------------------------------------------------------------------
    def compute(self, state, reference, names=None):
        """Every feature's value (or those in `names`) as of `reference`, from an entity's state."""
        cdef int i, kind
        cdef bint everything = names is None
        if type(reference) is not int or (state is not None and type(state) is not list):
            return self.fallback_compute(state, reference, names)
        if not everything and names is not self.wanted_for:  # other names than last time: their mask
            for i in range(self.count):
                self.wanted[i] = self.names[i] in names
            self.wanted_for = names if type(names) is frozenset else None  # only a frozenset stays the same
        cdef int64_t at = reference
        cdef dict out = {}
        for i in range(self.count):
            if not everything and not self.wanted[i]:
                continue
            kind = self.kinds[i]
            if kind == LATEST:
                latest = None if state is None else <object>PyList_GET_ITEM(state, i)
                out[self.names[i]] = None if latest is None else <object>PyList_GET_ITEM(latest, 1)
            else:
                out[self.names[i]] = self._rolling(
                    None if state is None else <list>PyList_GET_ITEM(state, i), i, at
                )
        return out

    cdef object _rolling(self, list panes, int i, int64_t at):
        """The reference's merge of the panes overlapping ``(at - over, at]``, and its result."""
        cdef int kind = self.kinds[i]
        cdef int64_t pane = self.panes[i]
        cdef int64_t oldest = at - self.overs[i]
        cdef Py_ssize_t j, n = 0 if panes is None else PyList_GET_SIZE(panes)
        cdef int64_t start
        cdef object acc = _create(kind), part
        cdef set seen, seen_bools
        if kind == DISTINCT:
            seen, seen_bools = set(), set()
        for j in range(n):
            pair = <object>PyList_GET_ITEM(panes, j)
            start = _start_of(pair)
            if start + pane <= oldest or start > at:
                continue
            part = <object>PyList_GET_ITEM(pair, 1)
            if kind == COUNT or kind == SUM:
                acc = PyNumber_Add(acc, part)
            elif kind == MEAN:
                acc = [PyNumber_Add(acc[0], part[0]), PyNumber_Add(acc[1], part[1])]
            elif kind == MIN:
                if acc is None or (part is not None and not acc <= part):
                    acc = part
            elif kind == MAX:
                if acc is None or (part is not None and not acc >= part):
                    acc = part
            else:
                for value in part:
                    PySet_Add(seen_bools if type(value) is bool else seen, value)
        if kind == DISTINCT:
            return PySet_GET_SIZE(seen) + PySet_GET_SIZE(seen_bools)
        if kind == MEAN:
            if not acc[1]:
                return None
            try:
                return acc[0] / acc[1]
            except OverflowError:
                return None
        return acc


cdef object _OUT = object()  # `features._OUT_OF_WINDOW`


cdef int _store_pane(list panes, int64_t pane, int64_t oldest, int64_t at, object acc) except -1:
    """`features._store_pane`: drop panes that left the window, put `acc` in the pane of `at`."""
    cdef Py_ssize_t n = PyList_GET_SIZE(panes), gone = 0, j
    while gone < n and _start_of(<object>PyList_GET_ITEM(panes, gone)) + pane <= oldest:
        gone += 1
    if gone:
        del panes[:gone]
        n -= gone
    if acc is _OUT:
        return 0
    cdef int64_t start = at - at % pane
    j = n
    while j and _start_of(<object>PyList_GET_ITEM(panes, j - 1)) > start:
        j -= 1
    if j and _start_of(<object>PyList_GET_ITEM(panes, j - 1)) == start:
        (<list>PyList_GET_ITEM(panes, j - 1))[1] = acc
    else:
        PyList_Insert(panes, j, [start, acc])
    return 0


cdef inline object _create(int kind):
    """Each built-in aggregation's `create()`."""
    if kind == COUNT or kind == SUM:
        return 0
    if kind == MEAN:
        return [0, 0]
    if kind == DISTINCT:
        return []
    return None


cdef object _add_value(int kind, object acc, object value):
    """Each built-in aggregation's `add(acc, value)`, as its Python reference computes it.

    Sums call `PyNumber_Add` itself: Cython's own ``+`` on objects returns the float of
    ``0 + -0.0`` as ``-0.0`` (it skips adding a zero), where Python gives ``0.0``."""
    cdef Py_ssize_t j
    if kind == COUNT:
        return acc + 1
    if kind == SUM:
        return PyNumber_Add(acc, value)
    if kind == MEAN:
        return [PyNumber_Add(acc[0], value), acc[1] + 1]
    if kind == MIN:
        return value if acc is None or value < acc else acc
    if kind == MAX:
        return value if acc is None or value > acc else acc
    for j in range(PyList_GET_SIZE(acc)):  # DISTINCT
        if _same_distinct(value, <object>PyList_GET_ITEM(acc, j)):
            return acc
    return acc + [value]
