# Included by `_fixed_kernel.pyx`: numbers in C that stand for Python's int and float exactly.
#
# A `Num` is an int64 or a double, tagged with the Python type it stands for (or None,
# for a Min/Max that has seen nothing). Adding and comparing follow Python's rules, so a
# result is the value the Python reference computes, bit for bit: int + int is exact
# (and reported when it would leave 64 bits, instead of wrapping), int + float converts
# the int to the nearest double first, and int < float is decided exactly.

from cpython.long cimport PyLong_FromLongLong
from libc.math cimport floor
from libc.stdint cimport int64_t

cdef extern from *:
    """
    static int sc_add_overflow(long long a, long long b, long long *out) {
        return __builtin_add_overflow(a, b, out);
    }
    """
    bint sc_add_overflow(long long a, long long b, long long *out)

cdef enum:
    # number kinds: what Python type a C number stands for
    N_NONE = 0
    N_INT = 1
    N_FLOAT = 2

cdef struct Num:
    int64_t i
    double d
    int kind

class Unrepresentable(Exception):
    """A value the C state cannot hold exactly: the reference takes over."""


cdef inline int _num_add(Num* acc, Num* v) noexcept:
    """acc += v with Python's int/float rules; 1 if an int64 sum would overflow (acc unchanged)."""
    cdef long long r
    if acc.kind == N_INT and v.kind == N_INT:
        if sc_add_overflow(acc.i, v.i, &r):
            return 1
        acc.i = r
    elif acc.kind == N_INT:
        acc.d = <double>acc.i + v.d
        acc.kind = N_FLOAT
    elif v.kind == N_INT:
        acc.d = acc.d + <double>v.i
    else:
        acc.d = acc.d + v.d
    return 0


cdef inline int _would_overflow(Num* acc, Num* v) noexcept:
    cdef long long r
    return acc.kind == N_INT and v.kind == N_INT and sc_add_overflow(acc.i, v.i, &r)


cdef inline int _cmp_int_float(int64_t i, double d) noexcept:
    """Sign of i - d, exact (as Python compares an int with a float)."""
    cdef double f
    if d >= 9223372036854775808.0:
        return -1
    if d < -9223372036854775808.0:
        return 1
    f = floor(d)
    if i < <int64_t>f:
        return -1
    if i > <int64_t>f:
        return 1
    return 0 if f == d else -1


cdef inline int _cmp(Num* a, Num* b) noexcept:
    """Sign of a - b for two finite numbers."""
    if a.kind == N_INT and b.kind == N_INT:
        return (a.i > b.i) - (a.i < b.i)
    if a.kind == N_FLOAT and b.kind == N_FLOAT:
        return (a.d > b.d) - (a.d < b.d)
    if a.kind == N_INT:
        return _cmp_int_float(a.i, b.d)
    return -_cmp_int_float(b.i, a.d)


cdef object _num_object(Num* v):
    if v.kind == N_INT:
        return v.i
    if v.kind == N_FLOAT:
        return v.d
    return None


cdef int _num_from_object(object value, Num* out) except -1:
    """A finite int or float (what `extract` let through, or restored state) as a Num."""
    if value is None:
        out.kind = N_NONE
    elif type(value) is int:
        if not (-9223372036854775808 <= value <= 9223372036854775807):
            raise Unrepresentable()
        out.i = value
        out.kind = N_INT
    elif type(value) is float:
        out.d = value
        out.kind = N_FLOAT
    else:
        raise Unrepresentable()
    return 0


