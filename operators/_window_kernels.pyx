# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Window operators with built-in aggregations, their state in C arrays: tumbling, sliding, session.

The compiled twins of `fixed_windows.FixedWindows` and `session_windows.SessionWindows`
on their fused path, chosen by `compiled_windows`: the same windows, results, late
events and state, which ``tests/unit/test_compiled_windows.py`` checks against the
Python references on random input. What they do differently is where the state lives
and how records come in:

* windows are C rows: the fixed kernel's per window start (`Bucket`), the session
  kernel's per key (`Sessions`), one `Acc` per aggregation each; numbers are int64 or
  double with the Python type they stand for, so results and checkpoints are the
  Python values bit for bit;
* `scan` reads records straight from their JSON bytes (`_scan_fields`): a flat object
  of UTF-8 strings, plain numbers and literals is read without building a dict; any
  other record (escapes, bytes that are not UTF-8, nesting, a missing or mistyped field, ...) is left
  to the task's Python path, which runs it through `process` on the same state;
* a value C cannot hold exactly (an integer beyond 64 bits, a sum that would
  overflow) hands the whole state to the Python reference (`_migrate`), which goes on
  from there: the kernel covers the common domain, the reference all of it.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport floor, isfinite
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t, uint8_t
from libc.string cimport memcmp, memcpy

from heapq import heapify, heappop, heappush

include "_window_numbers.pxi"
include "_json_fields.pxi"
include "_window_buckets.pxi"
include "_kernel_base.pxi"
include "_fixed_kernel.pxi"
include "_session_kernel.pxi"

MAX_AGGREGATIONS = MAX_FIELDS
"""Aggregations, and distinct fields they read, a kernel holds (`compiled_windows` falls back beyond)."""
