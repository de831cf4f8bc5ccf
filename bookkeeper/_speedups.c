/*
 * bookkeeper._speedups -- OPTIONAL C accelerator for L2Book's hot loops and the OKX checksum.
 *
 * Why this exists
 * ---------------
 * benchmarks/RESULTS.md (2026-11-26, pure Python, 2 shared cores, CPython 3.11): the Binance
 * pipeline (raw depthUpdate bytes -> parse -> sequence check -> apply) ran at 2.24x ccxt
 * against a >= 5x target; ~11 us of its ~17 us per message was L2Book.apply_delta (~310 ns per
 * level: a Python-level bisect on the sorted key list costs ~11 Python float compares per
 * insert/delete, and ~80 % of real level updates are inserts or deletes). top(25) cost ~3.2 us
 * (50 dict lookups + 50 tuples in a comprehension), and top_raw(25) + okx_checksum ~5.1 us
 * against a <= 3 us target. Those loops are interpreter overhead, not algorithmic work.
 * With this module (same benches, same machine, 2026-11-26): apply at 10k levels/side 172 ns per
 * level (target <= 200, met), top_raw(25) + okx_checksum 2.15 us (<= 3, met), pipeline 3.70x
 * ccxt (>= 5x: NOT met -- the typed decode alone is ~4 us of the ~10.6 us left), with a top-25
 * read 2.74x (>= 3x: not met), replay 4.50x (>= 4x, met). Pure Python: 324 ns, 5.2 us, 2.47x,
 * 1.79x, 4.11x. Second session (C Binance decoder, top_both): pipeline 4.23..4.37x (>= 5x still
 * NOT met), with top-25 3.12..3.16x (met). Details and commands: benchmarks/RESULTS.md.
 *
 * What it does
 * ------------
 * It works on L2Book's OWN containers (a dict price -> size and a sorted list of keys per side;
 * asks are keyed by the negated price so the best level is last on both sides): nothing new is
 * stored, so the pure-Python path and this one are interchangeable at any moment and are tested
 * against each other (tests/speedups/).
 *
 *   apply_levels(bsizes, bkeys, bids, asizes, akeys, asks)
 *       The loops of L2Book.apply_delta (book without exchange strings), exactly as the Python
 *       code: bids and asks that are not a list or tuple are listed first; then EVERY level of
 *       both sides is checked (``0.0 < p < inf and 0.0 <= s < inf``) before any is
 *       applied, and the first bad one is returned as ``(side, price, size)`` with nothing
 *       touched, so Python poisons the book with the same message; then level by level:
 *       ``s > 0.0`` -> set (insort the key if the price is new); ``s == 0.0`` -> delete if
 *       present. Returns None when all levels were applied.
 *   apply_levels_raw(...)  the same for books that keep the exchange strings.
 *   top_side(sizes, keys, n, negate)      best-first list of (price, size) tuples.
 *   top_both(bsizes, bkeys, asizes, akeys, n)   L2Book.top(n) in one call (up to 64 keys per
 *                         side are snapshotted on the C stack instead of in a sliced list).
 *   binance_depth(frame, ts_recv_ns, BookDelta)  a strict-subset decoder of Binance depthUpdate
 *                         frames for adapters/binance/parse.py (BookDelta, or None = "not
 *                         handled": msgspec decides); see its section below.
 *   binance_depth_apply(frame, symbol, model, local, bsizes, bkeys, asizes, akeys)
 *                         the fused steady state of a synced Binance book for
 *                         BookSession.apply_frame_fast: the same decoder into C doubles, ONLY the
 *                         APPLY case of Sequencer's rule, the apply_levels loop; (U, u) when
 *                         applied, else an int and nothing touched (the normal path decides).
 *                         Pipeline 4.2x -> 5.6x ccxt; see its section below.
 *   top_raw_side(raw, keys, n, negate)    best-first list of the stored raw tuples.
 *   okx_crc(bids, asks)   OKX/Bitget CRC32 (signed) of the top-25 interleaved raw strings, or
 *                         NotImplemented for inputs outside the fast path (non-ASCII text,
 *                         non-str fields, levels that are not 2-tuples/lists, ...): the Python
 *                         implementation then handles them, so results are identical.
 *
 * How (each kept only because the benches showed it helps): the level loop runs in C with one
 * dict lookup per level in the common cases (PyDict_SetDefault for a new price, a single pop for
 * a delete); the float bisect compares C doubles with CPython's own probe sequence and prefetches
 * both candidate next probes (a probe is a dependent slot -> object -> value load chain); list
 * inserts/deletes are one memmove (CPython 3.11's list.insert shifts one pointer at a time, and
 * deep levels -- near index 0 -- are inserted all the time); the next level's objects are
 * prefetched. Tried and dropped: a packed-double copy of each key list for the bisect (the
 * second memmove per insert/delete cost what the faster search saved).
 *
 * Semantics kept identical to the Python code: comparisons of two exact floats are done on the
 * C doubles (which is exactly what CPython's float richcompare does, NaN included); anything
 * else goes through PyObject_RichCompareBool, so non-float / non-integral keys behave as in
 * Python. Dict operations use the public dict API (same hashing/equality as Python). Every
 * error propagates as a Python exception; unpacking errors use CPython 3.11's messages.
 * Reference counting: every borrowed object that is used across a call which may run Python
 * code is INCREF'd first.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Cache hints only: no semantic effect. */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(addr) __builtin_prefetch((const void *)(addr))
#else
#define PREFETCH(addr) ((void)0)
#endif

static PyObject *g_zero;   /* the float 0.0 */
static PyObject *g_crc32;  /* zlib.crc32 */
static PyObject *g_bid;    /* "bid" */
static PyObject *g_ask;    /* "ask" */

/* ------------------------------------------------------------------ helpers */

/* -x as Python computes it (new reference). */
static inline PyObject *
negated(PyObject *x)
{
    if (PyFloat_CheckExact(x))
        return PyFloat_FromDouble(-PyFloat_AS_DOUBLE(x));
    return PyNumber_Negative(x);
}

/* The sorted-list key of price p (new reference), as the Python code computes it:
 * KEY_SAME: p; KEY_NEG: -p (apply_delta's asks); KEY_MUL_POS / KEY_MUL_NEG: 1.0 * p / -1.0 * p
 * (_apply_raw's ``sign * p``; for exact floats a new float with the same / negated value, which
 * is bit-identical to what the multiplication gives, NaN included). */
enum { KEY_SAME = 0, KEY_NEG = 1, KEY_MUL_POS = 2, KEY_MUL_NEG = 3 };
static PyObject *g_one, *g_minus_one;

static inline PyObject *
key_of(PyObject *p, int mode)
{
    if (mode == KEY_SAME) {
        Py_INCREF(p);
        return p;
    }
    if (mode == KEY_NEG || (mode == KEY_MUL_NEG && PyFloat_CheckExact(p)))
        return negated(p);
    if (PyFloat_CheckExact(p))  /* a NEW object, as 1.0 * p is (it matters for NaN keys: identity) */
        return PyFloat_FromDouble(PyFloat_AS_DOUBLE(p));
    return PyNumber_Multiply(mode == KEY_MUL_POS ? g_one : g_minus_one, p);
}

/* bisect.bisect_right (right=1) / bisect.bisect_left (right=0) of x in list, with the same
 * probes and the same comparisons as CPython's _bisect (``x < item`` for right, ``item < x``
 * for left). -1 on error. Inlined into the two wrappers below, so ``right`` is a constant. */
