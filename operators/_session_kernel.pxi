# Included by `_window_kernels.pyx`: session windows, the compiled `session_windows.SessionWindows`.
#
# Per key a `Sessions` of C rows (a key has a handful). What differs from the reference
# is only how timers are kept: the reference pushes a fire and a purge entry on every
# event; here an entry names a session (by `ident`) and is pushed when a session is
# made, merged or fired again. A popped entry whose bounds the session has since
# outgrown is pushed again with the session's current bounds, so sessions still fire
# in ``(end, key, start)`` order and purge at ``end + allowed lateness`` exactly as the
# reference's entries would have them.

cdef struct Session:
    int64_t start, end, ident, revision
    int64_t held_start, held_end  # the bounds RocksDB holds, if `held`
    uint8_t fired, held, dirty

cdef enum:
    MAX_MERGED = 8  # sessions one event may merge on this path (two, unless restored state says otherwise)


cdef class Sessions:
    """The sessions of one key: row i is `rows[i]` with accumulators at ``accs + i * naggs``."""

    cdef str key
    cdef Session* rows
    cdef Acc* accs
    cdef Py_ssize_t n, cap
    cdef int naggs
    cdef int64_t epoch  # the checkpoint epoch in which it last joined the dirty list

    def __cinit__(self, str key, int naggs):
        self.key = key
        self.naggs = naggs
        self.n = self.cap = 0
        self.rows = NULL
        self.accs = NULL
        self.epoch = -1

    def __dealloc__(self):
        PyMem_Free(self.rows)
        PyMem_Free(self.accs)

    cdef Py_ssize_t add(self, int64_t ident) except -1:
        cdef Py_ssize_t row = self.n, cap
        if row == self.cap:
            cap = 4 if self.cap == 0 else self.cap * 2
            self.rows = <Session*>_resized(self.rows, cap * sizeof(Session))
            self.accs = <Acc*>_resized(self.accs, cap * self.naggs * sizeof(Acc) + sizeof(Acc))
            self.cap = cap
        self.rows[row].ident = ident
        self.rows[row].revision = 0
        self.rows[row].fired = self.rows[row].held = self.rows[row].dirty = 0
        self.n = row + 1
        return row

    cdef void remove(self, Py_ssize_t row) noexcept:
        """Drop row `row` (the last row takes its place)."""
        cdef Py_ssize_t last = self.n - 1
        if row != last:
            self.rows[row] = self.rows[last]
            memcpy(self.accs + row * self.naggs, self.accs + last * self.naggs, self.naggs * sizeof(Acc))
        self.n = last

    cdef Py_ssize_t find(self, int64_t ident) noexcept:
        cdef Py_ssize_t i
        for i in range(self.n):
            if self.rows[i].ident == ident:
                return i
        return -1


