# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled twin of `features.FeatureOperator`: a view's per-event update and its reads.

The kernel keeps each entity flat: one `FlatEntity` per entity, whose panes are C words
in one buffer (a pane's start and its accumulator: a count, an exact int64 or a double
with its type, a mean's sum and count), and whose latest values and distinct-value lists
are the only Python objects. The reference keeps the same state as lists (per rolling
feature ``[[pane start, accumulator], ...]``, per latest one ``[event time, value]``);
`FlatEntity.lists()` gives exactly those lists, so a checkpoint, a snapshot copy or a
restore writes and reads the reference's JSON, whichever path wrote an entity:

* ``encode_state`` writes a flat entity through its ``json_data()`` (the lists);
* an entity read back (a checkpoint, a snapshot's copy) is lists until the kernel next
  changes it: `process` and `compute` turn it flat first (`from_lists`);
* what the flat layout cannot hold goes to the reference, whole, with the entity as
  lists: an event the kernel does not read itself (not a dict, a missing or mistyped
  field, a value a built-in aggregation refuses), an integer that leaves int64 (an
  exact sum of large integers), a read at a reference time that is not an integer.
  Nothing was changed before that.

``tests/unit/test_compiled_features.py`` drives both paths with the same random events.
"""

cimport cython
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_Append, PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_FromLongLong
from cpython.float cimport PyFloat_FromDouble
from cpython.number cimport PyNumber_Add, PyNumber_TrueDivide
from cpython.object cimport PyObject, PyObject_RichCompareBool
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.set cimport PySet_Add, PySet_GET_SIZE
from libc.math cimport isfinite
from libc.stdint cimport int32_t, int64_t, intptr_t, uint64_t
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memmove, strlen

from orjson import dumps as _dumps

cdef extern from "Python.h":
    int Py_EQ, Py_LT, Py_LE, Py_GT, Py_GE
    int Py_DTSF_ADD_DOT_0
    char *PyOS_double_to_string(double value, char format_code, int precision, int flags, int *kind) except NULL

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

include "_feature_numbers.pxi"
include "_feature_json.pxi"
include "_flat_entity.pxi"


# -- the kernel ------------------------------------------------------------------------------
cdef struct Change:  # one rolling feature's change for the event being applied, worked out before any is made
    bint out  # the event is older than the feature's window: it skips it
    bint new_value  # DISTINCT: the value is not in its pane yet
    Num acc  # the pane's new accumulator (COUNT: acc.i; MEAN: the sum)
    int64_t count  # MEAN: the pane's new count


@cython.final
cdef class FeatureKernel:
    """One view's features: their kinds (the `Layout` its entities share), windows and fields, and the view's `now`."""

    cdef Layout layout
    cdef int64_t overs[MAX_FEATURES]
    cdef int64_t panes[MAX_FEATURES]
    cdef tuple names, fields, types
    cdef int64_t now_ms
    cdef bint has_now
    cdef object store, emit, admit, fallback, fallback_with, fallback_compute
    cdef bint check_future
    cdef object wanted_for  # the last `names` argument of compute, and its mask
    cdef bint wanted[MAX_FEATURES]
    cdef Change changes[MAX_FEATURES]

    def __init__(self, list kinds, list overs, list panes, tuple names, tuple fields, tuple types):
        cdef int i
        if len(kinds) > MAX_FEATURES:
            raise ValueError(f"a kernel holds at most {MAX_FEATURES} features")
        self.layout = Layout(kinds)
        for i in range(len(kinds)):
            self.overs[i] = overs[i]
            self.panes[i] = panes[i]
        self.names, self.fields, self.types = names, fields, types
        self.has_now = False
        self.wanted_for = None

    def bind(self, store, emit, admit, bint check_future, fallback, fallback_with, fallback_compute):
        """Where entities live, where events go, and the reference's `process`,
        `process_state` (an event applied to a given state) and `compute`."""
        self.store, self.emit, self.admit, self.check_future = store, emit, admit, check_future
        self.fallback, self.fallback_with, self.fallback_compute = fallback, fallback_with, fallback_compute

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

    def reference(self):
        """`now`, as a method: what the view's reads are as of (`FeatureReader.reference`)."""
        return self.now_ms if self.has_now else _NEG_INF

    # -- per event ------------------------------------------------------------------------------
    def process(self, key, event, ts):
        """Apply `event` of entity `key` at event time `ts` to every feature, then emit it."""
        cdef PyObject *values[MAX_FEATURES]
        cdef Num numbers[MAX_FEATURES]
        cdef PyObject *found
        cdef int i, kind
        cdef object field, kind_of
        if type(event) is not dict or type(ts) is not int:
            return self.fallback(key, event, ts)
        for i in range(self.layout.count):  # validate everything before anything changes
            kind = self.layout.kinds[i]
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
            elif not _num_of(<object>found, &numbers[i]):
                return self.fallback(key, event, ts)  # an int beyond int64: the reference's exact sum
            values[i] = found
        cdef int64_t at = ts
        cdef int64_t now = at if not self.has_now or at > self.now_ms else self.now_ms
        store = self.store
        state = store.get_for_update(key)
        cdef FlatEntity entity
        if state is None:
            entity = _empty(self.layout)
        elif type(state) is FlatEntity:
            entity = <FlatEntity>state
        else:
            entity = _from_lists(self.layout, state)
            if entity is None:
                return self.fallback_with(key, event, ts, state)
        for i in range(self.layout.count):  # every change worked out first: one that cannot be made changes nothing
            if self.layout.kinds[i] != LATEST and not self._change(entity, i, at, now, values[i], &numbers[i]):
                return self.fallback_with(key, event, ts, entity.lists())
        if self.check_future:
            self.admit(ts)
        self.now_ms, self.has_now = now, True
        for i in range(self.layout.count):
            if self.layout.kinds[i] == LATEST:
                _set_latest(entity, i, at, <object>values[i])
            else:
                self._apply(entity, i, at, now, <object>values[i] if values[i] is not NULL else None)
        store.put(key, entity)
        return self.emit(key, event, ts)

    cdef bint _change(self, FlatEntity entity, int i, int64_t at, int64_t now, PyObject *value, Num *number) except -1:
        """`features._added` into ``changes[i]``; False if the new sum would leave int64."""
        cdef Change *change = &self.changes[i]
        cdef int64_t pane = self.panes[i]
        cdef int64_t start = at - at % pane
        cdef int32_t where
        cdef int kind = self.layout.kinds[i]
        change.out = start + pane <= now - self.overs[i]
        if change.out:
            return True  # older than the window: it can never be read
        cdef int32_t j = entity._find(i, start, &where)
        cdef int64_t *old = NULL if j < 0 else entity._pane(i, j)
        if kind == COUNT:
            change.acc.tag, change.acc.i = INT, (1 if old is NULL else old[1] + 1)
        elif kind == DISTINCT:
            change.new_value = old is NULL or not _listed(<list><PyObject *><intptr_t>old[1], <object>value)
        elif kind == SUM or kind == MEAN:
            if old is NULL:
                change.acc.tag, change.acc.i = INT, 0
                change.count = 1
            else:
                change.acc = _load(old + 1)
                change.count = old[3] + 1 if kind == MEAN else 0
            return _add(&change.acc, number[0])
        else:  # MIN, MAX: the new value if it is smaller (larger), else the pane's
            change.acc = number[0]
            if old is not NULL and not _compare(number[0], _load(old + 1), Py_LT if kind == MIN else Py_GT):
                change.acc = _load(old + 1)
        return True

    cdef int _apply(self, FlatEntity entity, int i, int64_t at, int64_t now, object value) except -1:
        """`features._store_pane`: drop panes that left the window, put ``changes[i]`` in the pane of `at`."""
        cdef Change *change = &self.changes[i]
        cdef int64_t pane_ms = self.panes[i]
        cdef int32_t where = 0
        cdef int kind = self.layout.kinds[i]
        entity._drop_before(i, pane_ms, now - self.overs[i])
        if change.out:
            return 0
        cdef int64_t start = at - at % pane_ms
        cdef int32_t j = entity._find(i, start, &where)
        if j < 0:
            entity._insert(i, where, start)
        cdef int64_t *pane = entity._pane(i, where)
        if kind == COUNT:
            pane[1] = change.acc.i
        elif kind == DISTINCT:
            if j < 0:
                values = [value]
                Py_INCREF(values)
                pane[1] = <intptr_t><PyObject *>values
            elif change.new_value:
                PyList_Append(<list><PyObject *><intptr_t>pane[1], value)
        else:
            _store(pane + 1, change.acc)
            if kind == MEAN:
                pane[3] = change.count
        return 0

    # -- reads ----------------------------------------------------------------------------------
    def compute(self, state, reference, names=None):
        """Every feature's value (or those in `names`) as of `reference`, from an entity's state."""
        cdef int i, kind
        cdef bint everything = names is None
        cdef FlatEntity entity = None
        if type(reference) is not int:
            return self.fallback_compute(as_lists(state), reference, names)
        if type(state) is FlatEntity:
            entity = <FlatEntity>state
        elif state is not None:
            entity = _from_lists(self.layout, state)
            if entity is None:
                return self.fallback_compute(state, reference, names)
        if not everything and names is not self.wanted_for:  # other names than last time: their mask
            for i in range(self.layout.count):
                self.wanted[i] = self.names[i] in names
            self.wanted_for = names if type(names) is frozenset else None  # only a frozenset stays the same
        cdef int64_t at = reference
        cdef dict out = {}
        for i in range(self.layout.count):
            if not everything and not self.wanted[i]:
                continue
            kind = self.layout.kinds[i]
            if kind == LATEST:
                if entity is None or not entity.spans[i].n:
                    out[self.names[i]] = None
                else:
                    out[self.names[i]] = <object><PyObject *><intptr_t>entity._pane(i, 0)[1]
                continue
            value = self._rolling(entity, i, at)
            if value is _OVERFLOW:
                return self.fallback_compute(entity.lists(), reference, names)
            out[self.names[i]] = value
        return out

    cdef object _rolling(self, FlatEntity entity, int i, int64_t at):
        """The reference's merge of the panes overlapping ``(at - over, at]``, and its result."""
        cdef int kind = self.layout.kinds[i]
        cdef int64_t pane_ms = self.panes[i]
        cdef int64_t oldest = at - self.overs[i]
        cdef int32_t j, n = 0 if entity is None else entity.spans[i].n
        cdef int64_t *pane
        cdef int64_t count = 0
        cdef bint some = False
        cdef Num acc, part
        cdef set seen, seen_bools
        acc.tag, acc.i, acc.d = INT, 0, 0
        if kind == DISTINCT:
            seen, seen_bools = set(), set()
        for j in range(n):
            pane = entity._pane(i, j)
            if pane[0] + pane_ms <= oldest or pane[0] > at:
                continue
            if kind == COUNT:
                if _add_overflows(acc.i, pane[1], &acc.i):
                    return _OVERFLOW
            elif kind == SUM or kind == MEAN:
                if not _add(&acc, _load(pane + 1)):
                    return _OVERFLOW
                if kind == MEAN:
                    count += pane[3]
            elif kind == DISTINCT:
                for value in <list><PyObject *><intptr_t>pane[1]:
                    PySet_Add(seen_bools if type(value) is bool else seen, value)
            else:  # MIN, MAX: the reference's merge keeps the earlier of equal values
                part = _load(pane + 1)
                if not some or not _compare(acc, part, Py_LE if kind == MIN else Py_GE):
                    acc = part
                some = True
        if kind == DISTINCT:
            return PySet_GET_SIZE(seen) + PySet_GET_SIZE(seen_bools)
        if kind == MEAN:
            return None if not count else PyNumber_TrueDivide(_num_object(acc), count)
        if kind == MIN or kind == MAX:
            return _num_object(acc) if some else None
        return _num_object(acc)


cdef object _OVERFLOW = object()  # a merged int sum left int64: the reference merges it exactly


cdef inline bint _is_number(object value):
    """What a built-in numeric aggregation accepts: an int (not a bool) or a finite float."""
    cdef type kind = type(value)
    return kind is int or (kind is float and isfinite(<double>value))


cdef inline bint _same_distinct(object a, object b) except -1:
    """`aggregations._same`: equal values, where a bool and a number are never the same."""
    if (type(a) is bool) != (type(b) is bool):
        return False
    return PyObject_RichCompareBool(a, b, Py_EQ)


cdef bint _listed(list values, object value) except -1:
    cdef Py_ssize_t j
    for j in range(PyList_GET_SIZE(values)):
        if _same_distinct(value, <object>PyList_GET_ITEM(values, j)):
            return True
    return False


cdef int _set_latest(FlatEntity entity, int i, int64_t at, object value) except -1:
    """A latest feature takes the value of an event at least as new as the one it holds."""
    cdef int64_t *pane = entity._pane(i, 0)
    if entity.spans[i].n and at < pane[0]:
        return 0
    Py_INCREF(value)
    if entity.spans[i].n:
        Py_DECREF(<object><PyObject *><intptr_t>pane[1])
    pane[0], pane[1] = at, <intptr_t><PyObject *>value
    entity.spans[i].n = 1
    return 0