static inline Py_ssize_t
bisect_impl(PyObject *list, PyObject *x, const int right)
{
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(list);
    int xf = PyFloat_CheckExact(x);
    double xd = xf ? PyFloat_AS_DOUBLE(x) : 0.0;
    while (lo < hi) {
        Py_ssize_t mid = ((size_t)lo + hi) / 2;
        if (mid >= PyList_GET_SIZE(list)) {
            PyErr_SetString(PyExc_IndexError, "list index out of range");
            return -1;
        }
        if (xf) {
            /* A probe is a dependent chain (slot -> float object -> value). Start loading the
             * objects of BOTH possible next probes now, so the next probe rarely waits. */
            Py_ssize_t n_ = PyList_GET_SIZE(list);
            Py_ssize_t a_ = ((size_t)lo + mid) / 2, b_ = ((size_t)mid + 1 + hi) / 2;
            if (a_ < n_)
                PREFETCH(PyList_GET_ITEM(list, a_));
            if (b_ < n_)
                PREFETCH(PyList_GET_ITEM(list, b_));
        }
        PyObject *item = PyList_GET_ITEM(list, mid);
        int go_right;
        if (xf && PyFloat_CheckExact(item)) {
            double id = PyFloat_AS_DOUBLE(item);
            go_right = right ? !(xd < id) : (id < xd);
            lo = go_right ? mid + 1 : lo;  /* branch-free: the last probes are unpredictable */
            hi = go_right ? hi : mid;
            continue;
        }
        Py_INCREF(item);
        int res = right ? PyObject_RichCompareBool(x, item, Py_LT) : PyObject_RichCompareBool(item, x, Py_LT);
        Py_DECREF(item);
        if (res < 0)
            return -1;
        go_right = right ? !res : res;
        if (go_right)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static Py_ssize_t
bisect_right(PyObject *list, PyObject *x)
{
    return bisect_impl(list, x, 1);
}

static Py_ssize_t
bisect_left(PyObject *list, PyObject *x)
{
    return bisect_impl(list, x, 0);
}

/* ``d.pop(key, None)``: new reference to the value or to None; NULL on error. One lookup. */
static inline PyObject *
dict_pop_or_none(PyObject *d, PyObject *key)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *v;
    if (PyDict_Pop(d, key, &v) < 0)
        return NULL;
    if (v == NULL)
        Py_RETURN_NONE;
    return v;
#else
    return _PyDict_Pop(d, key, Py_None);
#endif
}

/* ``p, s = item``. Returns 0 when *p, *s are BORROWED from the tuple ``item`` (the caller keeps
 * item alive meanwhile), 1 when they are new references, -1 on error (CPython 3.11 messages). */
static int
unpack2(PyObject *item, PyObject **p, PyObject **s)
{
    if ((PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2)) {
        *p = PyTuple_GET_ITEM(item, 0);
        *s = PyTuple_GET_ITEM(item, 1);
        return 0;
    }
    if (PyList_CheckExact(item) && PyList_GET_SIZE(item) == 2) {
        *p = PyList_GET_ITEM(item, 0);
        *s = PyList_GET_ITEM(item, 1);
        Py_INCREF(*p);
        Py_INCREF(*s);
        return 1;
    }
    PyObject *it = PyObject_GetIter(item);
    if (it == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) && Py_TYPE(item)->tp_iter == NULL
                && !PySequence_Check(item)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object",
                         Py_TYPE(item)->tp_name);
        }
        return -1;
    }
    PyObject *got[2] = {NULL, NULL};
    int i;
    for (i = 0; i < 2; i++) {
        got[i] = PyIter_Next(it);
        if (got[i] == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected 2, got %d)", i);
            goto error;
        }
    }
    PyObject *extra = PyIter_Next(it);
    if (extra != NULL) {
        Py_DECREF(extra);
        PyErr_SetString(PyExc_ValueError, "too many values to unpack (expected 2)");
        goto error;
    }
    if (PyErr_Occurred())
        goto error;
    Py_DECREF(it);
    *p = got[0];
    *s = got[1];
    return 1;
error:
    Py_XDECREF(got[0]);
    Py_XDECREF(got[1]);
    Py_DECREF(it);
    return -1;
}

/* Classify a size like ``if s > 0.0: ... elif s == 0.0: ... else: ...``.
 * Returns 1 (positive), 0 (zero), 2 (bad: negative, NaN, ...), -1 on error. */
static inline int
classify(PyObject *s)
{
    if (PyFloat_CheckExact(s)) {
        double d = PyFloat_AS_DOUBLE(s);
        if (d > 0.0)
            return 1;
        return d == 0.0 ? 0 : 2;
    }
    int r = PyObject_RichCompareBool(s, g_zero, Py_GT);
    if (r != 0)
        return r;  /* 1 or -1 */
    r = PyObject_RichCompareBool(s, g_zero, Py_EQ);
    if (r < 0)
        return -1;
    return r ? 0 : 2;
}

/* ``list.insert(i, x)`` for 0 <= i <= len(list). CPython 3.11's list insert shifts the tail one
 * pointer at a time; books grow deep levels (far from the best, i.e. near index 0) all the time,
 * so append (amortised growth) + one memmove is much cheaper. Same resulting list. */
static int
list_insert(PyObject *list, Py_ssize_t i, PyObject *x)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (PyList_Append(list, x) < 0)  /* new reference to x now sits at index n */
        return -1;
    if (i < n) {
        PyObject **items = ((PyListObject *)list)->ob_item;
        memmove(&items[i + 1], &items[i], (size_t)(n - i) * sizeof(PyObject *));
        items[i] = x;  /* the reference appended above, moved */
    }
    return 0;
}

/* ``del list[i]`` for 0 <= i < len(list): one memmove, the list is consistent before the
 * removed reference is dropped. Falls back to list slicing when the list should shrink. */
static int
list_delete(PyObject *list, Py_ssize_t i)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (i >= n) {
        PyErr_SetString(PyExc_IndexError, "list assignment index out of range");
        return -1;
    }
    if (n - 1 < ((PyListObject *)list)->allocated / 2)
        return PyList_SetSlice(list, i, i + 1, NULL);  /* lets CPython release memory */
    PyObject **items = ((PyListObject *)list)->ob_item;
    PyObject *old = items[i];
    memmove(&items[i], &items[i + 1], (size_t)(n - 1 - i) * sizeof(PyObject *));
    Py_SET_SIZE(list, n - 1);
    Py_DECREF(old);
    return 0;
}

static PyObject *g_inf;    /* float("inf") */

/* ``0.0 < p < inf and 0.0 <= s < inf`` evaluated exactly as Python does (same comparisons, same
 * order, same exceptions); on two exact floats, on the C doubles (NaN fails every comparison).
 * Returns 1 valid, 0 invalid, -1 error. */
static int
level_ok(PyObject *p, PyObject *s)
{
    if (PyFloat_CheckExact(p) && PyFloat_CheckExact(s)) {
        double dp = PyFloat_AS_DOUBLE(p), ds = PyFloat_AS_DOUBLE(s);
        return dp > 0.0 && dp < Py_HUGE_VAL && ds >= 0.0 && ds < Py_HUGE_VAL;
    }
    int r = PyObject_RichCompareBool(g_zero, p, Py_LT);
    if (r <= 0)
        return r;
    r = PyObject_RichCompareBool(p, g_inf, Py_LT);
    if (r <= 0)
        return r;
    r = PyObject_RichCompareBool(g_zero, s, Py_LE);
    if (r <= 0)
        return r;
    return PyObject_RichCompareBool(s, g_inf, Py_LT);
}

/* ``levels if type(levels) in (list, tuple) else list(levels)``: a new reference. */
static PyObject *
as_sequence(PyObject *levels)
{
    if (PyList_CheckExact(levels) || PyTuple_CheckExact(levels)) {
        Py_INCREF(levels);
        return levels;
    }
    return PySequence_List(levels);
}

/* ``for p, s in levels: if not level_ok(p, s): bad`` over a list or tuple. Returns 0 all valid,
 * 1 bad level (*bad = (p, s)), -1 error. */
static int
validate_side(PyObject *levels, PyObject **bad)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(levels);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(levels, i);
        Py_INCREF(item);
        PyObject *p, *s;
        int owned = unpack2(item, &p, &s);
        if (owned < 0) {
            Py_DECREF(item);
            return -1;
        }
        int ok = level_ok(p, s);
        if (ok == 0)
            *bad = PyTuple_Pack(2, p, s);
        if (owned) {
            Py_DECREF(p);
            Py_DECREF(s);
        }
        Py_DECREF(item);
        if (ok < 0)
            return -1;
        if (ok == 0)
            return *bad == NULL ? -1 : 1;
        /* the list may have been changed by a comparison: re-read its size */
        n = PySequence_Fast_GET_SIZE(levels);
    }
    return 0;
}

/* List both sides (when needed) and validate them, bids first. Returns 0 ok (*bl, *al are new
 * references), 1 bad level (*result = (side, p, s)), -1 error. */
static int
prepare_sides(PyObject *bids, PyObject *asks, PyObject **bl, PyObject **al, PyObject **result);

typedef struct {
    PyObject *sizes, *keys, *raw, *texts;
    int mode;
} Side;

