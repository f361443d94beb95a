# One entity of a feature view, flat: its panes as C words (`FlatEntity`), and its reference lists.
# Included by _feature_kernel.pyx (its cimports and constants are in scope here).

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

    def json_in_list(self, tuple numbers):
        """The JSON of ``[json_data(), *numbers]`` (integers), written straight from the words:
        how the online state's record holds an entity beside where its newest event came
        from. None where a value needs `encode_state`'s exact writer (a non-finite sum, a
        value orjson refuses) or a number is not an int64."""
        cdef Out out
        cdef int64_t number = 0
        out.data, out.size, out.cap = NULL, 0, 0
        try:
            _put(&out, b"[", 1)
            if not self._write_json(&out):
                return None
            for item in numbers:
                if not _int64(item, &number):
                    return None
                _put(&out, b",", 1)
                _put_int(&out, number)
            _put(&out, b"]", 1)
            return PyBytes_FromStringAndSize(out.data, out.size)
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