cdef class SessionKernel(WindowKernel):
    """Session windows per key; the `Operator` protocol, compiled."""

    cdef readonly int64_t gap
    cdef dict sessions
    cdef list fire_at, purge_at, dirty_sets
    cdef int64_t next_ident
    cdef Acc scratch[MAX_FIELDS]

    def __init__(self, *, int64_t gap, **common):
        WindowKernel.__init__(self, **common)
        self.gap = gap
        self.sessions = {}
        self.fire_at, self.purge_at, self.dirty_sets = [], [], []  # entries (time, key, start, ident)
        self.next_ident = 0

    cdef inline int _touch(self, Sessions sset, Py_ssize_t row) except -1:
        sset.rows[row].dirty = 1
        if sset.epoch != self.epoch:
            sset.epoch = self.epoch
            self.dirty_sets.append(sset)
        return 0

    cdef int _add(self, str key, int64_t ts, Num* values) except -1:
        cdef int64_t start = ts, end = ts + self.gap
        cdef Sessions sset
        cdef Py_ssize_t merged[MAX_MERGED]
        cdef Py_ssize_t k = 0, i, j, row
        cdef Session* s
        cdef bint fired = False, emit_now
        cdef int64_t revision = 0
        if self.wm >= end + self.lateness:
            return WAS_LATE
        _fresh(&self.layout, self.scratch)
        _fold(&self.layout, self.scratch, values)
        sset = self.sessions.get(key)
        if sset is not None:
            for i in range(sset.n):
                if sset.rows[i].start < end and start < sset.rows[i].end:
                    if k == MAX_MERGED:
                        return OVERFLOW  # the reference merges any number
                    j = k  # insertion by start: the reference merges by ascending start
                    while j > 0 and sset.rows[merged[j - 1]].start > sset.rows[i].start:
                        merged[j] = merged[j - 1]
                        j -= 1
                    merged[j] = i
                    k += 1
            for j in range(k):  # the event's accumulators first, then each session's
                if _merge_overflows(&self.layout, self.scratch, sset.accs + merged[j] * self.naggs):
                    return OVERFLOW
                _merge(&self.layout, self.scratch, sset.accs + merged[j] * self.naggs)
        else:
            sset = Sessions(key, self.naggs)
            self.sessions[key] = sset
        # everything is computed: commit
        retract = []
        for j in range(k):
            s = sset.rows + merged[j]
            fired = fired or s.fired
            revision = max(revision, s.revision)
            if s.fired:
                retract.append((s.start, s.end, s.revision))
            start, end = min(start, s.start), max(end, s.end)
        if k:
            row = self._drop_merged(sset, merged, k)
        else:
            row = sset.add(self.next_ident)
            self.next_ident += 1
        s = sset.rows + row
        s.start = start
        s.end = end
        memcpy(sset.accs + row * self.naggs, self.scratch, self.naggs * sizeof(Acc))
        self._touch(sset, row)
        emit_now = fired and self.wm >= end
        for old_start, old_end, old_revision in retract:
            if not (emit_now and old_start == start and old_end == end):
                self.emit(key, {"key": key, "start": old_start, "end": old_end, "retracted": True,
                                "revision": old_revision}, old_end - 1)
                revision = max(revision, old_revision + 1)
        s.revision = revision
        if emit_now:
            s.fired = 1
            s.revision += 1
            self._emit(key, start, end, sset.accs + row * self.naggs, s.revision - 1)
        else:
            s.fired = 0
            if k != 1 or fired:  # a session made, merged, or fired before: it needs a timer
                heappush(self.fire_at, (end, key, start, s.ident))
        if k != 1:
            heappush(self.purge_at, (end + self.lateness, key, start, s.ident))
        return ADDED

    cdef Py_ssize_t _drop_merged(self, Sessions sset, Py_ssize_t* merged, Py_ssize_t k) except -1:
        """Drop the merged sessions but the first (the merged session takes its row); its row now."""
        cdef Py_ssize_t keep = merged[0], i, j, top, last
        cdef Py_ssize_t rows[MAX_MERGED]
        for i in range(1, k):
            rows[i - 1] = merged[i]
        for i in range(k - 1):  # highest row first: what moves into a dropped row is never one to drop
            top = i
            for j in range(i + 1, k - 1):
                if rows[j] > rows[top]:
                    top = j
            rows[i], rows[top] = rows[top], rows[i]
            last = sset.n - 1
            self._drop(sset, rows[i])
            if keep == last:
                keep = rows[i]
        return keep

    cdef int _drop(self, Sessions sset, Py_ssize_t row) except -1:
        cdef Session* s = sset.rows + row
        if s.held:
            self.deletes.append((sset.key, s.held_start, s.held_end))
        sset.remove(row)
        return 0

    cdef int _fire(self, Sessions sset, Py_ssize_t row) except -1:
        cdef Session* s = sset.rows + row
        s.fired = 1
        self._touch(sset, row)
        s.revision += 1
        return self._emit(sset.key, s.start, s.end, sset.accs + row * self.naggs, s.revision - 1)

    def on_watermark(self, watermark):
        if self.reference is not None:
            self.reference.on_watermark(watermark)
            return
        self._set_watermark(watermark)
        cdef Sessions sset
        cdef Py_ssize_t row
        cdef Session* s
        fire_at, purge_at = self.fire_at, self.purge_at
        while fire_at and fire_at[0][0] <= watermark:
            end, key, start, ident = heappop(fire_at)
            sset = self.sessions.get(key)
            row = -1 if sset is None else sset.find(ident)
            if row < 0 or sset.rows[row].fired:
                continue  # merged into another session or purged, or fired already
            s = sset.rows + row
            if s.end != end or s.start != start:
                heappush(fire_at, (s.end, key, s.start, ident))  # it grew: fires at its own end
            else:
                self._fire(sset, row)
        while purge_at and purge_at[0][0] <= watermark:
            _, key, start, ident = heappop(purge_at)
            sset = self.sessions.get(key)
            row = -1 if sset is None else sset.find(ident)
            if row < 0:
                continue
            s = sset.rows + row
            if s.end + self.lateness > self.wm:
                heappush(purge_at, (s.end + self.lateness, key, s.start, ident))
                continue
            self._drop(sset, row)
            if sset.n == 0:
                del self.sessions[key]

    def on_end_of_input(self):
        if self.reference is not None:
            self.reference.on_end_of_input()
            return
        cdef Sessions sset
        cdef Py_ssize_t i
        due = []
        for key, sset in self.sessions.items():
            for i in range(sset.n):
                if not sset.rows[i].fired:
                    due.append((sset.rows[i].end, key, sset.rows[i].start, sset.rows[i].ident))
        due.sort()
        for _, key, _, ident in due:
            sset = self.sessions[key]
            self._fire(sset, sset.find(ident))

    # -- state ----------------------------------------------------------------------
    def checkpoint(self, writer):
        if self.reference is not None:
            self.reference.checkpoint(writer)
            return
        cdef Sessions sset
        cdef Py_ssize_t i
        cdef Session* s
        encode_key, encode_state = self.encode_key, self.encode_state
        for key, start, end in self.deletes:
            writer.delete(encode_key(key, start, end))
        self.deletes = []
        for sset in self.dirty_sets:
            for i in range(sset.n):
                s = sset.rows + i
                if not s.dirty:
                    continue
                if s.held and (s.held_start != s.start or s.held_end != s.end):
                    writer.delete(encode_key(sset.key, s.held_start, s.held_end))
                accs = _accumulators(&self.layout, sset.accs + i * self.naggs)
                writer.put(encode_key(sset.key, s.start, s.end), encode_state([accs, bool(s.fired), s.revision]))
                s.held = 1
                s.held_start = s.start
                s.held_end = s.end
                s.dirty = 0
        self.dirty_sets = []
        self.epoch += 1

    def restore(self, entries):
        entries = list(entries)
        cdef Sessions sset
        cdef Py_ssize_t row
        cdef Session* s
        try:
            for raw_key, raw_state in entries:
                key, (start, end) = self.decode_key(raw_key, 2)
                values, fired, revision = self.decode_state(raw_state)
                sset = self.sessions.get(key)
                if sset is None:
                    sset = self.sessions[key] = Sessions(key, self.naggs)
                row = sset.add(self.next_ident)
                self.next_ident += 1
                s = sset.rows + row
                s.start = start
                s.end = end
                s.revision = revision
                s.fired = 1 if fired else 0
                s.held = 1
                s.held_start = start
                s.held_end = end
                _set_accumulators(&self.layout, sset.accs + row * self.naggs, values)
                if not fired:
                    self.fire_at.append((end, key, start, s.ident))
                self.purge_at.append((end + self.lateness, key, start, s.ident))
        except (Unrepresentable, OverflowError):
            self.sessions, self.fire_at, self.purge_at = {}, [], []
            self._migrate().restore(entries)
            return
        heapify(self.fire_at)
        heapify(self.purge_at)

    def state_entries(self):
        if self.reference is not None:
            return self.reference.state_entries()
        cdef Sessions sset
        cdef Py_ssize_t total = 0
        for sset in self.sessions.values():
            total += sset.n
        return total

    cdef int _export(self, object ref) except -1:
        cdef Sessions sset
        cdef Py_ssize_t i
        cdef Session* s
        for key, sset in self.sessions.items():
            windows = ref.sessions[key] = {}
            for i in range(sset.n):
                s = sset.rows + i
                accs = _accumulators(&self.layout, sset.accs + i * self.naggs)
                windows[(s.start, s.end)] = [accs, bool(s.fired), s.revision]
                if not s.fired:
                    ref.fire_at.append((s.end, key, s.start))
                ref.purge_at.append((s.end + self.lateness, key, s.start, s.end))
                if s.dirty:
                    ref.dirty.add((key, s.start, s.end))
                if s.held and (s.dirty or s.held_start != s.start or s.held_end != s.end):
                    ref.dirty.add((key, s.held_start, s.held_end))
        ref.dirty.update(self.deletes)
        heapify(ref.fire_at)
        heapify(ref.purge_at)
        self.sessions, self.fire_at, self.purge_at = {}, [], []
        return 0