/* Insert key_of(p, mode) into the sorted list like bisect.insort (right). */
static int
insort_key(Side *sd, PyObject *p)
{
    PyObject *k = key_of(p, sd->mode);
    if (k == NULL)
        return -1;
    Py_ssize_t i = bisect_right(sd->keys, k);
    int rc = i < 0 ? -1 : list_insert(sd->keys, i, k);
    Py_DECREF(k);
    return rc;
}

/* ``del keys[bisect_left(keys, key_of(p, mode))]`` */
static int
delete_key(Side *sd, PyObject *p)
{
    PyObject *k = key_of(p, sd->mode);
    if (k == NULL)
        return -1;
    Py_ssize_t i = bisect_left(sd->keys, k);
    Py_DECREF(k);
    if (i < 0)
        return -1;
    return list_delete(sd->keys, i);
}

/* Decoded messages are normally hot in cache, but a caller replaying pre-built level lists
 * (bench_book.py) reads cold memory: prefetch the tuple two levels ahead and the price/size
 * objects of the next one. Pure hints: no semantic effect. */
#define PREFETCH_NEXT(levels, idx)                                              \
    do {                                                                        \
        Py_ssize_t _n = PyList_GET_SIZE(levels);                                \
        if ((idx) + 2 < _n)                                                     \
            PREFETCH(PyList_GET_ITEM(levels, (idx) + 2));                       \
        if ((idx) + 1 < _n) {                                                   \
            PyObject *_nx = PyList_GET_ITEM(levels, (idx) + 1);                 \
            if (PyTuple_CheckExact(_nx) && PyTuple_GET_SIZE(_nx) == 2) {        \
                PREFETCH(PyTuple_GET_ITEM(_nx, 0));                             \
                PREFETCH(PyTuple_GET_ITEM(_nx, 1));                             \
            }                                                                   \
        }                                                                       \
    } while (0)

/* One level: ``p``'s size ``s``. Returns 0 ok, 1 bad size, -1 error. */
static inline int
apply_one(Side *sd, PyObject *p, PyObject *s, Py_ssize_t idx)
{
    PyObject *sizes = sd->sizes, *raw = sd->raw, *texts = sd->texts;
    int kind = classify(s);
    if (kind < 0)
        return -1;
    if (kind == 1) {
        /* ``if sizes.get(p) is None: insort(keys, key); sizes[p] = s`` with one lookup in the
         * common cases: setdefault inserts a new price (detected by the size change); an existing
         * price is then updated in place. */
        Py_ssize_t n0 = PyDict_GET_SIZE(sizes);
        PyObject *v = PyDict_SetDefault(sizes, p, s);
        if (v == NULL)
            return -1;
        if (PyDict_GET_SIZE(sizes) != n0) {  /* new price: it was absent, now maps to s */
            if (insort_key(sd, p) < 0) {
                /* Python would have failed before touching the dict: undo the insertion. */
                PyObject *et, *ev, *tb;
                PyErr_Fetch(&et, &ev, &tb);
                PyObject *gone = dict_pop_or_none(sizes, p);
                Py_XDECREF(gone);
                if (gone == NULL)
                    PyErr_Clear();
                PyErr_Restore(et, ev, tb);
                return -1;
            }
        }
        else {
            if (v == Py_None && insort_key(sd, p) < 0)
                return -1;
            if (v != s && PyDict_SetItem(sizes, p, s) < 0)
                return -1;
        }
        if (raw != NULL) {
            if (texts != Py_None) {
                PyObject *t = PySequence_GetItem(texts, idx);
                if (t == NULL)
                    return -1;
                int rc = PyDict_SetItem(raw, p, t);
                Py_DECREF(t);
                if (rc < 0)
                    return -1;
            }
            else {
                PyObject *old = dict_pop_or_none(raw, p);  /* raw.pop(p, None) */
                if (old == NULL)
                    return -1;
                Py_DECREF(old);
            }
        }
        return 0;
    }
    if (kind == 0) {
        /* ``if sizes.pop(p, None) is not None: del keys[bisect_left(keys, key)]`` */
        PyObject *v = dict_pop_or_none(sizes, p);
        if (v == NULL)
            return -1;
        int found = v != Py_None;
        Py_DECREF(v);
        if (found && delete_key(sd, p) < 0)
            return -1;
        if (raw != NULL) {
            PyObject *old = dict_pop_or_none(raw, p);
            if (old == NULL)
                return -1;
            Py_DECREF(old);
        }
        return 0;
    }
    return 1;
}

/* One side of apply_delta. raw/texts are NULL for books without exchange strings; with raw
 * set, texts is the sequence of strings or Py_None. Returns 0 ok, 1 bad level (*bad = (p, s)),
 * -1 error. Levels before a bad one stay applied, as in the Python loop. */
static int
apply_side(PyObject *sizes, PyObject *keys, PyObject *levels, int mode,
           PyObject *raw, PyObject *texts, PyObject **bad)
{
    if (!PyDict_CheckExact(sizes) || !PyList_CheckExact(keys) || (raw != NULL && !PyDict_CheckExact(raw))) {
        PyErr_SetString(PyExc_TypeError, "_speedups: sizes must be a dict and keys a list");
        return -1;
    }
    Side side = {sizes, keys, raw, texts, mode};
    Side *sd = &side;
    PyObject *it = NULL;
    int is_list = PyList_CheckExact(levels);
    if (!is_list) {
        it = PyObject_GetIter(levels);
        if (it == NULL)
            return -1;
    }
    for (Py_ssize_t idx = 0;; idx++) {
        PyObject *item;
        if (is_list) {  /* what list iteration does: stop when the index reaches the size */
            if (idx >= PyList_GET_SIZE(levels))
                break;
            item = PyList_GET_ITEM(levels, idx);
            Py_INCREF(item);
            PREFETCH_NEXT(levels, idx);
        }
        else {
            item = PyIter_Next(it);
            if (item == NULL) {
                if (PyErr_Occurred())
                    goto error;
                break;
            }
        }
        PyObject *p, *s;
        int owned = unpack2(item, &p, &s);
        if (owned < 0) {
            Py_DECREF(item);
            goto error;
        }
        int rc = apply_one(sd, p, s, idx);
        if (rc == 1)
            *bad = PyTuple_Pack(2, p, s);
        if (owned) {
            Py_DECREF(p);
            Py_DECREF(s);
        }
        Py_DECREF(item);
        if (rc < 0)
            goto error;
        if (rc == 1) {
            Py_XDECREF(it);
            return *bad == NULL ? -1 : 1;
        }
    }
    Py_XDECREF(it);
    return 0;
error:
    Py_XDECREF(it);
    return -1;
}

static PyObject *
bad_result(PyObject *side, PyObject *bad)
{
    PyObject *out = PyTuple_Pack(3, side, PyTuple_GET_ITEM(bad, 0), PyTuple_GET_ITEM(bad, 1));
    Py_DECREF(bad);
    return out;
}

static int
prepare_sides(PyObject *bids, PyObject *asks, PyObject **bl, PyObject **al, PyObject **result)
{
    PyObject *bad = NULL;
    *bl = *al = NULL;
    if ((*bl = as_sequence(bids)) == NULL || (*al = as_sequence(asks)) == NULL)
        goto error;
    int rc = validate_side(*bl, &bad);
    if (rc == 1) {
        *result = bad_result(g_bid, bad);
        goto rejected;
    }
    if (rc < 0)
        goto error;
    rc = validate_side(*al, &bad);
    if (rc == 1) {
        *result = bad_result(g_ask, bad);
        goto rejected;
    }
    if (rc < 0)
        goto error;
    return 0;
rejected:
    Py_CLEAR(*bl);
    Py_CLEAR(*al);
    return *result == NULL ? -1 : 1;
error:
    Py_CLEAR(*bl);
    Py_CLEAR(*al);
    return -1;
}

PyDoc_STRVAR(apply_levels_doc,
"apply_levels(bsizes, bkeys, bids, asizes, akeys, asks) -> None | (side, price, size)\n\n"
"The level loop of L2Book.apply_delta (no exchange strings). Returns the first bad level.");

