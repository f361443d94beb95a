# The feature kernel's JSON writer: an entity's reference state written straight from its words.
# Included by _feature_kernel.pyx (its cimports and constants are in scope here).

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
