# Included by `_window_kernels.pyx`: what the fixed and session kernels share.
#
# `WindowKernel` is the part of the `Operator` protocol that does not depend on the
# window kind: `process` (one decoded event: the task's Python path), `scan` (runs of
# records read straight from the records' bytes, see `streamcore.dataflow.operator.RawScan`),
# the watermark, emitting a window's result, and handing the whole state to the Python
# reference (`_migrate`) the moment a value leaves what C holds exactly. A kind adds
# `_add` (one validated event), firing, checkpoints and `_export` (its state, in the
# reference's structures).

cdef enum:
    # scan outcomes (`streamcore.dataflow.operator` has the same numbers)
    SCAN_DONE = 0
    SCAN_SLOW = 1
    SCAN_LATE = 2
    SCAN_MOVED = 3
    SCAN_ARRIVAL = 4
    # what adding an event did
    ADDED = 0
    WAS_LATE = 1
    OVERFLOW = 2


cdef inline int64_t _time_bound(object time) except? -1:
    """An event-time bound as int64: an int as it is, +-inf (or beyond 64 bits) as the extreme."""
    if type(time) is int and -9223372036854775808 <= time <= 9223372036854775807:
        return time
    if type(time) is float and -9.2e18 < time < 9.2e18:
        return <int64_t>floor(time)  # an event time t is above x exactly when it is above floor(x)
    return INT64_MAX if time > 0 else INT64_MIN