static PyObject *
apply_levels(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "apply_levels expects 6 arguments");
        return NULL;
    }
    PyObject *bids, *asks, *result = NULL, *bad = NULL;
    int rc = prepare_sides(args[2], args[5], &bids, &asks, &result);
    if (rc != 0)
        return rc < 0 ? NULL : result;
    rc = apply_side(args[0], args[1], bids, KEY_SAME, NULL, NULL, &bad);
    if (rc == 1)
        result = bad_result(g_bid, bad);
    else if (rc == 0) {
        rc = apply_side(args[3], args[4], asks, KEY_NEG, NULL, NULL, &bad);
        if (rc == 1)
            result = bad_result(g_ask, bad);
    }
    Py_DECREF(bids);
    Py_DECREF(asks);
    if (rc < 0)
        return NULL;
    if (rc == 1)
        return result;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(apply_levels_raw_doc,
"apply_levels_raw(bsizes, bkeys, braw, bids, bids_raw, asizes, akeys, araw, asks, asks_raw)\n"
"-> None | (side, price, size)\n\n"
"The level loop of L2Book._apply_raw (exchange strings kept in step).");

static PyObject *
apply_levels_raw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "apply_levels_raw expects 10 arguments");
        return NULL;
    }
    PyObject *bids, *asks, *result = NULL, *bad = NULL;
    int rc = prepare_sides(args[3], args[8], &bids, &asks, &result);
    if (rc != 0)
        return rc < 0 ? NULL : result;
    rc = apply_side(args[0], args[1], bids, KEY_MUL_POS, args[2], args[4], &bad);
    if (rc == 1)
        result = bad_result(g_bid, bad);
    else if (rc == 0) {
        rc = apply_side(args[5], args[6], asks, KEY_MUL_NEG, args[7], args[9], &bad);
        if (rc == 1)
            result = bad_result(g_ask, bad);
    }
    Py_DECREF(bids);
    Py_DECREF(asks);
    if (rc < 0)
        return NULL;
    if (rc == 1)
        return result;
    Py_RETURN_NONE;
}

/* KeyError(key) exactly as ``d[key]`` raises it (args == (key,), also for tuple keys). */
static void
set_key_error(PyObject *key)
{
    PyObject *args = PyTuple_Pack(1, key);
    if (args != NULL) {
        PyErr_SetObject(PyExc_KeyError, args);
        Py_DECREF(args);
    }
}

/* An int argument as Py_ssize_t, clamped (a huge n means "everything", like a slice). */
static int
as_count(PyObject *arg, Py_ssize_t *n)
{
    *n = PyLong_AsSsize_t(arg);
    if (*n == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        int pos = PyObject_RichCompareBool(arg, g_zero, Py_GT);
        if (pos < 0)
            return -1;
        *n = pos ? PY_SSIZE_T_MAX : 0;
    }
    return 0;
}

/* The keys to read, best first: up to n from the end of the list. */
static Py_ssize_t
top_count(PyObject *keys, Py_ssize_t n)
{
    Py_ssize_t len = PyList_GET_SIZE(keys);
    if (n <= 0)
        return 0;
    return n < len ? n : len;
}

/* Up to TOP_STACK keys are snapshotted on the stack (INCREF'd) instead of in a new list. */
#define TOP_STACK 64

/* The best ``n`` levels of one side as a new list of (price, size) tuples, best first, exactly
 * as ``[(p, sizes[p]) for p in keys[:-n-1:-1]]`` (asks: ``(-k, sizes[-k])``). The keys are
 * snapshotted first, as the Python slice does, because a lookup may run Python code. */
static PyObject *
top_levels(PyObject *sizes, PyObject *keys, Py_ssize_t n, int negate)
{
    Py_ssize_t m = top_count(keys, n);
    Py_ssize_t len = PyList_GET_SIZE(keys);
    PyObject *stack[TOP_STACK];
    PyObject **snap;
    PyObject *sl = NULL;
    if (m <= TOP_STACK) {
        for (Py_ssize_t j = 0; j < m; j++) {
            snap = &stack[j];
            *snap = PyList_GET_ITEM(keys, len - 1 - j);  /* best first */
            Py_INCREF(*snap);
        }
        snap = stack;
    }
    else {
        sl = PyList_GetSlice(keys, len - m, len);
        if (sl == NULL)
            return NULL;
        /* reversed below: best first is index m - 1 - j of the slice */
        snap = ((PyListObject *)sl)->ob_item;
    }
#define SNAP(j) (sl == NULL ? snap[(j)] : snap[m - 1 - (j)])
    PyObject *out = PyList_New(m);
    if (out == NULL)
        goto error;
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *k = SNAP(j);
        PyObject *p;
        if (negate) {
            p = negated(k);
            if (p == NULL)
                goto error;
        }
        else {
            p = k;
            Py_INCREF(p);
        }
        PyObject *v = PyDict_GetItemWithError(sizes, p);
        if (v == NULL) {
            if (!PyErr_Occurred())
                set_key_error(p);
            Py_DECREF(p);
            goto error;
        }
        PyObject *t = PyTuple_New(2);
        if (t == NULL) {
            Py_DECREF(p);
            goto error;
        }
        Py_INCREF(v);
        PyTuple_SET_ITEM(t, 0, p);  /* steals p */
        PyTuple_SET_ITEM(t, 1, v);
        PyList_SET_ITEM(out, j, t);
    }
#undef SNAP
    if (sl == NULL) {
        for (Py_ssize_t j = 0; j < m; j++)
            Py_DECREF(stack[j]);
    }
    Py_XDECREF(sl);
    return out;
error:
    if (sl == NULL) {
        for (Py_ssize_t j = 0; j < m; j++)
            Py_DECREF(stack[j]);
    }
    Py_XDECREF(sl);
    Py_XDECREF(out);
    return NULL;
}

PyDoc_STRVAR(top_side_doc,
"top_side(sizes, keys, n, negate) -> list of (price, size), best first.\n\n"
"Raises KeyError(price) for a key without a size, like ``sizes[p]``.");

static PyObject *
top_side(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyDict_CheckExact(args[0]) || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "top_side(dict, list, n, negate)");
        return NULL;
    }
    Py_ssize_t n;
    if (as_count(args[2], &n) < 0)
        return NULL;
    int negate = PyObject_IsTrue(args[3]);
    if (negate < 0)
        return NULL;
    return top_levels(args[0], args[1], n, negate);
}

PyDoc_STRVAR(top_both_doc,
"top_both(bsizes, bkeys, asizes, akeys, n) -> (bids, asks): L2Book.top(n) in one call.");

static PyObject *
top_both(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyDict_CheckExact(args[0]) || !PyList_CheckExact(args[1])
            || !PyDict_CheckExact(args[2]) || !PyList_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError, "top_both(dict, list, dict, list, n)");
        return NULL;
    }
    Py_ssize_t n;
    if (as_count(args[4], &n) < 0)
        return NULL;
    PyObject *b = top_levels(args[0], args[1], n, 0);
    if (b == NULL)
        return NULL;
    PyObject *a = top_levels(args[2], args[3], n, 1);
    if (a == NULL) {
        Py_DECREF(b);
        return NULL;
    }
    PyObject *out = PyTuple_New(2);
    if (out == NULL) {
        Py_DECREF(a);
        Py_DECREF(b);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, b);
    PyTuple_SET_ITEM(out, 1, a);
    return out;
}

PyDoc_STRVAR(top_raw_side_doc,
"top_raw_side(raw, keys, n, negate) -> list of the stored raw levels, best first (n > 0).\n\n"
"Raises KeyError(price) for a level without stored strings, like ``raw[p]``.");

static PyObject *
top_raw_side(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyDict_CheckExact(args[0]) || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "top_raw_side(dict, list, n, negate)");
        return NULL;
    }
    PyObject *raw = args[0], *keys = args[1];
    Py_ssize_t n;
    if (as_count(args[2], &n) < 0)
        return NULL;
    int negate = PyObject_IsTrue(args[3]);
    if (negate < 0)
        return NULL;
    Py_ssize_t m = top_count(keys, n);
    Py_ssize_t len = PyList_GET_SIZE(keys);
    PyObject *sl = PyList_GetSlice(keys, len - m, len);
    if (sl == NULL)
        return NULL;
    PyObject *out = PyList_New(m);
    if (out == NULL) {
        Py_DECREF(sl);
        return NULL;
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *k = PyList_GET_ITEM(sl, m - 1 - j);
        PyObject *v;
        if (negate) {
            PyObject *p = negated(k);
            if (p == NULL)
                goto error;
            v = PyDict_GetItemWithError(raw, p);
            if (v == NULL && !PyErr_Occurred())
                set_key_error(p);
            Py_DECREF(p);
        }
        else {
            v = PyDict_GetItemWithError(raw, k);
            if (v == NULL && !PyErr_Occurred())
                set_key_error(k);
        }
        if (v == NULL)
            goto error;
        Py_INCREF(v);
        PyList_SET_ITEM(out, j, v);
    }
    Py_DECREF(sl);
    return out;
