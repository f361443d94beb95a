# The feature kernel's numbers: a Python int (within int64) or float accumulator, and its arithmetic.
# Included by _feature_kernel.pyx (its cimports and constants are in scope here).

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
