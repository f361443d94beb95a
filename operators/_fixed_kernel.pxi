# Included by `_window_kernels.pyx`: tumbling and sliding windows, the compiled `fixed_windows.FixedWindows`.
#
# The same buckets as the reference (``start -> windows``, one timer per bucket,
# stragglers, purge at ``start + size + allowed lateness``), each bucket a `Bucket` of C
# rows; a window joins the next checkpoint when it changes in the current epoch.


cdef enum:
    RECENT = 16  # buckets kept at hand (a sliding event touches size / slide of them)
    MEMO = 64  # windows of one event remembered between the two passes of `_add`


cdef class FixedKernel(WindowKernel):
    """Tumbling (slide == size) or sliding windows; the `Operator` protocol, compiled."""

    cdef readonly int64_t size, slide
    cdef dict buckets
    cdef list recent  # RECENT buckets by (start / slide) % RECENT: the hot ones, without a dict lookup
    cdef list unfired, purge_at, stragglers

    def __init__(self, *, int64_t size, int64_t slide, **common):
        WindowKernel.__init__(self, **common)
        self.size = size
        self.slide = slide
        self.buckets = {}
        self.recent = [None] * RECENT
        self.unfired, self.purge_at, self.stragglers = [], [], []  # as in FixedWindows

    cdef inline Bucket _bucket(self, int64_t start):
        cdef Py_ssize_t slot = (start // self.slide) % RECENT
        cdef Bucket bucket = <Bucket>self.recent[slot]
        if bucket is not None and bucket.start == start:
            return bucket
        bucket = self.buckets.get(start)
        if bucket is not None:
            self.recent[slot] = bucket
        return bucket

    cdef inline void _forget(self, int64_t start):
        """A bucket was purged (or the state handed over): no slot of `recent` may hold it."""
        cdef Py_ssize_t slot = (start // self.slide) % RECENT
        cdef Bucket bucket = <Bucket>self.recent[slot]
        if bucket is not None and bucket.start == start:
            self.recent[slot] = None

    cdef int _new_window(self, str key, int64_t start, Num* values) except -1:
        cdef Bucket bucket = self._bucket(start)
        cdef Py_ssize_t row
        cdef int64_t end = start + self.size
        if bucket is None:
            bucket = Bucket(start, self.naggs)
            self.buckets[start] = bucket
            self.recent[(start // self.slide) % RECENT] = bucket
            heappush(self.purge_at, start)
            if end > self.wm:
                heappush(self.unfired, start)
        row = bucket.add_row(key, self.epoch)
        _fresh(&self.layout, bucket.accs + row * self.naggs)
        _fold(&self.layout, bucket.accs + row * self.naggs, values)
        if end <= self.wm:
            heappush(self.stragglers, (end, key, start))
        return 0

    cdef int _add(self, str key, int64_t ts, Num* values) except -1:
        """Add an event that passed validation: ADDED, WAS_LATE or OVERFLOW (nothing changed).

        Two passes over the event's windows, newest first as the reference goes: the first
        finds each window (and whether a sum would overflow), the second commits. The
        windows found are remembered for the second pass (up to MEMO of them).
        """
        cdef int64_t start = ts - ts % self.slide
        cdef int64_t lowest = ts - self.size
        cdef int64_t first = start
        cdef Bucket bucket
        cdef object row
        cdef Py_ssize_t r, w = 0, j
        cdef PyObject* found_bucket[MEMO]  # borrowed: nothing is purged while an event is added
        cdef Py_ssize_t found_row[MEMO]
        cdef int64_t found_start[MEMO]
        while start > lowest and start >= 0:
            if start + self.size + self.lateness > self.wm:
                bucket = self._bucket(start)
                r = -1
                if bucket is not None:
                    row = bucket.rows.get(key)
                    if row is not None:
                        r = row
                        if _overflows(&self.layout, bucket.accs + r * self.naggs, values):
                            return OVERFLOW
                if w < MEMO:
                    found_bucket[w] = <PyObject*>bucket
                    found_row[w] = r
                    found_start[w] = start
                w += 1
            start -= self.slide
        if w == 0:
            return WAS_LATE
        if w > MEMO:  # very many windows per event: look them up again
            start = first
            while start > lowest and start >= 0:
                if start + self.size + self.lateness > self.wm:
                    bucket = self._bucket(start)
                    row = None if bucket is None else bucket.rows.get(key)
                    self._commit(key, start, values, bucket, -1 if row is None else row)
                start -= self.slide
            return ADDED
        for j in range(w):
            self._commit(key, found_start[j], values, <Bucket>found_bucket[j], found_row[j])
        return ADDED

    cdef inline int _commit(self, str key, int64_t start, Num* values, Bucket bucket, Py_ssize_t r) except -1:
        """Add the event to window (`bucket`, row `r`), or open it (r < 0)."""
        if r < 0:
            return self._new_window(key, start, values)
        _fold(&self.layout, bucket.accs + r * self.naggs, values)
        bucket.meta[r].epoch = self.epoch
        if bucket.meta[r].fired:
            self._emit_row(bucket, r)
        return 0

    # -- firing ---------------------------------------------------------------------
    cdef int _emit_row(self, Bucket bucket, Py_ssize_t row) except -1:
        """Emit the window's current values as its next revision."""
        cdef Meta* meta = bucket.meta + row
        meta.revision += 1
        return self._emit(bucket.keys[row], bucket.start, bucket.start + self.size,
                          bucket.accs + row * self.naggs, meta.revision - 1)

    cdef int _fire(self, Bucket bucket, Py_ssize_t row) except -1:
        bucket.meta[row].fired = 1
        bucket.meta[row].epoch = self.epoch
        return self._emit_row(bucket, row)

    def on_watermark(self, watermark):
        if self.reference is not None:
            self.reference.on_watermark(watermark)
            return
        self._set_watermark(watermark)
        cdef Bucket bucket
        cdef object row
        cdef int64_t size = self.size
        stragglers = self.stragglers
        while stragglers and stragglers[0][0] <= watermark:
            _, key, start = heappop(stragglers)
            bucket = self.buckets.get(start)
            row = None if bucket is None else bucket.rows.get(key)
            if row is not None and not bucket.meta[<Py_ssize_t>row].fired:
                self._fire(bucket, row)
        unfired = self.unfired
        while unfired and unfired[0] + size <= watermark:
            start = heappop(unfired)
            bucket = self.buckets.get(start)
            if bucket is None:
                continue
            rows = bucket.rows
            for key in sorted(rows):
                row = rows[key]
                if not bucket.meta[<Py_ssize_t>row].fired:
                    self._fire(bucket, row)
        purge_at = self.purge_at
        cdef int64_t lateness = self.lateness
        cdef Py_ssize_t r
        while purge_at and purge_at[0] + size + lateness <= watermark:
            start = heappop(purge_at)
            bucket = self.buckets.pop(start, None)
            if bucket is None:
                continue
            self._forget(start)
            for r in range(bucket.n):
                if bucket.meta[r].persisted:
                    self.deletes.append((bucket.keys[r], start))

    def on_end_of_input(self):
        if self.reference is not None:
            self.reference.on_end_of_input()
            return
        cdef Bucket bucket
        cdef Py_ssize_t r
        due = []
        for start, bucket in self.buckets.items():
            for r in range(bucket.n):
                if not bucket.meta[r].fired:
                    due.append((start + self.size, bucket.keys[r], start))
        due.sort()
        for _, key, start in due:
            bucket = self.buckets[start]
            self._fire(bucket, bucket.rows[key])

    # -- state ----------------------------------------------------------------------
    def checkpoint(self, writer):
        if self.reference is not None:
            self.reference.checkpoint(writer)
            return
        cdef Bucket bucket
        cdef Py_ssize_t r
        cdef int64_t epoch = self.epoch
        put, encode_key, encode_state = writer.put, self.encode_key, self.encode_state
        for key, start in self.deletes:
            writer.delete(encode_key(key, start))
        self.deletes = []
        for bucket in self.buckets.values():
            for r in range(bucket.n):
                if bucket.meta[r].epoch == epoch:
                    accs = _accumulators(&self.layout, bucket.accs + r * self.naggs)
                    put(encode_key(bucket.keys[r], bucket.start),
                        encode_state([accs, bool(bucket.meta[r].fired), bucket.meta[r].revision]))
                    bucket.meta[r].persisted = 1
        self.epoch += 1

    def restore(self, entries):
        entries = list(entries)
        cdef Bucket bucket
        cdef Py_ssize_t row
        restored = []
        for raw_key, raw_state in entries:
            key, (start,) = self.decode_key(raw_key, 1)
            restored.append((key, start, self.decode_state(raw_state)))
        try:
            for key, start, (values, fired, revision) in restored:
                bucket = self.buckets.get(start)
                if bucket is None:
                    bucket = self.buckets[start] = Bucket(start, self.naggs)
                row = bucket.add_row(key, -1)
                bucket.meta[row].fired = 1 if fired else 0
                bucket.meta[row].revision = revision
                bucket.meta[row].persisted = 1
                _set_accumulators(&self.layout, bucket.accs + row * self.naggs, values)
        except (Unrepresentable, OverflowError):
            self.buckets = {}
            self.recent = [None] * RECENT
            self._migrate().restore(entries)
            return
        self.unfired = sorted(self.buckets)
        self.purge_at = sorted(self.buckets)

    def state_entries(self):
        if self.reference is not None:
            return self.reference.state_entries()
        cdef Bucket bucket
        cdef Py_ssize_t total = 0
        for bucket in self.buckets.values():
            total += bucket.n
        return total

    cdef int _export(self, object ref) except -1:
        cdef Bucket bucket
        cdef Py_ssize_t r
        ref.epoch = self.epoch
        for start, bucket in self.buckets.items():
            windows = ref.buckets[start] = {}
            for r in range(bucket.n):
                key = bucket.keys[r]
                windows[key] = [_accumulators(&self.layout, bucket.accs + r * self.naggs), bool(bucket.meta[r].fired),
                                bucket.meta[r].revision, bucket.meta[r].epoch, bool(bucket.meta[r].persisted)]
                if bucket.meta[r].epoch == self.epoch:
                    ref.dirty.add((key, start))
        ref.dirty.update(self.deletes)
        ref.unfired[:] = self.unfired
        ref.purge_at[:] = self.purge_at
        ref.stragglers[:] = self.stragglers
        self.buckets = {}
        self.recent = [None] * RECENT
        return 0