cdef class WindowKernel:
    """The kind-independent half of a compiled window operator."""

    cdef readonly int64_t lateness
    cdef int64_t wm, epoch
    cdef object watermark_value
    cdef int naggs, nfields
    cdef Layout layout
    cdef list deletes
    cdef object emit, results, extract, admit, encode_key, encode_state, decode_key, decode_state
    cdef bint check_future
    cdef object make_reference
    cdef readonly object reference
    cdef list field_names, name_bytes
    cdef FieldNames names

    def __init__(self, *, int64_t lateness, kinds, field_of, fields, emit, results, extract, admit, check_future,
                 encode_key, decode_key, encode_state, decode_state, make_reference):
        """`kinds`: each aggregation's kind (0 count, 1 sum, 2 min, 3 max, 4 mean); `field_of`: the
        index in `fields` (the names `extract` reads, in its order) of the value it reads (-1: count)."""
        cdef int i
        if len(kinds) > MAX_FIELDS or len(fields) > MAX_FIELDS:
            raise ValueError("too many aggregations for the compiled kernel")
        self.lateness = lateness
        self.naggs = len(kinds)
        self.nfields = len(fields)
        self.field_names = list(fields)
        self.layout.naggs = self.naggs
        for i in range(self.naggs):
            self.layout.kinds[i] = kinds[i]
            self.layout.field_of[i] = field_of[i]
        self.wm = INT64_MIN
        self.watermark_value = float("-inf")
        self.epoch = 0
        self.deletes = []
        self.emit, self.results, self.extract, self.admit = emit, results, extract, admit
        self.check_future = check_future
        self.encode_key, self.decode_key = encode_key, decode_key
        self.encode_state, self.decode_state = encode_state, decode_state
        self.make_reference = make_reference
        self.reference = None
        self.name_bytes = []

    @property
    def watermark(self):
        return self.watermark_value if self.reference is None else self.reference.watermark

    cdef int _add(self, str key, int64_t ts, Num* values) except -1:
        """Add an event that passed validation: ADDED, WAS_LATE or OVERFLOW (nothing changed)."""
        raise NotImplementedError

    cdef int _export(self, object reference) except -1:
        """Move every window into `reference` (a fresh Python operator of the same kind)."""
        raise NotImplementedError

    cdef int _set_watermark(self, object watermark) except -1:
        self.watermark_value = watermark
        if type(watermark) is float:
            self.wm = INT64_MAX if watermark > 9.2e18 else INT64_MIN if watermark < -9.2e18 else <int64_t>floor(watermark)
        else:
            self.wm = watermark
        return 0

    cdef int _emit(self, str key, int64_t start, int64_t end, Acc* accs, int64_t revision) except -1:
        """Emit a window's values as revision `revision` (the reference's ``emit_result``)."""
        out = {"key": key, "start": start, "end": end}
        self.results(out, _accumulators(&self.layout, accs))
        out["revision"] = revision
        self.emit(key, out, end - 1)
        return 0

    def _migrate(self):
        """Hand every window to the Python reference, which carries on from here."""
        reference = self.make_reference()
        reference.watermark = self.watermark_value
        self._export(reference)
        self.reference = reference
        return reference

    # -- events -------------------------------------------------------------------
    def process(self, key, event, ts):
        """One decoded event (the task's Python path, and every record after a migration)."""
        cdef Num values[MAX_FIELDS]
        cdef int status
        if self.reference is not None:
            return self.reference.process(key, event, ts)
        extracted = self.extract(event)  # SchemaError before anything changes
        if self.check_future:
            self.admit(ts)
        try:
            if self.nfields == 1:
                _num_from_object(extracted, &values[0])
            elif self.nfields > 1:
                for i in range(self.nfields):
                    _num_from_object(extracted[i], &values[i])
        except Unrepresentable:
            return self._migrate().process(key, event, ts)
        status = self._add(key, ts, values)
        if status == OVERFLOW:
            return self._migrate().process(key, event, ts)
        return False if status == WAS_LATE else None

    def raw_scanner(self, str ts_field, str key_field):
        """`scan` for records timed and keyed by these fields, or None if a name could not appear
        in JSON unescaped (a quote, a backslash, a control character, an unpaired surrogate)."""
        cdef int i
        names = [ts_field, key_field, *self.field_names]
        if not all(name.isprintable() and '"' not in name and "\\" not in name for name in names):
            return None
        try:
            self.name_bytes = [name.encode() for name in names]  # kept: `names` points into them
        except UnicodeEncodeError:
            return None
        for i in range(len(names)):
            self.names.name[i] = <const unsigned char*>PyBytes_AS_STRING(self.name_bytes[i])
            self.names.length[i] = PyBytes_GET_SIZE(self.name_bytes[i])
        self.names.count = self.nfields
        return self.scan

    def scan(self, list spans, Py_ssize_t k, Py_ssize_t i, object future_limit_time, object tracker, set arrived):
        """Apply the records of `spans` (``(batch, start, stop)``) from record `i` of span `k`
        on, until one needs the task: ``(span, index, outcome, ts)``.

        Outcomes: DONE (all applied); ARRIVAL (span `span` is the first of a partition not in
        `arrived`: nothing applied from it yet); SLOW (record `index` untouched: run it
        through the Python path); LATE (record `index` is late: write it to the late
        output); MOVED (record `index` was applied and may move the watermark W: the task
        observes it). `tracker` is the task's `WatermarkTracker`, which does not change
        during a call. A record above its partition's `moves_above` raises that partition's
        watermark; it can move W only if the partition is live and was at or below W. For a
        run of any other partition, the kernel raises its watermark itself, to the record's
        time less the out-of-orderness as `observe` would (W stays), instead of returning
        for each such record.
        """
        cdef Py_ssize_t count = len(spans), n
        cdef tuple span
        cdef list values
        cdef dict watermarks = tracker.wm
        cdef int64_t out_of_orderness = tracker.out_of_orderness_ms
        cdef tuple live = tracker.live
        watermark = tracker.watermark
        cdef Scanned rec
        cdef int status
        cdef bint quiet, raised
        cdef object raw, partition
        cdef const char* p
        cdef int64_t future_limit = _time_bound(future_limit_time)
        cdef int64_t moves_above
        while k < count:
            span = <tuple>spans[k]
            batch = span[0]
            partition = batch.partition
            if partition not in arrived:
                return (k, i, SCAN_ARRIVAL, 0)
            n = span[2]
            raised = False
            if self.reference is not None:
                if i < n:
                    return (k, i, SCAN_SLOW, 0)
            else:
                values = batch.values
                n = min(n, len(values))
                moves_above = _time_bound(tracker.moves_above(partition))  # +inf where events move nothing
                quiet = watermarks[partition] > watermark or partition not in live
            while i < n:
                raw = values[i]
                if type(raw) is not bytes or not _scan_fields(<bytes>raw, &self.names, &rec) or rec.ts > future_limit:
                    status = SCAN_SLOW
                    break
                p = PyBytes_AS_STRING(raw)
                status = self._add(PyUnicode_DecodeUTF8(p + rec.key_at, rec.key_len, NULL), rec.ts, rec.values)
                if status == OVERFLOW:
                    status = SCAN_SLOW
                    break
                if status == WAS_LATE:
                    status = SCAN_LATE
                    break
                if rec.ts > moves_above:
                    if not quiet:
                        status = SCAN_MOVED
                        break
                    moves_above, raised = rec.ts, True
                i += 1
            else:
                status = SCAN_DONE
            if raised:
                watermarks[partition] = moves_above - out_of_orderness
            if status != SCAN_DONE:
                return (k, i, status, rec.ts if status != SCAN_SLOW else 0)
            k += 1
            if k < count:
                i = (<tuple>spans[k])[1]
        return (k, i, SCAN_DONE, 0)