error:
    Py_DECREF(sl);
    Py_DECREF(out);
    return NULL;
}

/* ------------------------------------------------------------------ OKX checksum */

/* Borrowed (price, size) ASCII strings of a level, or 0 if the level is outside the fast path. */
static int
ascii_pair(PyObject *level, PyObject **a, PyObject **b)
{
    if (PyTuple_CheckExact(level) && PyTuple_GET_SIZE(level) == 2) {
        *a = PyTuple_GET_ITEM(level, 0);
        *b = PyTuple_GET_ITEM(level, 1);
    }
    else if (PyList_CheckExact(level) && PyList_GET_SIZE(level) == 2) {
        *a = PyList_GET_ITEM(level, 0);
        *b = PyList_GET_ITEM(level, 1);
    }
    else {
        return 0;
    }
    return PyUnicode_CheckExact(*a) && PyUnicode_IS_ASCII(*a) && PyUnicode_CheckExact(*b) && PyUnicode_IS_ASCII(*b);
}

#define OKX_DEPTH 25

PyDoc_STRVAR(okx_crc_doc,
"okx_crc(bids, asks) -> int | NotImplemented\n\n"
"Signed CRC32 of 'bid1px:bid1sz:ask1px:ask1sz:...' over the top 25 levels (shorter side stops\n"
"contributing). NotImplemented when an input is outside the fast path (then use Python).");

