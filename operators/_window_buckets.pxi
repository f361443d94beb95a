# Included by `_fixed_kernel.pyx`: the windows of one start (a `Bucket`) and their accumulators in C.
#
# A window is a row: its `Meta` (fired, next revision, the checkpoint epoch it last
# changed in, whether RocksDB holds it) and one `Acc` per aggregation, laid out as the
# `Layout` says. `_accumulators` turns a row back into the reference's accumulator list
# (what results and checkpoints are made of); `_set_accumulators` is its inverse.

from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport int64_t, uint8_t

cdef enum:
    # aggregation kinds (the fused built-ins)
    A_COUNT = 0
    A_SUM = 1
    A_MIN = 2
    A_MAX = 3
    A_MEAN = 4

cdef struct Layout:
    int naggs
    int kinds[MAX_FIELDS]     # each aggregation's A_* kind
    int field_of[MAX_FIELDS]  # the index of the value it reads (-1: Count)

cdef struct Acc:
    Num v
    int64_t n  # Mean's count

cdef struct Meta:
    int64_t revision
    int64_t epoch
    uint8_t fired
    uint8_t persisted


cdef void* _resized(void* block, size_t size) except NULL:
    """`block` grown (or moved) to `size` bytes; MemoryError if there is no room."""
    cdef void* grown = PyMem_Realloc(block, size)
    if grown == NULL:
        raise MemoryError()
    return grown


cdef class Bucket:
    """The windows starting at `start`: row i is key ``keys[i]``."""

    cdef int64_t start
    cdef dict rows
    cdef list keys
    cdef Meta* meta
    cdef Acc* accs
    cdef Py_ssize_t n, cap
    cdef int naggs

    def __cinit__(self, int64_t start, int naggs):
        self.start = start
        self.rows = {}
        self.keys = []
        self.naggs = naggs
        self.n = 0
        self.cap = 0
        self.meta = NULL
        self.accs = NULL

    def __dealloc__(self):
        PyMem_Free(self.meta)
        PyMem_Free(self.accs)

    cdef Py_ssize_t add_row(self, str key, int64_t epoch) except -1:
        cdef Py_ssize_t row = self.n, cap
        if row == self.cap:
            cap = 16 if self.cap == 0 else self.cap * 2
            self.meta = <Meta*>_resized(self.meta, cap * sizeof(Meta))
            self.accs = <Acc*>_resized(self.accs, cap * self.naggs * sizeof(Acc) + sizeof(Acc))
            self.cap = cap
        self.rows[key] = row
        self.keys.append(key)
        self.meta[row].revision = 0
        self.meta[row].epoch = epoch
        self.meta[row].fired = 0
        self.meta[row].persisted = 0
        self.n = row + 1
        return row



cdef inline void _fold(Layout* layout, Acc* accs, Num* values) noexcept:
    """Add one event's values to a window's accumulators (overflow was ruled out)."""
    cdef int a, kind
    cdef Acc* acc
    cdef Num* v
    for a in range(layout.naggs):
        acc = accs + a
        kind = layout.kinds[a]
        if kind == A_COUNT:
            acc.v.i += 1
        else:
            v = values + layout.field_of[a]
            if kind == A_SUM:
                _num_add(&acc.v, v)
            elif kind == A_MEAN:
                _num_add(&acc.v, v)
                acc.n += 1
            elif acc.v.kind == N_NONE or (_cmp(v, &acc.v) < 0 if kind == A_MIN else _cmp(v, &acc.v) > 0):
                acc.v = v[0]

cdef inline bint _overflows(Layout* layout, Acc* accs, Num* values) noexcept:
    cdef int a, kind
    for a in range(layout.naggs):
        kind = layout.kinds[a]
        if (kind == A_SUM or kind == A_MEAN) and _would_overflow(&accs[a].v, values + layout.field_of[a]):
            return True
    return False

cdef inline void _fresh(Layout* layout, Acc* accs) noexcept:
    cdef int a, kind
    for a in range(layout.naggs):
        kind = layout.kinds[a]
        accs[a].v.i = 0
        accs[a].v.d = 0.0
        accs[a].v.kind = N_NONE if kind == A_MIN or kind == A_MAX else N_INT
        accs[a].n = 0


cdef list _accumulators(Layout* layout, Acc* accs):
    """A window's accumulators in the reference layout (what checkpoints and `results` read)."""
    cdef int a
    out = []
    for a in range(layout.naggs):
        if layout.kinds[a] == A_COUNT:
            out.append(accs[a].v.i)
        elif layout.kinds[a] == A_MEAN:
            out.append([_num_object(&accs[a].v), accs[a].n])
        else:
            out.append(_num_object(&accs[a].v))
    return out


cdef int _set_accumulators(Layout* layout, Acc* accs, list values) except -1:
    """Load a reference accumulator list (restored state) into a row; Unrepresentable if C cannot hold it."""
    cdef int a
    cdef Num count
    for a in range(layout.naggs):
        accs[a].n = 0
        if layout.kinds[a] == A_MEAN:
            _num_from_object(values[a][0], &accs[a].v)
            _num_from_object(values[a][1], &count)
            accs[a].n = count.i
        else:
            _num_from_object(values[a], &accs[a].v)
    return 0


cdef bint _merge_overflows(Layout* layout, Acc* a, Acc* b) noexcept:
    cdef int k, kind
    for k in range(layout.naggs):
        kind = layout.kinds[k]
        if kind == A_COUNT or kind == A_SUM or kind == A_MEAN:
            if _would_overflow(&a[k].v, &b[k].v):
                return True
    return False


cdef void _merge(Layout* layout, Acc* a, Acc* b) noexcept:
    """a = merge(a, b), each aggregation's `merge` (overflow was ruled out by `_merge_overflows`)."""
    cdef int k, kind
    for k in range(layout.naggs):
        kind = layout.kinds[k]
        if kind == A_COUNT or kind == A_SUM:
            _num_add(&a[k].v, &b[k].v)
        elif kind == A_MEAN:
            _num_add(&a[k].v, &b[k].v)
            a[k].n += b[k].n
        elif a[k].v.kind == N_NONE:
            a[k].v = b[k].v
        elif b[k].v.kind != N_NONE and (_cmp(&a[k].v, &b[k].v) > 0 if kind == A_MIN else _cmp(&a[k].v, &b[k].v) < 0):
            a[k].v = b[k].v
