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

# -- numbers: what a Python int (within int64) or float accumulator is, and its arithmetic ---------
cdef enum Tag:
    INT = 0
    DBL = 1

cdef struct Num:
    int64_t tag
    int64_t i
    double d


cdef extern from *:
    """
    #include <stdint.h>
    static inline int streamcore_add_overflows(int64_t a, int64_t b, int64_t *out) {
        return __builtin_add_overflow(a, b, out);
    }
    """
    bint _add_overflows "streamcore_add_overflows"(int64_t a, int64_t b, int64_t *out)


cdef inline bint _num_of(object value, Num *out):
    """`value` (an int or a float) as a `Num`; False for an int beyond int64 (or anything else)."""
    cdef int overflow = 0
    cdef type kind = type(value)
    if kind is float:
        out.tag, out.d = DBL, <double>value
        return True
    if kind is not int:
        return False
    out.i = PyLong_AsLongLongAndOverflow(value, &overflow)
    out.tag = INT
    return overflow == 0


cdef inline object _num_object(Num n):
    return PyLong_FromLongLong(n.i) if n.tag == INT else PyFloat_FromDouble(n.d)


cdef inline bint _add(Num *acc, Num value):
    """``acc = acc + value`` as Python adds an int or a float; False if an int sum leaves int64."""
    cdef int64_t total
    if acc.tag == INT and value.tag == INT:
        if _add_overflows(acc.i, value.i, &total):
            return False
        acc.i = total
        return True
    acc.d = (<double>acc.i if acc.tag == INT else acc.d) + (<double>value.i if value.tag == INT else value.d)
    acc.tag = DBL
    return True


cdef inline bint _holds(int order, int op):
    """Whether ``a <op> b`` holds, given the order of a and b (-1, 0, 1)."""
    if op == Py_LT:
        return order < 0
    if op == Py_LE:
        return order <= 0
    if op == Py_GT:
        return order > 0
    return order >= 0


cdef inline bint _compare(Num a, Num b, int op) except -1:
    """``a <op> b`` exactly, as Python compares ints and floats (mixed ones through Python;
    the values are finite, so two doubles are always ordered)."""
    if a.tag == INT and b.tag == INT:
        return _holds((a.i > b.i) - (a.i < b.i), op)
    if a.tag == DBL and b.tag == DBL:
        return _holds((a.d > b.d) - (a.d < b.d), op)
    return PyObject_RichCompareBool(_num_object(a), _num_object(b), op)


# -- the flat layout of one entity -------------------------------------------------------------
cdef inline int _width(int kind):
    """Words per pane of a kind: its start (a latest value's event time), then its accumulator."""
    if kind == MEAN:
        return 4  # start, the sum's tag, the sum's bits, the count
    if kind == SUM or kind == MIN or kind == MAX:
        return 3  # start, tag, int64 or double bits
    return 2  # COUNT: start, count; DISTINCT: start, its list of values; LATEST: time, value (owned references)


cdef struct Span:
    int32_t n  # panes in use, in start order
    int32_t cap  # panes there is room for
    int32_t off  # the first word of the feature's panes


@cython.final
cdef class Layout:
    """What every entity of one view shares: each feature's kind and pane width."""

    cdef int count
    cdef int kinds[MAX_FEATURES]
    cdef int widths[MAX_FEATURES]

    def __init__(self, list kinds):
        cdef int i
        self.count = len(kinds)
        for i in range(self.count):
            self.kinds[i] = kinds[i]
            self.widths[i] = _width(kinds[i])


cdef inline double _dbl(int64_t *word):
    cdef double d
    memcpy(&d, word, 8)
    return d


cdef inline void _set_dbl(int64_t *word, double d):
    memcpy(word, &d, 8)


cdef inline Num _load(int64_t *tagged):
    """The `Num` at a pane's tag word (the next word holds its bits)."""
    cdef Num n
    n.tag, n.i, n.d = tagged[0], 0, 0
    if n.tag == INT:
        n.i = tagged[1]
    else:
        n.d = _dbl(tagged + 1)
    return n