static PyObject *
okx_crc(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "okx_crc(bids, asks)");
        return NULL;
    }
    PyObject *sides[2] = {args[0], args[1]};
    Py_ssize_t cnt[2];
    for (int k = 0; k < 2; k++) {
        if (PyList_CheckExact(sides[k]))
            cnt[k] = PyList_GET_SIZE(sides[k]);
        else if (PyTuple_CheckExact(sides[k]))
            cnt[k] = PyTuple_GET_SIZE(sides[k]);
        else
            Py_RETURN_NOTIMPLEMENTED;
        if (cnt[k] > OKX_DEPTH)
            cnt[k] = OKX_DEPTH;
    }
    /* Gather the fields (borrowed: no Python code runs until the bytes are built). */
    const char *ptr[4 * OKX_DEPTH];
    Py_ssize_t len[4 * OKX_DEPTH];
    int nf = 0;
    Py_ssize_t total = 0;
    Py_ssize_t rows = cnt[0] > cnt[1] ? cnt[0] : cnt[1];
    for (Py_ssize_t i = 0; i < rows; i++) {
        for (int k = 0; k < 2; k++) {
            if (i >= cnt[k])
                continue;
            PyObject *lv = PyList_CheckExact(sides[k]) ? PyList_GET_ITEM(sides[k], i)
                                                       : PyTuple_GET_ITEM(sides[k], i);
            PyObject *a, *b;
            if (!ascii_pair(lv, &a, &b))
                Py_RETURN_NOTIMPLEMENTED;
            ptr[nf] = (const char *)PyUnicode_DATA(a);
            len[nf] = PyUnicode_GET_LENGTH(a);
            total += len[nf++];
            ptr[nf] = (const char *)PyUnicode_DATA(b);
            len[nf] = PyUnicode_GET_LENGTH(b);
            total += len[nf++];
        }
    }
    if (nf > 1)
        total += nf - 1;  /* the ':' separators */
    PyObject *buf = PyBytes_FromStringAndSize(NULL, total);
    if (buf == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(buf);
    for (int f = 0; f < nf; f++) {
        if (f)
            *out++ = ':';
        memcpy(out, ptr[f], (size_t)len[f]);
        out += len[f];
    }
    PyObject *value = PyObject_CallOneArg(g_crc32, buf);
    Py_DECREF(buf);
    if (value == NULL)
        return NULL;
    unsigned long u = PyLong_AsUnsignedLong(value);
    Py_DECREF(value);
    if (u == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    long long signed_value = u >= 0x80000000UL ? (long long)u - 0x100000000LL : (long long)u;
    return PyLong_FromLongLong(signed_value);
}

/* ------------------------------------------------------------------ Binance depthUpdate decoder */

/* A strict-subset JSON reader for Binance ``depthUpdate`` frames (plain, or the combined-stream
 * envelope ``{"stream":...,"data":{...}}``). It builds exactly what adapters/binance/parse.py's
 * msgspec path builds -- a BookDelta with (float, float) tuples -- for frames in the subset, and
 * answers None ("not handled") for anything else, so the msgspec path then returns the same
 * event or raises the same AdapterError. The subset:
 *   - bytes only; JSON whitespace anywhere JSON allows it;
 *   - the DepthUpdate keys e, E, s, U, u, pu, b, a, each at most once (msgspec would keep the
 *     last), all required ones present; other keys (T, COIN-M's ps) are skipped when their value
 *     is a plain string or int, as msgspec ignores them; in the envelope, stream and data only;
 *   - strings (e, s, stream) without escapes, control characters or non-ASCII bytes;
 *   - ints (U, u, E, pu, T) as 1..18 plain digits without a leading zero (pu may be null);
 *   - levels as ["<decimal>","<decimal>"], a decimal being digits with an optional fraction
 *     (no sign, exponent, leading zero, "1." or ".5"), whose value is exactly representable as
 *     mantissa / 10^k with mantissa <= 2^53 and k <= 22: then (double)mantissa / 1e k is the
 *     correctly rounded value (Clinger's fast path), i.e. the same double msgspec and float()
 *     give; and 0 < price < 1e15, 0 <= size < 1e15 (the schemas.Px / Sz bounds);
 *   - u >= U (else the Python path raises its AdapterError) and E <= 9e12 (E * 10^6 fits).
 * Zero sizes share one float object (a third of all levels are deletes); nothing observable
 * depends on float identity. */

typedef struct {
    const char *p, *end;
} Cur;

#define DEC_OK 0
#define DEC_NO 1   /* outside the subset: let msgspec decide */
#define DEC_ERR -1 /* Python error set (MemoryError) */

static const double POW10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static PyObject *g_delta_kwnames;  /* ("symbol", "bids", "asks", "first_seq", ...) */

static inline void
skip_ws(Cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static inline int
expect(Cur *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A plain string (after skipping whitespace): *s / *n point into the frame. 0 ok, DEC_NO. */
static inline int
read_plain_string(Cur *c, const char **s, Py_ssize_t *n)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"')
        return DEC_NO;
    const char *q = ++c->p;
    while (q < c->end) {
        unsigned char ch = (unsigned char)*q;
        if (ch == '"')
            break;
        if (ch == '\\' || ch < 0x20 || ch >= 0x80)
            return DEC_NO;
        q++;
    }
    if (q >= c->end)
        return DEC_NO;
    *s = c->p;
    *n = q - c->p;
    c->p = q + 1;
    return DEC_OK;
}

/* 1..18 plain digits, no leading zero (except "0"). */
static inline int
read_uint(Cur *c, long long *out)
{
    skip_ws(c);
    const char *q = c->p;
    long long v = 0;
    int nd = 0;
    while (q < c->end && *q >= '0' && *q <= '9') {
        v = v * 10 + (*q - '0');
        q++;
        if (++nd > 18)
            return DEC_NO;
    }
    if (nd == 0 || (nd > 1 && *c->p == '0'))
        return DEC_NO;
    /* a number followed by '.', 'e' or 'E' is a float in JSON: not ours */
    if (q < c->end && (*q == '.' || *q == 'e' || *q == 'E' || *q == '-' || *q == '+'))
        return DEC_NO;
    c->p = q;
    *out = v;
    return DEC_OK;
}

/* Eight ASCII digits at q (little-endian SWAR): their value, or -1 if any byte is not a digit. */
static inline long long
eight_digits(const char *q)
{
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    return -1;  /* the digit-by-digit loop handles it */
#endif
    unsigned long long v;
    memcpy(&v, q, 8);
    if ((v & 0xF0F0F0F0F0F0F0F0ULL) != 0x3030303030303030ULL
            || ((v + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) != 0x3030303030303030ULL)
        return -1;
    v -= 0x3030303030303030ULL;
    v = (v * 10) + (v >> 8);
    v = (((v & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32)))
         + (((v >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
    return (long long)v;
}

#define M_MAX_DIGIT ((~0ULL - 9) / 10)               /* m * 10 + 9 does not overflow */
#define M_MAX_EIGHT ((~0ULL - 99999999) / 100000000)  /* m * 10^8 + 99999999 does not overflow */

/* A quoted decimal "ddd[.ddd]" -> exact double (see the header comment). */
static inline int
read_decimal(Cur *c, double *out)
{
    skip_ws(c);
    const char *q = c->p, *end = c->end;
    if (q >= end || *q != '"')
        return DEC_NO;
    q++;
    const char *int_start = q;
    unsigned long long m = 0;  /* exact: every step is guarded against overflow */
    while (q < end && *q >= '0' && *q <= '9') {
        if (m > M_MAX_DIGIT)
            return DEC_NO;
        m = m * 10 + (unsigned)(*q - '0');
        q++;
    }
    Py_ssize_t nint = q - int_start;
    if (nint == 0 || (nint > 1 && *int_start == '0'))
        return DEC_NO;
    int frac = 0;
    if (q < end && *q == '.') {
        q++;
        const char *fs = q;
        long long e8;
        /* Binance sends 8 decimals: take them eight at a time */
        while (end - q >= 8 && (e8 = eight_digits(q)) >= 0) {
            if (m > M_MAX_EIGHT)
                return DEC_NO;
            m = m * 100000000ULL + (unsigned long long)e8;
            q += 8;
        }
        while (q < end && *q >= '0' && *q <= '9') {
            if (m > M_MAX_DIGIT)
                return DEC_NO;
            m = m * 10 + (unsigned)(*q - '0');
            q++;
        }
        frac = (int)(q - fs);
        if (frac == 0)
            return DEC_NO;
    }
    if (q >= end || *q != '"')
        return DEC_NO;
    while (frac > 0 && m > (1ULL << 53) && m % 10 == 0) {
        m /= 10;
        frac--;
    }
    if (m > (1ULL << 53) || frac > 22)
        return DEC_NO;
    *out = (double)m / POW10[frac];
    c->p = q + 1;
    return DEC_OK;
}

/* Levels as C doubles (the fused path, binance_depth_apply): a growable array. */
typedef struct LevelBuf {
    double *v;  /* px0, sz0, px1, sz1, ... */
    Py_ssize_t n, cap;
} LevelBuf;

/* The same subset as read_levels, into a LevelBuf (nothing is allocated but the array). */
static int
read_levels_buf(Cur *c, LevelBuf *b)
{
    b->n = 0;
    if (!expect(c, '['))
        return DEC_NO;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return DEC_OK;
    }
    for (;;) {
        double px, sz;
        if (!expect(c, '[') || read_decimal(c, &px) != DEC_OK || !expect(c, ',')
                || read_decimal(c, &sz) != DEC_OK || !expect(c, ']'))
            return DEC_NO;
        if (!(px > 0.0 && px < 1e15) || !(sz >= 0.0 && sz < 1e15))
            return DEC_NO;
        if (b->n == b->cap) {
            Py_ssize_t cap = b->cap ? 2 * b->cap : 256;
            double *v = PyMem_Realloc(b->v, (size_t)cap * 2 * sizeof(double));
            if (v == NULL) {
                PyErr_NoMemory();
                return DEC_ERR;
            }
            b->v = v;
            b->cap = cap;
        }
        b->v[2 * b->n] = px;
        b->v[2 * b->n + 1] = sz;
        b->n++;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            return DEC_OK;
        }
        return DEC_NO;
    }
}

/* [["px","sz"], ...] -> new list of (float, float) tuples in *out. */
static int
read_levels(Cur *c, PyObject **out)
{
    if (!expect(c, '['))
        return DEC_NO;
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return DEC_ERR;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        *out = list;
        return DEC_OK;
    }
    for (;;) {
        double px, sz;
        if (!expect(c, '[') || read_decimal(c, &px) != DEC_OK || !expect(c, ',')
                || read_decimal(c, &sz) != DEC_OK || !expect(c, ']'))
            goto no;
        if (!(px > 0.0 && px < 1e15) || !(sz >= 0.0 && sz < 1e15))
            goto no;
        PyObject *t = PyTuple_New(2);
        if (t == NULL)
            goto err;
        PyObject *pf = PyFloat_FromDouble(px);
        if (pf == NULL) {
            Py_DECREF(t);
            goto err;
        }
        PyTuple_SET_ITEM(t, 0, pf);
        PyObject *sf;
        if (sz == 0.0) {  /* sz is +0.0 here: the decimal has no sign */
            sf = g_zero;
            Py_INCREF(sf);
        }
        else if ((sf = PyFloat_FromDouble(sz)) == NULL) {
            Py_DECREF(t);
            goto err;
        }
        PyTuple_SET_ITEM(t, 1, sf);
        int rc = PyList_Append(list, t);
        Py_DECREF(t);
        if (rc < 0)
            goto err;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            *out = list;
            return DEC_OK;
        }
        goto no;
    }
no:
    Py_DECREF(list);
    return DEC_NO;
err:
    Py_DECREF(list);
    return DEC_ERR;
}

typedef struct {
    const char *sym;
    Py_ssize_t sym_len;
    long long U, u, E, pu;
    int has_pu;  /* pu given as an int (0: absent or null) */
    PyObject *bids, *asks;
    struct LevelBuf *bbuf, *abuf;  /* set: levels go to these C arrays instead (fused path) */
} Depth;

enum { F_E = 1, F_S = 2, F_UU = 4, F_U = 8, F_B = 16, F_A = 32, F_EV = 64, F_PU = 128 };

static inline int
key_is(const char *k, Py_ssize_t n, const char *lit)
{
    Py_ssize_t m = (Py_ssize_t)strlen(lit);
    return n == m && memcmp(k, lit, (size_t)m) == 0;
}

/* The depthUpdate object (cursor on its '{'). */
static int
read_depth(Cur *c, Depth *d)
{
    int seen = 0;
    if (!expect(c, '{'))
        return DEC_NO;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}')
        return DEC_NO;  /* required fields missing */
    for (;;) {
        const char *k;
        Py_ssize_t kn;
        int rc;
        if (read_plain_string(c, &k, &kn) != DEC_OK || !expect(c, ':'))
            return DEC_NO;
        int f = 0;
        if (kn == 1) {
            switch (k[0]) {
            case 'e': f = F_EV; break;
            case 'E': f = F_E; break;
            case 's': f = F_S; break;
            case 'U': f = F_UU; break;
            case 'u': f = F_U; break;
            case 'b': f = F_B; break;
            case 'a': f = F_A; break;
            default: break;
            }
        }
        else if (key_is(k, kn, "pu")) {
            f = F_PU;
        }
        if (f == 0) {
            /* A field DepthUpdate does not have (T, COIN-M's ps, ...): msgspec skips it. We
             * skip a plain string or a plain int; any other value -> not ours. */
            const char *s;
            Py_ssize_t n;
            long long t;
            skip_ws(c);
            rc = (c->p < c->end && *c->p == '"') ? read_plain_string(c, &s, &n) : read_uint(c, &t);
            if (rc != DEC_OK)
                return rc;
            goto next;
        }
        if (seen & f)
            return DEC_NO;  /* duplicate key: msgspec keeps the last one; not ours */
        seen |= f;
        switch (f) {
        case F_EV: {
            const char *s;
            Py_ssize_t n;
            rc = read_plain_string(c, &s, &n);
            break;
        }
        case F_S:
            rc = read_plain_string(c, &d->sym, &d->sym_len);
            break;
        case F_E:
            rc = read_uint(c, &d->E);
            break;
        case F_UU:
            rc = read_uint(c, &d->U);
            break;
        case F_U:
            rc = read_uint(c, &d->u);
            break;
        case F_PU:
            skip_ws(c);
            if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
                c->p += 4;
                rc = DEC_OK;
            }
            else {
                rc = read_uint(c, &d->pu);
                d->has_pu = 1;
            }
            break;
        case F_B:
            rc = d->bbuf ? read_levels_buf(c, d->bbuf) : read_levels(c, &d->bids);
            break;
        default: /* F_A */
            rc = d->abuf ? read_levels_buf(c, d->abuf) : read_levels(c, &d->asks);
            break;
        }
        if (rc != DEC_OK)
            return rc;
    next:
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            break;
        }
        return DEC_NO;
    }
    if ((seen & (F_EV | F_S | F_UU | F_U | F_B | F_A)) != (F_EV | F_S | F_UU | F_U | F_B | F_A))
        return DEC_NO;
    return DEC_OK;
}

