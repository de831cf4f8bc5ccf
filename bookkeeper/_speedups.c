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
 * 1.79x, 4.11x. Details and commands: benchmarks/RESULTS.md.
 *
 * What it does
 * ------------
 * It works on L2Book's OWN containers (a dict price -> size and a sorted list of keys per side;
 * asks are keyed by the negated price so the best level is last on both sides): nothing new is
 * stored, so the pure-Python path and this one are interchangeable at any moment and are tested
 * against each other (tests/speedups/).
 *
 *   apply_levels(bsizes, bkeys, bids, asizes, akeys, asks)
 *       The loop of L2Book.apply_delta (book without exchange strings), level by level exactly
 *       as the Python code: ``s > 0.0`` -> set (insort the key if the price is new);
 *       ``s == 0.0`` -> delete if present; otherwise (negative, NaN) stop and return
 *       ``(side, price, size)`` so Python poisons the book with the same message. Levels before
 *       the bad one stay applied, as in Python. Returns None when all levels were applied.
 *   apply_levels_raw(...)  the same for books that keep the exchange strings.
 *   top_side(sizes, keys, n, negate)      best-first list of (price, size) tuples.
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

/* bisect.bisect_right(list, x) with the same probes as CPython's _bisect. -1 on error. */
static Py_ssize_t
bisect_right(PyObject *list, PyObject *x)
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
        int res;
        if (xf && PyFloat_CheckExact(item)) {
            res = xd < PyFloat_AS_DOUBLE(item);
            hi = res ? mid : hi;  /* branch-free: the last probes are unpredictable */
            lo = res ? lo : mid + 1;
            continue;
        }
        else {
            Py_INCREF(item);
            res = PyObject_RichCompareBool(x, item, Py_LT);
            Py_DECREF(item);
            if (res < 0)
                return -1;
        }
        if (res)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* bisect.bisect_left(list, x). -1 on error. */
static Py_ssize_t
bisect_left(PyObject *list, PyObject *x)
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
        int res;
        if (xf && PyFloat_CheckExact(item)) {
            res = PyFloat_AS_DOUBLE(item) < xd;
            lo = res ? mid + 1 : lo;
            hi = res ? hi : mid;
            continue;
        }
        else {
            Py_INCREF(item);
            res = PyObject_RichCompareBool(item, x, Py_LT);
            Py_DECREF(item);
            if (res < 0)
                return -1;
        }
        if (res)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
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
    PyObject *bad = NULL;
    int rc = apply_side(args[0], args[1], args[2], KEY_SAME, NULL, NULL, &bad);
    if (rc < 0)
        return NULL;
    if (rc == 1)
        return bad_result(g_bid, bad);
    rc = apply_side(args[3], args[4], args[5], KEY_NEG, NULL, NULL, &bad);
    if (rc < 0)
        return NULL;
    if (rc == 1)
        return bad_result(g_ask, bad);
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
    PyObject *bad = NULL;
    int rc = apply_side(args[0], args[1], args[3], KEY_MUL_POS, args[2], args[4], &bad);
    if (rc < 0)
        return NULL;
    if (rc == 1)
        return bad_result(g_bid, bad);
    rc = apply_side(args[5], args[6], args[8], KEY_MUL_NEG, args[7], args[9], &bad);
    if (rc < 0)
        return NULL;
    if (rc == 1)
        return bad_result(g_ask, bad);
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
    PyObject *sizes = args[0], *keys = args[1];
    Py_ssize_t n;
    if (as_count(args[2], &n) < 0)
        return NULL;
    int negate = PyObject_IsTrue(args[3]);
    if (negate < 0)
        return NULL;
    /* Snapshot the keys first, as the Python slice does. */
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
    Py_DECREF(sl);
    return out;
error:
    Py_DECREF(sl);
    Py_DECREF(out);
    return NULL;
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

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"apply_levels", (PyCFunction)(void (*)(void))apply_levels, METH_FASTCALL, apply_levels_doc},
    {"apply_levels_raw", (PyCFunction)(void (*)(void))apply_levels_raw, METH_FASTCALL, apply_levels_raw_doc},
    {"top_side", (PyCFunction)(void (*)(void))top_side, METH_FASTCALL, top_side_doc},
    {"top_raw_side", (PyCFunction)(void (*)(void))top_raw_side, METH_FASTCALL, top_raw_side_doc},
    {"okx_crc", (PyCFunction)(void (*)(void))okx_crc, METH_FASTCALL, okx_crc_doc},
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
    g_one = PyFloat_FromDouble(1.0);
    g_minus_one = PyFloat_FromDouble(-1.0);
    if (g_one == NULL || g_minus_one == NULL)
        return NULL;
    g_bid = PyUnicode_InternFromString("bid");
    g_ask = PyUnicode_InternFromString("ask");
    if (g_zero == NULL || g_bid == NULL || g_ask == NULL)
        return NULL;
    return PyModule_Create(&module);
}
