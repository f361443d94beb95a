# Included by `_fixed_kernel.pyx`: an event's time, key and numbers read straight from its JSON bytes.
#
# `_scan_fields` reads a flat JSON object whose strings are UTF-8 without escapes,
# whose values are strings, numbers, true, false or null, and finds in it the fields a
# window needs. It reads exactly what orjson reads (a field given twice: the last one;
# a decimal: correctly rounded) or gives up, returning 0, on anything else: an escape,
# bytes that are not UTF-8, nesting, a missing or mistyped field, a number that may not fit 64
# bits, any malformed byte. A record it gives up on goes through the task's Python path,
# which decides (and names) what is wrong with it, if anything.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.ref cimport PyObject
from libc.math cimport isfinite
from libc.string cimport memcmp, memcpy

cdef extern from "Python.h":
    # overflow_exception NULL: an out-of-range decimal reads as +-inf instead of raising
    double PyOS_string_to_double(const char* s, char** endptr, PyObject* overflow_exception) except? -1.0

cdef enum:
    MAX_FIELDS = 8  # values besides event time and key

cdef struct FieldNames:
    # the UTF-8 names of the fields to find: 0 the event time, 1 the key, 2.. the values
    const unsigned char* name[MAX_FIELDS + 2]
    Py_ssize_t length[MAX_FIELDS + 2]
    int count  # values

cdef struct Scanned:
    int64_t ts
    Py_ssize_t key_at
    Py_ssize_t key_len
    Num values[MAX_FIELDS]


cdef double _POW10[23]
for _i in range(23):
    _POW10[_i] = float(10**_i)  # each exact


cdef inline Py_ssize_t _skip_ws(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) noexcept:
    while pos < n and (p[pos] == 32 or p[pos] == 10 or p[pos] == 13 or p[pos] == 9):
        pos += 1
    return pos


cdef inline Py_ssize_t _string_end(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) noexcept:
    """Index of the closing quote of a string starting at `pos`, or -1: an escape, a control
    character or bytes that are not UTF-8 (orjson refuses those) leave it to the Python path."""
    cdef unsigned char c
    cdef Py_ssize_t width
    while pos < n:
        c = p[pos]
        if c == 34:  # "
            return pos
        if c < 32 or c == 92:  # control, backslash
            return -1
        if c < 128:
            pos += 1
            continue
        width = _utf8_width(p, pos, n)
        if width < 0:
            return -1
        pos += width
    return -1


cdef inline Py_ssize_t _utf8_width(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) noexcept:
    """Bytes of the well-formed UTF-8 sequence at `pos` (RFC 3629: no overlong forms, no
    surrogates, nothing past U+10FFFF), or -1."""
    cdef unsigned char c = p[pos], lo = 0x80, hi = 0xBF
    cdef Py_ssize_t width, i
    if 0xC2 <= c <= 0xDF:
        width = 2
    elif 0xE0 <= c <= 0xEF:
        width = 3
        if c == 0xE0:
            lo = 0xA0
        elif c == 0xED:
            hi = 0x9F  # U+D800..U+DFFF are surrogates
    elif 0xF0 <= c <= 0xF4:
        width = 4
        if c == 0xF0:
            lo = 0x90
        elif c == 0xF4:
            hi = 0x8F
    else:
        return -1
    if pos + width > n or not (lo <= p[pos + 1] <= hi):
        return -1
    for i in range(2, width):
        if not (0x80 <= p[pos + i] <= 0xBF):
            return -1
    return width