/* {"stream": "...", "data": {...}} in either order. */
static int
read_envelope(Cur *c, Depth *d)
{
    int seen = 0;
    if (!expect(c, '{'))
        return DEC_NO;
    for (;;) {
        const char *k;
        Py_ssize_t kn;
        int rc;
        if (read_plain_string(c, &k, &kn) != DEC_OK || !expect(c, ':'))
            return DEC_NO;
        if (key_is(k, kn, "stream") && !(seen & 1)) {
            const char *s;
            Py_ssize_t n;
            seen |= 1;
            rc = read_plain_string(c, &s, &n);
        }
        else if (key_is(k, kn, "data") && !(seen & 2)) {
            seen |= 2;
            rc = read_depth(c, d);
        }
        else {
            return DEC_NO;
        }
        if (rc != DEC_OK)
            return rc;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            break;
        }
        return DEC_NO;
    }
    return seen == 3 ? DEC_OK : DEC_NO;
}

PyDoc_STRVAR(binance_depth_doc,
"binance_depth(frame, ts_recv_ns, BookDelta) -> BookDelta | None\n\n"
"Decode a Binance depthUpdate frame (bytes; plain or combined-stream envelope) into\n"
"BookDelta(symbol=s, bids=b, asks=a, first_seq=U, last_seq=u, prev_seq=pu,\n"
"ts_exchange_ns=E * 1_000_000, ts_recv_ns=ts_recv_ns), exactly as the msgspec path of\n"
"adapters/binance/parse.py does; None when the frame is outside the fast subset (then the\n"
"msgspec path decides, including every error).");

static PyObject *
binance_depth(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "binance_depth(frame, ts_recv_ns, BookDelta)");
        return NULL;
    }
    PyObject *frame = args[0];
    if (!PyBytes_CheckExact(frame))
        Py_RETURN_NONE;
    Py_ssize_t len = PyBytes_GET_SIZE(frame);
    const char *buf = PyBytes_AS_STRING(frame);
    Cur c = {buf, buf + len};
    Depth d;
    memset(&d, 0, sizeof d);
    int rc;
    /* parse.py picks the envelope decoder exactly when the frame starts with '{"stream"' */
    if (len >= 9 && memcmp(buf, "{\"stream\"", 9) == 0)
        rc = read_envelope(&c, &d);
    else
        rc = read_depth(&c, &d);
    if (rc == DEC_OK) {
        skip_ws(&c);
        if (c.p != c.end)
            rc = DEC_NO;  /* trailing bytes */
    }
    if (rc == DEC_OK && (d.u < d.U || d.E > 9000000000000LL))
        rc = DEC_NO;
    PyObject *result = NULL;
    if (rc == DEC_OK) {
        PyObject *vals[8] = {NULL};
        vals[0] = PyUnicode_New(d.sym_len, 127);
        if (vals[0] != NULL)
            memcpy(PyUnicode_DATA(vals[0]), d.sym, (size_t)d.sym_len);
        vals[1] = d.bids;
        vals[2] = d.asks;
        vals[3] = PyLong_FromLongLong(d.U);
        vals[4] = PyLong_FromLongLong(d.u);
        if (d.has_pu) {
            vals[5] = PyLong_FromLongLong(d.pu);
        }
        else {
            vals[5] = Py_None;
            Py_INCREF(Py_None);
        }
        vals[6] = PyLong_FromLongLong(d.E * 1000000LL);
        vals[7] = args[1];
        if (vals[0] && vals[3] && vals[4] && vals[5] && vals[6])
            result = PyObject_Vectorcall(args[2], vals, 0, g_delta_kwnames);
        else
            rc = DEC_ERR;
        Py_XDECREF(vals[0]);
        Py_XDECREF(vals[3]);
        Py_XDECREF(vals[4]);
        Py_XDECREF(vals[5]);
        Py_XDECREF(vals[6]);
    }
    Py_XDECREF(d.bids);
    Py_XDECREF(d.asks);
    if (rc == DEC_ERR)
        return NULL;
    if (rc == DEC_NO)
        Py_RETURN_NONE;
    return result;  /* NULL if BookDelta raised */
}

/* ------------------------------------------------------------------ fused Binance steady state */

/*
 * binance_depth_apply(frame, symbol, model, local, bsizes, bkeys, asizes, akeys)
 *     -> (first_seq, last_seq) when the frame's delta WAS APPLIED to the book's containers,
 *        or a small int status when NOTHING was touched:
 *          1  not ours: outside binance_depth's subset, or another symbol
 *          2  not the fast APPLY case of the sequence rule (see below)
 *          3  the book is, or might become, crossed
 *          4  unexpected state (local not an int, containers not dict/list, non-float keys)
 *
 * The SYNCED steady state of a Binance book in one call: binance_depth's decoder (same subset,
 * levels read into C doubles instead of tuples), the APPLY test, L2Book.apply_delta's level
 * loop (apply_one, exactly as apply_levels), no BookDelta. Its caller is
 * BookSession.apply_frame_fast, which gates it (SYNCED, no bridge, no checksum, no truncation,
 * no per-level ids, no raw strings, book not poisoned) and does the bookkeeping of an applied
 * delta (Sequencer.advance, stats.deltas_applied). On ANY status the caller must take the
 * normal path for the frame -- decoder.decode() -> session.on_delta() -- which stays the single
 * source of truth for every decision (stale, duplicate, gap, crossed, bad frame, ...).
 *
 * The sequence rule lives in bookkeeper/sequencer.py (Sequencer._check_range /
 * _check_pointer). This function may ONLY answer its single APPLY case, for two models, with
 * ``local`` an int: model 1 CONTIGUOUS_RANGE: u > local and U <= local + 1; model 2
 * PREV_POINTER: pu == local and u != local. Anything else returns 2 and the Sequencer decides.
 * Change this only in step with Sequencer (tests/speedups/test_fastpath.py checks both).
 *
 * Crossed books: apply_delta then is_crossed would mutate before detecting; instead the book
 * is only touched when it provably cannot end crossed: before, best bid < best ask (or a side
 * empty), and max(best bid, highest new non-zero bid) < min(best ask, lowest new non-zero ask)
 * -- deletes only move the best levels apart. Otherwise 3 (normal path: it applies, sees the
 * crossing and recovers). Only a MemoryError mid-loop leaves a partly applied delta (raised).
 */
static LevelBuf g_fbids, g_fasks;  /* reused between calls (the GIL serialises them) */

enum { FAST_NOT_OURS = 1, FAST_NOT_APPLY = 2, FAST_MAYBE_CROSSED = 3, FAST_BAD_STATE = 4 };

/* The price of a side's best key (keys[-1], negated for asks) as a double; 0 if the list is
 * empty (*empty = 1); -1 if a key is not an exact float. */
static inline int
best_key(PyObject *keys, int neg, double *out, int *empty)
{
    Py_ssize_t n = PyList_GET_SIZE(keys);
    *empty = n == 0;
    if (n == 0)
        return 0;
    PyObject *k = PyList_GET_ITEM(keys, n - 1);
    if (!PyFloat_CheckExact(k))
        return -1;
    *out = neg ? -PyFloat_AS_DOUBLE(k) : PyFloat_AS_DOUBLE(k);
    return 0;
}

/* ``b"depthUpdate" in frame`` */
static int
has_depth_update(const char *buf, Py_ssize_t len)
{
    static const char pat[] = "depthUpdate";
    const Py_ssize_t m = (Py_ssize_t)sizeof pat - 1;
    for (const char *q = buf, *end = buf + len; end - q >= m; q++) {
        q = memchr(q, 'd', (size_t)(end - q - m + 1));
        if (q == NULL)
            return 0;
        if (memcmp(q, pat, (size_t)m) == 0)
            return 1;
    }
    return 0;
}

