# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of `streamcore.io.log.split`: the same functions, one bytes object per record
made straight from the frame's memory, without slice objects or a list of offsets."""

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE


def split_values(bytes body, Py_ssize_t pos, unsigned int[:] lengths):
    cdef Py_ssize_t i, n = lengths.shape[0], size = PyBytes_GET_SIZE(body)
    cdef const char* data = PyBytes_AS_STRING(body)
    cdef list out = [None] * n
    cdef Py_ssize_t length
    for i in range(n):
        length = lengths[i]
        if pos + length > size:
            raise ValueError("a value runs past the end of the frame body")
        out[i] = PyBytes_FromStringAndSize(data + pos, length)
        pos += length
    return out


def split_keys(bytes body, Py_ssize_t pos, int[:] lengths):
    cdef Py_ssize_t i, n = lengths.shape[0], size = PyBytes_GET_SIZE(body)
    cdef const char* data = PyBytes_AS_STRING(body)
    cdef list out = [None] * n
    cdef Py_ssize_t length
    for i in range(n):
        length = lengths[i]
        if length >= 0:
            if pos + length > size:
                raise ValueError("a key runs past the end of the frame body")
            out[i] = PyBytes_FromStringAndSize(data + pos, length)
            pos += length
    return out, pos