cdef Py_ssize_t _number(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n, Num* out) except -2:
    """Parse a JSON number at `pos` into `out`; the index after it, or -1 (the Python path)."""
    cdef Py_ssize_t start = pos, digits_at, frac_digits = 0, int_digits
    cdef bint negative = False, is_float = False
    cdef int64_t mantissa = 0
    cdef int significant = 0, exp_value = 0, exp_sign = 1, exponent
    cdef char buf[64]
    cdef double value
    if p[pos] == 45:  # -
        negative = True
        pos += 1
    if pos >= n:
        return -1
    digits_at = pos
    if p[pos] == 48:  # a leading 0 stands alone
        pos += 1
    elif 49 <= p[pos] <= 57:
        while pos < n and 48 <= p[pos] <= 57:
            if significant < 19:
                mantissa = mantissa * 10 + (p[pos] - 48)
            if significant > 0 or p[pos] != 48:
                significant += 1
            pos += 1
    else:
        return -1
    int_digits = pos - digits_at
    if pos < n and p[pos] == 46:  # .
        is_float = True
        pos += 1
        if pos >= n or not (48 <= p[pos] <= 57):
            return -1
        while pos < n and 48 <= p[pos] <= 57:
            if significant < 19:
                mantissa = mantissa * 10 + (p[pos] - 48)
                frac_digits += 1
            if significant > 0 or p[pos] != 48:
                significant += 1
            pos += 1
    if pos < n and (p[pos] == 101 or p[pos] == 69):  # e E
        is_float = True
        pos += 1
        if pos < n and (p[pos] == 43 or p[pos] == 45):
            if p[pos] == 45:
                exp_sign = -1
            pos += 1
        if pos >= n or not (48 <= p[pos] <= 57):
            return -1
        while pos < n and 48 <= p[pos] <= 57:
            if exp_value < 100000:
                exp_value = exp_value * 10 + (p[pos] - 48)
            pos += 1
    if not is_float:
        if int_digits > 18:
            return -1  # may not fit 64 bits: the Python path decides
        out.i = -mantissa if negative else mantissa
        out.kind = N_INT
        return pos
    exponent = exp_sign * exp_value - frac_digits
    if significant <= 15 and -22 <= exponent <= 22:
        # exact: an integer below 2**53 times or over an exact power of ten, rounded once
        value = <double>mantissa
        value = value * _POW10[exponent] if exponent >= 0 else value / _POW10[-exponent]
    else:
        if pos - start >= 63:
            return -1
        memcpy(buf, p + start, pos - start)
        buf[pos - start] = 0
        value = PyOS_string_to_double(buf, NULL, NULL)  # Python's own correctly rounded reading
        if not isfinite(value):
            return -1  # 1e400: not a finite number to orjson either; the Python path says which
        out.d = value
        out.kind = N_FLOAT
        return pos
    out.d = -value if negative else value
    out.kind = N_FLOAT
    return pos


cdef inline Py_ssize_t _literal(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) noexcept:
    if pos + 4 <= n and (memcmp(p + pos, b"true", 4) == 0 or memcmp(p + pos, b"null", 4) == 0):
        return pos + 4
    if pos + 5 <= n and memcmp(p + pos, b"false", 5) == 0:
        return pos + 5
    return -1


cdef int _scan_fields(bytes raw, FieldNames* names, Scanned* out) except -1:
    """Read the event time, key and values of one record into `out`; 0: the Python path decides."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t pos, name_at, name_len, end, f
    cdef unsigned int found = 0
    cdef unsigned int wanted = (<unsigned int>1 << (names.count + 2)) - 1
    cdef Num num
    cdef int which
    pos = _skip_ws(p, 0, n)
    if pos >= n or p[pos] != 123:  # {
        return 0
    pos = _skip_ws(p, pos + 1, n)
    if pos < n and p[pos] == 125:
        return 0  # {}: no event time
    while True:
        if pos >= n or p[pos] != 34:
            return 0
        name_at = pos + 1
        end = _string_end(p, name_at, n)
        if end < 0:
            return 0
        name_len = end - name_at
        pos = _skip_ws(p, end + 1, n)
        if pos >= n or p[pos] != 58:  # :
            return 0
        pos = _skip_ws(p, pos + 1, n)
        if pos >= n:
            return 0
        which = -1  # 0 ts, 1 key, 2.. a value
        for f in range(names.count + 2):
            if name_len == names.length[f] and memcmp(p + name_at, names.name[f], name_len) == 0:
                which = f
                break
        if p[pos] == 34:
            end = _string_end(p, pos + 1, n)
            if end < 0:
                return 0
            if which == 1:
                out.key_at = pos + 1
                out.key_len = end - pos - 1
                found |= 2
            elif which >= 0:
                return 0  # a string where a number belongs: the Python path names it
            pos = end + 1
        elif p[pos] == 45 or 48 <= p[pos] <= 57:
            pos = _number(p, pos, n, &num)
            if pos < 0:
                return 0
            if which == 0:
                if num.kind != N_INT or num.i < 0:
                    return 0
                out.ts = num.i
                found |= 1
            elif which >= 2:
                out.values[which - 2] = num
                found |= <unsigned int>1 << which
            elif which == 1:
                return 0
        else:
            pos = _literal(p, pos, n)
            if pos < 0 or which >= 0:
                return 0
        pos = _skip_ws(p, pos, n)
        if pos >= n:
            return 0
        if p[pos] == 44:  # ,
            pos = _skip_ws(p, pos + 1, n)
            continue
        if p[pos] == 125:  # }
            break
        return 0
    if _skip_ws(p, pos + 1, n) != n:
        return 0
    return 1 if (found & wanted) == wanted else 0