static int
apply_buf(PyObject *sizes, PyObject *keys, int mode, const LevelBuf *b)
{
    Side side = {sizes, keys, NULL, NULL, mode};
    for (Py_ssize_t i = 0; i < b->n; i++) {
        double px = b->v[2 * i], sz = b->v[2 * i + 1];
        PyObject *p = PyFloat_FromDouble(px);
        if (p == NULL)
            return -1;
        PyObject *s;
        if (sz == 0.0) {
            s = g_zero;
            Py_INCREF(s);
        }
        else if ((s = PyFloat_FromDouble(sz)) == NULL) {
            Py_DECREF(p);
            return -1;
        }
        int rc = apply_one(&side, p, s, i);
        Py_DECREF(p);
        Py_DECREF(s);
        if (rc != 0)
            return -1;  /* rc 1 (bad size) cannot happen: sizes are finite and >= 0 here */
    }
    return 0;
}

PyDoc_STRVAR(binance_depth_apply_doc,
"binance_depth_apply(frame, symbol, model, local, bsizes, bkeys, asizes, akeys)\n"
"-> (first_seq, last_seq) | int\n\n"
"Fused decode + the APPLY case of the sequence rule + apply for a synced Binance book\n"
"(see the C source). A tuple: applied; an int: nothing was touched, take the normal path.");

static PyObject *
binance_depth_apply(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "binance_depth_apply(frame, symbol, model, local, bsizes, bkeys, asizes, akeys)");
        return NULL;
    }
    PyObject *frame = args[0], *symbol = args[1], *bsizes = args[4], *bkeys = args[5],
             *asizes = args[6], *akeys = args[7];
    long model = PyLong_Check(args[2]) ? PyLong_AsLong(args[2]) : 0;
    if (model == -1 && PyErr_Occurred())
        return NULL;
    if ((model != 1 && model != 2) || !PyLong_CheckExact(args[3]) || !PyDict_CheckExact(bsizes)
            || !PyList_CheckExact(bkeys) || !PyDict_CheckExact(asizes) || !PyList_CheckExact(akeys)
            || !PyUnicode_Check(symbol))
        return PyLong_FromLong(FAST_BAD_STATE);
    int overflow = 0;
    long long local = PyLong_AsLongLongAndOverflow(args[3], &overflow);
    if (local == -1 && PyErr_Occurred())
        return NULL;
    if (overflow)
        return PyLong_FromLong(FAST_BAD_STATE);
    if (!PyBytes_CheckExact(frame))
        return PyLong_FromLong(FAST_NOT_OURS);

    Py_ssize_t len = PyBytes_GET_SIZE(frame);
    const char *buf = PyBytes_AS_STRING(frame);
    /* parse.decode() only takes the depth decoders for frames containing "depthUpdate" */
    if (!has_depth_update(buf, len))
        return PyLong_FromLong(FAST_NOT_OURS);
    Cur c = {buf, buf + len};
    Depth d;
    memset(&d, 0, sizeof d);
    d.bbuf = &g_fbids;
    d.abuf = &g_fasks;
    g_fbids.n = g_fasks.n = 0;
    int rc;
    if (len >= 9 && memcmp(buf, "{\"stream\"", 9) == 0)  /* as binance_depth */
        rc = read_envelope(&c, &d);
    else
        rc = read_depth(&c, &d);
    if (rc == DEC_ERR)
        return NULL;
    if (rc == DEC_OK) {
        skip_ws(&c);
        if (c.p != c.end)
            rc = DEC_NO;
    }
    if (rc != DEC_OK || d.u < d.U || d.E > 9000000000000LL)
        return PyLong_FromLong(FAST_NOT_OURS);
    Py_ssize_t sym_len;
    const char *sym = PyUnicode_AsUTF8AndSize(symbol, &sym_len);
    if (sym == NULL)
        return NULL;
    if (sym_len != d.sym_len || memcmp(sym, d.sym, (size_t)sym_len) != 0)
        return PyLong_FromLong(FAST_NOT_OURS);

    /* The APPLY case of Sequencer's rule ONLY (bookkeeper/sequencer.py); see above. */
    int apply;
    if (model == 1)
        apply = d.u > local && d.U - 1 <= local;
    else
        apply = d.has_pu && d.pu == local && d.u != local;
    if (!apply)
        return PyLong_FromLong(FAST_NOT_APPLY);

    double obb = -Py_HUGE_VAL, oba = Py_HUGE_VAL;
    int bempty, aempty;
    if (best_key(bkeys, 0, &obb, &bempty) < 0 || best_key(akeys, 1, &oba, &aempty) < 0)
        return PyLong_FromLong(FAST_BAD_STATE);
    if (bempty)
        obb = -Py_HUGE_VAL;
    if (aempty)
        oba = Py_HUGE_VAL;
    if (obb >= oba)
        return PyLong_FromLong(FAST_MAYBE_CROSSED);  /* already crossed: not a steady state */
    double hi = obb, lo = oba;
    for (Py_ssize_t i = 0; i < g_fbids.n; i++)
        if (g_fbids.v[2 * i + 1] != 0.0 && g_fbids.v[2 * i] > hi)
            hi = g_fbids.v[2 * i];
    for (Py_ssize_t i = 0; i < g_fasks.n; i++)
        if (g_fasks.v[2 * i + 1] != 0.0 && g_fasks.v[2 * i] < lo)
            lo = g_fasks.v[2 * i];
    if (hi >= lo)
        return PyLong_FromLong(FAST_MAYBE_CROSSED);

    if (apply_buf(bsizes, bkeys, KEY_SAME, &g_fbids) < 0 || apply_buf(asizes, akeys, KEY_NEG, &g_fasks) < 0)
        return NULL;
    PyObject *first = PyLong_FromLongLong(d.U);
    PyObject *last = first ? PyLong_FromLongLong(d.u) : NULL;
    PyObject *out = last ? PyTuple_Pack(2, first, last) : NULL;
    Py_XDECREF(first);
    Py_XDECREF(last);
    return out;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"apply_levels", (PyCFunction)(void (*)(void))apply_levels, METH_FASTCALL, apply_levels_doc},
    {"apply_levels_raw", (PyCFunction)(void (*)(void))apply_levels_raw, METH_FASTCALL, apply_levels_raw_doc},
    {"top_side", (PyCFunction)(void (*)(void))top_side, METH_FASTCALL, top_side_doc},
    {"top_both", (PyCFunction)(void (*)(void))top_both, METH_FASTCALL, top_both_doc},
    {"top_raw_side", (PyCFunction)(void (*)(void))top_raw_side, METH_FASTCALL, top_raw_side_doc},
    {"okx_crc", (PyCFunction)(void (*)(void))okx_crc, METH_FASTCALL, okx_crc_doc},
    {"binance_depth", (PyCFunction)(void (*)(void))binance_depth, METH_FASTCALL, binance_depth_doc},
    {"binance_depth_apply", (PyCFunction)(void (*)(void))binance_depth_apply, METH_FASTCALL,
     binance_depth_apply_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "bookkeeper._speedups",
    "Optional C accelerator for bookkeeper.book / bookkeeper.checksum (see the C source header).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *zlib = PyImport_ImportModule("zlib");
    if (zlib == NULL)
        return NULL;
    g_crc32 = PyObject_GetAttrString(zlib, "crc32");
    Py_DECREF(zlib);
    if (g_crc32 == NULL)
        return NULL;
    g_zero = PyFloat_FromDouble(0.0);
    g_inf = PyFloat_FromDouble(Py_HUGE_VAL);
    if (g_inf == NULL)
        return NULL;
    g_one = PyFloat_FromDouble(1.0);
    g_minus_one = PyFloat_FromDouble(-1.0);
    if (g_one == NULL || g_minus_one == NULL)
        return NULL;
    g_bid = PyUnicode_InternFromString("bid");
    g_ask = PyUnicode_InternFromString("ask");
    if (g_zero == NULL || g_bid == NULL || g_ask == NULL)
        return NULL;
    static const char *const kw[8] = {"symbol", "bids", "asks", "first_seq", "last_seq", "prev_seq",
                                      "ts_exchange_ns", "ts_recv_ns"};
    g_delta_kwnames = PyTuple_New(8);
    if (g_delta_kwnames == NULL)
        return NULL;
    for (int i = 0; i < 8; i++) {
        PyObject *name = PyUnicode_InternFromString(kw[i]);
        if (name == NULL)
            return NULL;
        PyTuple_SET_ITEM(g_delta_kwnames, i, name);
    }
    return PyModule_Create(&module);
}