cdef inline void _store(int64_t *tagged, Num n):
    tagged[0] = n.tag
    if n.tag == INT:
        tagged[1] = n.i
    else:
        _set_dbl(tagged + 1, n.d)


@cython.final
@cython.no_gc
cdef class FlatEntity:
    """One entity's features as C words: per feature a run of panes in start order.

    ``mem`` holds a `Span` per feature, then the panes. Python objects in it (latest values,
    distinct-value lists) are owned references, released when a pane goes or the entity
    does. It holds no object that could refer back to it, so the collector need not see it.
    """

    cdef Layout layout
    cdef char *mem
    cdef Span *spans
    cdef int64_t *words

    def __dealloc__(self):
        cdef int i
        cdef int32_t j
        if self.mem is NULL:
            return
        for i in range(self.layout.count):
            if self.layout.kinds[i] == DISTINCT or self.layout.kinds[i] == LATEST:
                for j in range(self.spans[i].n):
                    Py_XDECREF(<PyObject *><intptr_t>self._pane(i, j)[1])
        free(self.mem)

    cdef inline int64_t *_pane(self, int i, int32_t j):
        return self.words + self.spans[i].off + j * self.layout.widths[i]

    cdef int _allocate(self, int32_t *caps) except -1:
        """A buffer with room for `caps[i]` panes of each feature, the current panes copied in."""
        cdef int i, count = self.layout.count
        cdef Py_ssize_t header = ((count * sizeof(Span) + 7) // 8) * 8, total = 0
        for i in range(count):
            total += caps[i] * self.layout.widths[i]
        cdef char *mem = <char *>malloc(header + total * 8)
        if mem is NULL:
            raise MemoryError()
        cdef Span *spans = <Span *>mem
        cdef int64_t *words = <int64_t *>(mem + header)
        cdef int32_t off = 0
        for i in range(count):
            spans[i].cap, spans[i].off = caps[i], off
            spans[i].n = 0 if self.mem is NULL else self.spans[i].n
            if spans[i].n:
                memcpy(words + off, self._pane(i, 0), spans[i].n * self.layout.widths[i] * 8)
            off += caps[i] * self.layout.widths[i]
        free(self.mem)
        self.mem, self.spans, self.words = mem, spans, words
        return 0

    cdef int _room_for_one_more(self, int i) except -1:
        cdef int32_t caps[MAX_FEATURES]
        cdef int k
        if self.spans[i].n < self.spans[i].cap:
            return 0
        for k in range(self.layout.count):
            caps[k] = self.spans[k].cap
        caps[i] = 2 * caps[i] if caps[i] else 1
        return self._allocate(caps)

    cdef int32_t _find(self, int i, int64_t start, int32_t *at):
        """The index of the pane of `start` (or -1), and in `at` where it is or would go."""
        cdef int32_t j = self.spans[i].n
        cdef int64_t found
        while j:
            found = self._pane(i, j - 1)[0]
            if found == start:
                at[0] = j - 1
                return j - 1
            if found < start:
                break
            j -= 1
        at[0] = j
        return -1

    cdef int _insert(self, int i, int32_t at, int64_t start) except -1:
        """Open a pane of `start` at index `at` (its accumulator words are the caller's to set)."""
        self._room_for_one_more(i)
        cdef int width = self.layout.widths[i]
        cdef int64_t *pane = self._pane(i, at)
        memmove(pane + width, pane, (self.spans[i].n - at) * width * 8)
        self.spans[i].n += 1
        pane[0] = start
        return 0

    cdef void _drop_before(self, int i, int64_t pane_ms, int64_t oldest):
        """Drop the panes that end at or before `oldest`: they left the window."""
        cdef int32_t gone = 0, n = self.spans[i].n
        cdef int width = self.layout.widths[i]
        while gone < n and self._pane(i, gone)[0] + pane_ms <= oldest:
            if self.layout.kinds[i] == DISTINCT:
                Py_DECREF(<object><PyObject *><intptr_t>self._pane(i, gone)[1])
            gone += 1
        if gone:
            memmove(self._pane(i, 0), self._pane(i, gone), (n - gone) * width * 8)
            self.spans[i].n = n - gone

    def lists(self):
        """The reference's state of this entity: per feature its panes or latest value, as lists."""
        cdef int i, kind
        cdef int32_t j
        cdef int64_t *pane
        cdef list out = [], panes
        for i in range(self.layout.count):
            kind = self.layout.kinds[i]
            if kind == LATEST:
                if self.spans[i].n:
                    pane = self._pane(i, 0)
                    out.append([pane[0], <object><PyObject *><intptr_t>pane[1]])
                else:
                    out.append(None)
                continue
            panes = []
            for j in range(self.spans[i].n):
                pane = self._pane(i, j)
                if kind == COUNT:
                    acc = pane[1]
                elif kind == MEAN:
                    acc = [_num_object(_load(pane + 1)), pane[3]]
                elif kind == DISTINCT:
                    acc = list(<list><PyObject *><intptr_t>pane[1])
                else:
                    acc = _num_object(_load(pane + 1))
                panes.append([pane[0], acc])
            out.append(panes)
        return out

    def json_data(self):
        """What `encode_state` writes for this entity: the reference's lists."""
        return self.lists()

    def json_bytes(self):
        """The JSON of `json_data()`, written straight from the words (None where a value
        needs `encode_state`'s exact writer: a non-finite sum, or a value orjson refuses)."""
        cdef Out out
        out.data, out.size, out.cap = NULL, 0, 0
        try:
            if self._write_json(&out):
                return PyBytes_FromStringAndSize(out.data, out.size)
            return None
        finally:
            free(out.data)

    cdef bint _write_json(self, Out *out) except -1:
        cdef int i, kind
        cdef int32_t j
        cdef int64_t *pane
        _put(out, b"[", 1)
        for i in range(self.layout.count):
            kind = self.layout.kinds[i]
            if i:
                _put(out, b",", 1)
            if kind == LATEST:
                if not self.spans[i].n:
                    _put(out, b"null", 4)
                    continue
                pane = self._pane(i, 0)
                _put(out, b"[", 1)
                _put_int(out, pane[0])
                _put(out, b",", 1)
                if not _put_value(out, <object><PyObject *><intptr_t>pane[1]):
                    return False
                _put(out, b"]", 1)
                continue
            _put(out, b"[", 1)
            for j in range(self.spans[i].n):
                pane = self._pane(i, j)
                _put(out, b",[" if j else b"[", 2 if j else 1)
                _put_int(out, pane[0])
                _put(out, b",", 1)
                if kind == COUNT:
                    _put_int(out, pane[1])
                elif kind == DISTINCT:
                    if not _put_value(out, <object><PyObject *><intptr_t>pane[1]):
                        return False
                elif kind == MEAN:
                    _put(out, b"[", 1)
                    if not _put_number(out, _load(pane + 1)):
                        return False
                    _put(out, b",", 1)
                    _put_int(out, pane[3])
                    _put(out, b"]", 1)
                elif not _put_number(out, _load(pane + 1)):
                    return False
                _put(out, b"]", 1)
            _put(out, b"]", 1)
        _put(out, b"]", 1)
        return True


# -- JSON written straight from the words --------------------------------------------------
cdef struct Out:
    char *data
    Py_ssize_t size
    Py_ssize_t cap


cdef int _put(Out *out, const char *text, Py_ssize_t n) except -1:
    cdef Py_ssize_t cap
    cdef char *grown
    if out.size + n > out.cap:
        cap = max(2 * out.cap, out.size + n + 256)
        grown = <char *>realloc(out.data, cap)
        if grown is NULL:
            raise MemoryError()
        out.data, out.cap = grown, cap
    memcpy(out.data + out.size, text, n)
    out.size += n
    return 0


cdef int _put_int(Out *out, int64_t value) except -1:
    """`value` in decimal (a digit loop: snprintf costs more than the rest of an entity's JSON)."""
    cdef char text[24]
    cdef int at = 24
    cdef uint64_t left = <uint64_t>value if value >= 0 else <uint64_t>0 - <uint64_t>value
    while True:
        at -= 1
        text[at] = <char>(48 + left % 10)
        left //= 10
        if not left:
            break
    if value < 0:
        at -= 1
        text[at] = 45  # '-'
    return _put(out, text + at, 24 - at)


cdef bint _put_number(Out *out, Num n) except -1:
    """An int, or a float as Python's repr writes it (it reads back bit for bit); False if not finite."""
    if n.tag == INT:
        _put_int(out, n.i)
        return True
    if not isfinite(n.d):
        return False
    cdef char *text = PyOS_double_to_string(n.d, b"r", 0, Py_DTSF_ADD_DOT_0, NULL)
    try:
        _put(out, text, strlen(text))
    finally:
        PyMem_Free(text)
    return True


cdef bint _put_value(Out *out, object value) except -1:
    """A latest value or a list of distinct values; False where only the exact writer can
    write it (an int beyond 64 bits, an unpaired surrogate, a non-finite float)."""
    cdef type kind = type(value)
    cdef Num n
    cdef Py_ssize_t j
    if kind is str:
        return _put_str(out, value)
    if kind is list:
        _put(out, b"[", 1)
        for j in range(PyList_GET_SIZE(value)):
            if j:
                _put(out, b",", 1)
            if not _put_value(out, <object>PyList_GET_ITEM(value, j)):
                return False
        _put(out, b"]", 1)
        return True
    if value is None:
        _put(out, b"null", 4)
        return True
    if kind is bool:
        _put(out, b"true" if value else b"false", 4 if value else 5)
        return True
    if kind is int or kind is float:
        return _num_of(value, &n) and _put_number(out, n)
    try:  # a dict, from a latest value of a field that holds one
        raw = _dumps(value)
    except TypeError:
        return False
    if b"null" in raw:
        return False  # perhaps a non-finite float, which orjson writes as null
    _put(out, raw, len(raw))
    return True


cdef bint _put_str(Out *out, str value) except -1:
    """A JSON string, for text that needs no escape (else orjson writes it); False for a surrogate."""
    cdef Py_ssize_t n, j
    cdef const char *text
    try:
        text = PyUnicode_AsUTF8AndSize(value, &n)
    except UnicodeEncodeError:
        return False
    for j in range(n):
        if <unsigned char>text[j] < 32 or text[j] == 34 or text[j] == 92:  # a control character, '"' or '\\'
            raw = _dumps(value)
            _put(out, raw, len(raw))
            return True
    _put(out, b'"', 1)
    _put(out, text, n)
    _put(out, b'"', 1)
    return True


cdef FlatEntity _empty(Layout layout):
    cdef FlatEntity entity = FlatEntity.__new__(FlatEntity)
    cdef int32_t caps[MAX_FEATURES]
    cdef int i
    entity.layout = layout
    for i in range(layout.count):
        caps[i] = 1
    entity._allocate(caps)
    return entity


cdef bint _int64(object value, int64_t *out):
    cdef int overflow = 0
    if type(value) is not int:
        return False
    out[0] = PyLong_AsLongLongAndOverflow(value, &overflow)
    return overflow == 0


cdef FlatEntity _from_lists(Layout layout, object state):
    """The flat twin of an entity's reference state, or None where the layout cannot hold it."""
    cdef int i, kind
    cdef int32_t caps[MAX_FEATURES]
    cdef int32_t j
    cdef int64_t start = 0, count = 0
    cdef Num n
    cdef int64_t *pane
    n.tag, n.i, n.d = INT, 0, 0
    if type(state) is not list or PyList_GET_SIZE(state) != layout.count:
        return None
    for i in range(layout.count):
        feature = <object>PyList_GET_ITEM(state, i)
        if layout.kinds[i] == LATEST:
            caps[i] = 1
            if feature is not None and (type(feature) is not list or len(feature) != 2 or not _int64(feature[0], &start)):
                return None
        elif type(feature) is not list:
            return None
        else:
            caps[i] = max(1, PyList_GET_SIZE(feature))
    cdef FlatEntity entity = FlatEntity.__new__(FlatEntity)
    entity.layout = layout
    entity._allocate(caps)
    for i in range(layout.count):
        kind = layout.kinds[i]
        feature = <object>PyList_GET_ITEM(state, i)
        if kind == LATEST:
            if feature is not None:
                pane = entity._pane(i, 0)
                _int64(feature[0], &pane[0])
                value = feature[1]
                Py_INCREF(value)
                pane[1] = <intptr_t><PyObject *>value
                entity.spans[i].n = 1
            continue
        for j in range(PyList_GET_SIZE(feature)):
            pair = <object>PyList_GET_ITEM(feature, j)
            if type(pair) is not list or len(pair) != 2 or not _int64(pair[0], &start):
                return None
            if j and start <= entity._pane(i, j - 1)[0]:
                return None  # not in start order: not a state the reference writes
            acc = pair[1]
            pane = entity._pane(i, j)
            pane[0] = start
            if kind == COUNT:
                if not _int64(acc, &pane[1]):
                    return None
            elif kind == MEAN:
                if type(acc) is not list or len(acc) != 2 or not _num_of(acc[0], &n) or not _int64(acc[1], &count):
                    return None
                _store(pane + 1, n)
                pane[3] = count
            elif kind == DISTINCT:
                if type(acc) is not list:
                    return None
                values = list(acc)
                Py_INCREF(values)
                pane[1] = <intptr_t><PyObject *>values
            else:
                if not _num_of(acc, &n):
                    return None
                _store(pane + 1, n)
            entity.spans[i].n = j + 1
    return entity


def as_lists(state):
    """An entity's state as the reference keeps it (lists, or None): a flat one is converted."""
    return (<FlatEntity>state).lists() if type(state) is FlatEntity else state


def from_lists(list kinds, state):
    """The flat twin of a reference state for a view of these kinds, or None (for tests)."""
    return _from_lists(Layout(kinds), state)


# -- the kernel ------------------------------------------------------------------------------
cdef struct Change:  # one rolling feature's change for the event being applied, worked out before any is made
    bint out  # the event is older than the feature's window: it skips it
    bint new_value  # DISTINCT: the value is not in its pane yet
    Num acc  # the pane's new accumulator (COUNT: acc.i; MEAN: the sum)
    int64_t count  # MEAN: the pane's new count


@cython.final
cdef class FeatureKernel:
    """One view's features: kinds, windows and fields as C arrays, and the view's `now`."""

    cdef Layout layout
    cdef int count
    cdef int kinds[MAX_FEATURES]
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
        self.count = len(kinds)
        for i in range(self.count):
            self.kinds[i] = kinds[i]
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
        for i in range(self.count):  # every change worked out first: one that cannot be made changes nothing
            if self.kinds[i] != LATEST and not self._change(entity, i, at, now, values[i], &numbers[i]):
                return self.fallback_with(key, event, ts, entity.lists())
        if self.check_future:
            self.admit(ts)
        self.now_ms, self.has_now = now, True
        for i in range(self.count):
            if self.kinds[i] == LATEST:
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
        cdef int kind = self.kinds[i]
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
        cdef int kind = self.kinds[i]
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
        cdef int kind = self.kinds[i]
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
