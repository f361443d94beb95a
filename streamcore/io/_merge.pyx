# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of `streamcore.io.merge.plan_runs`: the same runs, decided in C.

A read-ahead's append times are the frame's ``array('q')``; for anything else (a list)
this calls the reference.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t

from streamcore.io import merge as _reference


cdef inline int64_t _floor_div(int64_t a, int64_t b) noexcept:
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


def plan_runs(list stamps, list cursors, int64_t tick, Py_ssize_t max_records, labels):
    cdef Py_ssize_t n = len(stamps), i
    cdef const int64_t[::1] view
    keep = []
    for times in stamps:
        if times is not None and not (hasattr(times, "typecode") and times.typecode == "q"):
            return _reference.plan_runs(stamps, cursors, tick, max_records, labels)
    cdef const int64_t** data = <const int64_t**>PyMem_Malloc(n * sizeof(int64_t*) + 1)
    cdef Py_ssize_t* lengths = <Py_ssize_t*>PyMem_Malloc(n * sizeof(Py_ssize_t) + 1)
    cdef Py_ssize_t* at = <Py_ssize_t*>PyMem_Malloc(n * sizeof(Py_ssize_t) + 1)
    if data == NULL or lengths == NULL or at == NULL:
        PyMem_Free(data)
        PyMem_Free(lengths)
        PyMem_Free(at)
        raise MemoryError()
    try:
        for i in range(n):
            lengths[i] = 0
            at[i] = cursors[i]
            if stamps[i] is not None and len(stamps[i]) > 0:
                view = stamps[i]
                keep.append(view)  # keeps the buffer while `data` points into it
                data[i] = &view[0]
                lengths[i] = view.shape[0]
        return _plan(n, data, lengths, at, cursors, labels, tick, max_records)
    finally:
        PyMem_Free(data)
        PyMem_Free(lengths)
        PyMem_Free(at)


cdef list _plan(Py_ssize_t n, const int64_t** data, Py_ssize_t* lengths, Py_ssize_t* at, list cursors,
                labels, int64_t tick, Py_ssize_t left):
    cdef Py_ssize_t i, best, second, start, stop, lo, hi, mid
    cdef int64_t best_tick = 0, second_tick = 0, t, bound
    cdef const int64_t* times
    cdef int64_t* ticks = <int64_t*>PyMem_Malloc(n * sizeof(int64_t) + 1)
    if ticks == NULL:
        raise MemoryError()
    for i in range(n):  # each partition's next tick, recomputed only when it moves: a division is slow
        if at[i] < lengths[i]:
            ticks[i] = _floor_div(data[i][at[i]], tick)
    runs = []
    try:
        while left > 0:
            best = second = -1
            for i in range(n):
                if at[i] >= lengths[i]:
                    continue
                t = ticks[i]
                if best < 0 or t < best_tick:  # ties go to the lower partition, as (tick, partition) orders
                    second, second_tick = best, best_tick
                    best, best_tick = i, t
                elif second < 0 or t < second_tick:
                    second, second_tick = i, t
            if best < 0:
                break
            times = data[best]
            start = at[best]
            stop = min(lengths[best], start + left)
            if second >= 0:  # stop where the other partition's next record comes first (bisect_left)
                bound = (second_tick + 1 if best < second else second_tick) * tick
                lo, hi = start, stop
                while lo < hi:
                    mid = (lo + hi) // 2
                    if times[mid] < bound:
                        lo = mid + 1
                    else:
                        hi = mid
                stop = max(start + 1, lo)
            runs.append((labels[best], start, stop))
            at[best] = stop
            cursors[best] = stop
            left -= stop - start
            if stop == lengths[best]:
                break  # its next record is not in hand: read it before deciding more
            ticks[best] = _floor_div(times[stop], tick)
    finally:
        PyMem_Free(ticks)
    return runs
