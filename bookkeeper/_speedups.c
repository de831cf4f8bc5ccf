/*
 * bookkeeper._speedups -- OPTIONAL C accelerator for L2Book's hot loops and the OKX checksum.
 *
 * Why this exists
 * ---------------
 * benchmarks/RESULTS.md (2026-11-26, pure Python, 2 shared cores, CPython 3.11): ~11 us of the
 * pipeline's ~17 us per message was L2Book.apply_delta (~310 ns per level: a Python-level bisect
 * on the sorted key list costs ~11 Python float compares per insert/delete, and ~80 % of real
 * level updates are inserts or deletes). top(25) cost ~3.2 us (50 dict lookups + 50 tuples in a
 * comprehension), and top_raw(25) + okx_checksum ~5.1 us against a <= 3 us target. Those loops
 * are interpreter overhead, not algorithmic work. With this module: apply at 10k levels/side
 * ~167 ns per level (target <= 200), top_raw(25) + okx_checksum ~2.3 us (<= 3). Figures and the
 * commands that reproduce them: benchmarks/RESULTS.md.
 *
 * What it does
 * ------------
 * It works on L2Book's OWN containers (a dict price -> size and a sorted list of keys per side;
 * asks are keyed by the negated price so the best level is last on both sides): nothing new is
 * stored, so the pure-Python path and this one are interchangeable at any moment and are tested
 * against each other (tests/speedups/). Venue knowledge does not live here: a venue's frame
 * decoder lives beside its adapter (adapters/<venue>/) and applies through the C API below.
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
 *   top_both(bsizes, bkeys, asizes, akeys, n)   L2Book.top(n) in one call (up to 64 keys per
 *                         side are snapshotted on the C stack instead of in a sliced list).
 *   top_raw_side(raw, keys, n, negate)    best-first list of the stored raw tuples.
 *   okx_crc(bids, asks)   OKX/Bitget CRC32 (signed) of the top-25 interleaved raw strings, or
 *                         NotImplemented for inputs outside the fast path (non-ASCII text,
 *                         non-str fields, levels that are not 2-tuples/lists, ...): the Python
 *                         implementation then handles them, so results are identical.
 *   _C_API                a capsule (bookkeeper/_speedups_capi.h): apply_uncrossed, the same
 *                         level loop over levels already decoded into C doubles, for a venue's
 *                         fused decode + apply (BookSession.apply_frame_fast).
 *
 * How (each kept only because the benches showed it helps): the level loop runs in C with one
 * dict lookup per level in the common cases (PyDict_SetDefault for a new price, a single pop for
 * a delete); the float bisect compares C doubles with CPython's own probe sequence and prefetches
 * both candidate next probes (a probe is a dependent slot -> object -> value load chain); list
 * inserts/deletes are one memmove (CPython 3.11's list.insert shifts one pointer at a time, and
 * deep levels -- near index 0 -- are inserted all the time); the next level's objects are
 * prefetched. Tried and dropped: a packed-double copy of each key list for the bisect (the
 * second memmove per insert/delete cost what the faster search saved). Bid and ask sides run the
 * same code: a side is a ``Side`` (containers + how its keys are made from prices).
 *
 * Semantics kept identical to the Python code: comparisons of two exact floats are done on the
 * C doubles (which is exactly what CPython's float richcompare does, NaN included); anything
 * else goes through PyObject_RichCompareBool, so non-float / non-integral keys behave as in
 * Python. Dict operations use the public dict API (same hashing/equality as Python). Every
 * error propagates as a Python exception; unpacking errors use CPython 3.11's messages.
 * Reference counting: every borrowed object that is used across a call which may run Python
 * code is INCREF'd first.
 *
 * Module init (PEP 489 multi-phase, Py_mod_exec): every object the code needs (0.0, inf, 1.0,
 * -1.0, "bid", "ask", zlib.crc32) and the C API table live in the MODULE STATE, none in C
 * statics, so importing the module again (after ``del sys.modules[...]``) or in another
 * interpreter builds a new, independent instance. Nothing here is mutable between calls.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_speedups_capi.h"

/* Cache hints only: no semantic effect. */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(addr) __builtin_prefetch((const void *)(addr))
#else
#define PREFETCH(addr) ((void)0)
#endif

/* Everything the functions need besides their arguments: one per module instance. The
 * objects: 0.0, float("inf"), 1.0, -1.0, "bid", "ask" (interned), zlib.crc32. */
#define STATE_OBJECTS(X) X(zero) X(inf) X(one) X(minus_one) X(bid) X(ask) X(crc32)
#define DECLARE(name) PyObject *name;
typedef struct {
    STATE_OBJECTS(DECLARE)
    BkSpeedupsCAPI capi;  /* exported through the _C_API capsule; ctx points back here */
} State;
#undef DECLARE

static inline State *
get_state(PyObject *module)
{
    return (State *)PyModule_GetState(module);
}
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

static inline PyObject *
key_of(State *st, PyObject *p, int mode)
{
    if (mode == KEY_SAME) {
        Py_INCREF(p);
        return p;
    }
    if (mode == KEY_NEG || (mode == KEY_MUL_NEG && PyFloat_CheckExact(p)))
        return negated(p);
    if (PyFloat_CheckExact(p))  /* a NEW object, as 1.0 * p is (it matters for NaN keys: identity) */
        return PyFloat_FromDouble(PyFloat_AS_DOUBLE(p));
    return PyNumber_Multiply(mode == KEY_MUL_POS ? st->one : st->minus_one, p);
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
classify(State *st, PyObject *s)
{
    if (PyFloat_CheckExact(s)) {
        double d = PyFloat_AS_DOUBLE(s);
        if (d > 0.0)
            return 1;
        return d == 0.0 ? 0 : 2;
    }
    int r = PyObject_RichCompareBool(s, st->zero, Py_GT);
    if (r != 0)
        return r;  /* 1 or -1 */
    r = PyObject_RichCompareBool(s, st->zero, Py_EQ);
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
/* ``0.0 < p < inf and 0.0 <= s < inf`` evaluated exactly as Python does (same comparisons, same
 * order, same exceptions); on two exact floats, on the C doubles (NaN fails every comparison).
 * Returns 1 valid, 0 invalid, -1 error. */
static int
level_ok(State *st, PyObject *p, PyObject *s)
{
    if (PyFloat_CheckExact(p) && PyFloat_CheckExact(s)) {
        double dp = PyFloat_AS_DOUBLE(p), ds = PyFloat_AS_DOUBLE(s);
        return dp > 0.0 && dp < Py_HUGE_VAL && ds >= 0.0 && ds < Py_HUGE_VAL;
    }
    int r = PyObject_RichCompareBool(st->zero, p, Py_LT);
    if (r <= 0)
        return r;
    r = PyObject_RichCompareBool(p, st->inf, Py_LT);
    if (r <= 0)
        return r;
    r = PyObject_RichCompareBool(st->zero, s, Py_LE);
    if (r <= 0)
        return r;
    return PyObject_RichCompareBool(s, st->inf, Py_LT);
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

/* One side of a book: its containers and how a price becomes a key of its sorted list. Bids and
 * asks run the same code with a different Side (as bisect_impl's direction flag). */
typedef struct {
    State *st;
    PyObject *sizes, *keys;
    PyObject *raw;    /* price -> exchange strings, or NULL for books without them */
    PyObject *texts;  /* with raw: the delta's strings (a sequence) or Py_None */
    int mode;         /* KEY_* */
    PyObject *name;   /* "bid" / "ask": the first item of a bad-level answer */
} Side;

/* Insert key_of(p, mode) into the sorted list like bisect.insort (right). */
static int
insort_key(Side *sd, PyObject *p)
{
    PyObject *k = key_of(sd->st, p, sd->mode);
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
    PyObject *k = key_of(sd->st, p, sd->mode);
    if (k == NULL)
        return -1;
    Py_ssize_t i = bisect_left(sd->keys, k);
    Py_DECREF(k);
    if (i < 0)
        return -1;
    return list_delete(sd->keys, i);
}

/* ``raw.pop(p, None)`` */
static int
drop_raw(PyObject *raw, PyObject *p)
{
    PyObject *old = dict_pop_or_none(raw, p);
    if (old == NULL)
        return -1;
    Py_DECREF(old);
    return 0;
}

/* One level: ``p``'s size ``s`` (``idx``: its index in the delta, for the exchange strings).
 * Returns 0 ok, 1 bad size, -1 error. */
static inline int
apply_one(Side *sd, PyObject *p, PyObject *s, Py_ssize_t idx)
{
    PyObject *sizes = sd->sizes, *raw = sd->raw, *texts = sd->texts;
    int kind = classify(sd->st, s);
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
            if (texts == Py_None)
                return drop_raw(raw, p);
            PyObject *t = PySequence_GetItem(texts, idx);
            if (t == NULL)
                return -1;
            int rc = PyDict_SetItem(raw, p, t);
            Py_DECREF(t);
            return rc;
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
        return raw != NULL ? drop_raw(raw, p) : 0;
    }
    return 1;
}

/* The validation pass's step: ``if not level_ok(p, s): bad``. 0 ok, 1 bad, -1 error. */
static inline int
check_one(Side *sd, PyObject *p, PyObject *s, Py_ssize_t idx)
{
    (void)idx;
    int ok = level_ok(sd->st, p, s);
    return ok < 0 ? -1 : !ok;
}

/* Decoded messages are normally hot in cache, but a caller replaying pre-built level lists
 * (bench_book.py) reads cold memory: prefetch the tuple two levels ahead and the price/size
 * objects of the next one. Pure hints: no semantic effect. */
static inline void
prefetch_next(PyObject *levels, Py_ssize_t idx)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(levels);
    if (idx + 2 < n)
        PREFETCH(PySequence_Fast_GET_ITEM(levels, idx + 2));
    if (idx + 1 < n) {
        PyObject *nx = PySequence_Fast_GET_ITEM(levels, idx + 1);
        if (PyTuple_CheckExact(nx) && PyTuple_GET_SIZE(nx) == 2) {
            PREFETCH(PyTuple_GET_ITEM(nx, 0));
            PREFETCH(PyTuple_GET_ITEM(nx, 1));
        }
    }
}

typedef int (*LevelStep)(Side *sd, PyObject *p, PyObject *s, Py_ssize_t idx);

/* ``for idx, (p, s) in enumerate(levels): step(p, s)`` over a list or tuple (a list's size is
 * re-read every step, as its iterator does: a comparison may run Python code that changes it).
 * Returns 0 done, 1 the step answered "bad" (*bad = (p, s); earlier levels stay stepped), -1
 * error. Always inlined with a constant ``step``, so the per-level call is direct. */
static inline int
each_level(Side *sd, PyObject *levels, LevelStep step, PyObject **bad)
{
    for (Py_ssize_t idx = 0; idx < PySequence_Fast_GET_SIZE(levels); idx++) {
        PyObject *item = PySequence_Fast_GET_ITEM(levels, idx);
        Py_INCREF(item);
        prefetch_next(levels, idx);
        PyObject *p, *s;
        int owned = unpack2(item, &p, &s);
        if (owned < 0) {
            Py_DECREF(item);
            return -1;
        }
        int rc = step(sd, p, s, idx);
        if (rc == 1)
            *bad = PyTuple_Pack(2, p, s);
        if (owned) {
            Py_DECREF(p);
            Py_DECREF(s);
        }
        Py_DECREF(item);
        if (rc != 0)
            return rc < 0 || *bad == NULL ? -1 : 1;
    }
    return 0;
}

/* Where apply_levels / apply_levels_raw find each side's arguments (-1: not given). */
typedef struct {
    Py_ssize_t nargs;
    int sizes[2], keys[2], raw[2], levels[2], texts[2], mode[2];
    const char *usage;
} Layout;

static const Layout PLAIN = {6, {0, 3}, {1, 4}, {-1, -1}, {2, 5}, {-1, -1}, {KEY_SAME, KEY_NEG},
                             "apply_levels expects 6 arguments"};
static const Layout WITH_RAW = {10, {0, 5}, {1, 6}, {2, 7}, {3, 8}, {4, 9}, {KEY_MUL_POS, KEY_MUL_NEG},
                                "apply_levels_raw expects 10 arguments"};

/* The level loops of L2Book.apply_delta / _apply_raw: list both sides (when needed), validate
 * every level (bids first), then apply bids, then asks. None, (side, p, s) for the first bad
 * level, or NULL on error. */
static PyObject *
apply_book(PyObject *module, PyObject *const *args, Py_ssize_t nargs, const Layout *lay)
{
    if (nargs != lay->nargs) {
        PyErr_SetString(PyExc_TypeError, lay->usage);
        return NULL;
    }
    State *st = get_state(module);
    Side sides[2];
    PyObject *levels[2] = {NULL, NULL}, *bad = NULL, *result = NULL;
    int k, rc = 0, at = 0;
    for (k = 0; k < 2; k++) {
        sides[k] = (Side){st, args[lay->sizes[k]], args[lay->keys[k]],
                          lay->raw[k] < 0 ? NULL : args[lay->raw[k]],
                          lay->texts[k] < 0 ? NULL : args[lay->texts[k]],
                          lay->mode[k], k == 0 ? st->bid : st->ask};
        if ((levels[k] = as_sequence(args[lay->levels[k]])) == NULL)
            goto done;
    }
    /* pass 0 validates every level of both sides, pass 1 applies: nothing is touched unless
     * every level is valid. On a "bad" answer ``at`` is the side that gave it. */
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (at = 0; at < 2; at++) {
            Side *sd = &sides[at];
            if (pass == 0) {
                rc = each_level(sd, levels[at], check_one, &bad);
            }
            else if (!PyDict_CheckExact(sd->sizes) || !PyList_CheckExact(sd->keys)
                     || (sd->raw != NULL && !PyDict_CheckExact(sd->raw))) {
                PyErr_SetString(PyExc_TypeError, "_speedups: sizes must be a dict and keys a list");
                rc = -1;
            }
            else {
                rc = each_level(sd, levels[at], apply_one, &bad);
            }
            if (rc != 0)
                break;
        }
    }
    if (rc == 1)
        result = PyTuple_Pack(3, sides[at].name, PyTuple_GET_ITEM(bad, 0), PyTuple_GET_ITEM(bad, 1));
    else if (rc == 0)
        result = Py_NewRef(Py_None);
done:
    Py_XDECREF(bad);
    Py_XDECREF(levels[0]);
    Py_XDECREF(levels[1]);
    return result;
}

PyDoc_STRVAR(apply_levels_doc,
"apply_levels(bsizes, bkeys, bids, asizes, akeys, asks) -> None | (side, price, size)\n\n"
"The level loop of L2Book.apply_delta (no exchange strings). Returns the first bad level.");

static PyObject *
apply_levels(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return apply_book(self, args, nargs, &PLAIN);
}

PyDoc_STRVAR(apply_levels_raw_doc,
"apply_levels_raw(bsizes, bkeys, braw, bids, bids_raw, asizes, akeys, araw, asks, asks_raw)\n"
"-> None | (side, price, size)\n\n"
"The level loop of L2Book._apply_raw (exchange strings kept in step).");

static PyObject *
apply_levels_raw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return apply_book(self, args, nargs, &WITH_RAW);
}

/* ------------------------------------------------------------------ the C API: decoded levels */

/* The price of a side's best key (keys[-1], negated for asks) into *out: 1; an empty side: 0
 * (*out untouched); -1 if the key is not an exact float. */
static inline int
best_price(PyObject *keys, int ask, double *out)
{
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (n == 0)
        return 0;
    PyObject *k = PyList_GET_ITEM(keys, n - 1);
    if (!PyFloat_CheckExact(k))
        return -1;
    *out = ask ? -PyFloat_AS_DOUBLE(k) : PyFloat_AS_DOUBLE(k);
    return 1;
}

/* The best price a side can reach: ``start`` against every non-zero level (highest for bids,
 * lowest for asks). */
static inline double
reachable_best(const double *v, Py_ssize_t n, double start, int ask)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        double px = v[2 * i];
        if (v[2 * i + 1] != 0.0 && (ask ? px < start : px > start))
            start = px;
    }
    return start;
}

/* The apply_delta loop over levels already decoded into doubles (px0, sz0, ...). */
static int
apply_doubles(Side *sd, const double *v, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        double px = v[2 * i], sz = v[2 * i + 1];
        PyObject *p = PyFloat_FromDouble(px);
        if (p == NULL)
            return -1;
        PyObject *s = sz == 0.0 ? Py_NewRef(sd->st->zero) : PyFloat_FromDouble(sz);
        if (s == NULL) {
            Py_DECREF(p);
            return -1;
        }
        int rc = apply_one(sd, p, s, i);
        Py_DECREF(p);
        Py_DECREF(s);
        if (rc == 1)  /* the caller broke the contract: sizes must be finite and >= 0 */
            PyErr_SetString(PyExc_SystemError, "apply_uncrossed: a size outside [0, inf)");
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* BkSpeedupsCAPI.apply_uncrossed (see bookkeeper/_speedups_capi.h). */
static int
capi_apply_uncrossed(void *ctx, PyObject *bsizes, PyObject *bkeys, const double *bids, Py_ssize_t nb,
                     PyObject *asizes, PyObject *akeys, const double *asks, Py_ssize_t na)
{
    State *st = (State *)ctx;
    if (!PyDict_CheckExact(bsizes) || !PyList_CheckExact(bkeys) || !PyDict_CheckExact(asizes)
            || !PyList_CheckExact(akeys))
        return BK_BAD_STATE;
    Side sides[2] = {{st, bsizes, bkeys, NULL, NULL, KEY_SAME, st->bid},
                     {st, asizes, akeys, NULL, NULL, KEY_NEG, st->ask}};
    const double *levels[2] = {bids, asks};
    Py_ssize_t counts[2] = {nb, na};
    double best[2] = {-Py_HUGE_VAL, Py_HUGE_VAL};
    for (int k = 0; k < 2; k++)
        if (best_price(sides[k].keys, k, &best[k]) < 0)
            return BK_BAD_STATE;
    if (best[0] >= best[1])
        return BK_MAYBE_CROSSED;  /* already crossed: not a steady state */
    for (int k = 0; k < 2; k++)
        best[k] = reachable_best(levels[k], counts[k], best[k], k);
    if (best[0] >= best[1])
        return BK_MAYBE_CROSSED;
    for (int k = 0; k < 2; k++)
        if (apply_doubles(&sides[k], levels[k], counts[k]) < 0)
            return -1;
    return BK_APPLIED;
}

/* ------------------------------------------------------------------ reads */

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
as_count(State *st, PyObject *arg, Py_ssize_t *n)
{
    *n = PyLong_AsSsize_t(arg);
    if (*n == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        int pos = PyObject_RichCompareBool(arg, st->zero, Py_GT);
        if (pos < 0)
            return -1;
        *n = pos ? PY_SSIZE_T_MAX : 0;
    }
    return 0;
}

/* Up to TOP_STACK keys are snapshotted on the stack (INCREF'd) instead of in a new list. */
#define TOP_STACK 64

/* The best ``n`` levels of one side as a new list, best first, exactly as
 * ``[(p, values[p]) for p in keys[:-n-1:-1]]`` (pairs) or ``[values[p] for p in ...]`` (not
 * pairs; asks: ``-k`` for each key k). The keys are snapshotted first, as the Python slice does,
 * because a lookup may run Python code. */
static PyObject *
top_levels(PyObject *values, PyObject *keys, Py_ssize_t n, int negate, int pairs)
{
    Py_ssize_t len = PyList_GET_SIZE(keys);
    Py_ssize_t m = n <= 0 ? 0 : (n < len ? n : len);
    PyObject *stack[TOP_STACK];
    PyObject **snap;
    PyObject *sl = NULL;
    if (m <= TOP_STACK) {
        for (Py_ssize_t j = 0; j < m; j++)
            stack[j] = Py_NewRef(PyList_GET_ITEM(keys, len - 1 - j));  /* best first */
        snap = stack;
    }
    else {
        sl = PyList_GetSlice(keys, len - m, len);
        if (sl == NULL)
            return NULL;
        /* reversed below: best first is index m - 1 - j of the slice */
        snap = ((PyListObject *)sl)->ob_item;
    }
    PyObject *out = PyList_New(m);
    if (out == NULL)
        goto error;
    for (Py_ssize_t j = 0; j < m; j++) {
        PyObject *k = sl == NULL ? snap[j] : snap[m - 1 - j];
        PyObject *p = negate ? negated(k) : Py_NewRef(k);
        if (p == NULL)
            goto error;
        PyObject *v = PyDict_GetItemWithError(values, p);
        if (v == NULL) {
            if (!PyErr_Occurred())
                set_key_error(p);
            Py_DECREF(p);
            goto error;
        }
        PyObject *item;
        if (pairs) {
            item = PyTuple_New(2);
            if (item == NULL) {
                Py_DECREF(p);
                goto error;
            }
            PyTuple_SET_ITEM(item, 0, p);  /* steals p */
            PyTuple_SET_ITEM(item, 1, Py_NewRef(v));
        }
        else {
            item = Py_NewRef(v);
            Py_DECREF(p);
        }
        PyList_SET_ITEM(out, j, item);
    }
    goto done;
error:
    Py_CLEAR(out);
done:
    if (sl == NULL) {
        for (Py_ssize_t j = 0; j < m; j++)
            Py_DECREF(stack[j]);
    }
    Py_XDECREF(sl);
    return out;
}

PyDoc_STRVAR(top_raw_side_doc,
"top_raw_side(raw, keys, n, negate) -> list of the stored raw levels, best first.\n\n"
"Raises KeyError(price) for a level without stored strings, like ``raw[p]``.");

static PyObject *
top_raw_side(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyDict_CheckExact(args[0]) || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "top_raw_side(dict, list, n, negate)");
        return NULL;
    }
    Py_ssize_t n;
    if (as_count(get_state(self), args[2], &n) < 0)
        return NULL;
    int negate = PyObject_IsTrue(args[3]);
    if (negate < 0)
        return NULL;
    return top_levels(args[0], args[1], n, negate, 0);
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
    if (as_count(get_state(self), args[4], &n) < 0)
        return NULL;
    PyObject *b = top_levels(args[0], args[1], n, 0, 1);
    if (b == NULL)
        return NULL;
    PyObject *a = top_levels(args[2], args[3], n, 1, 1);
    if (a == NULL) {
        Py_DECREF(b);
        return NULL;
    }
    PyObject *out = PyTuple_Pack(2, b, a);
    Py_DECREF(b);
    Py_DECREF(a);
    return out;
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
    PyObject *value = PyObject_CallOneArg(get_state(self)->crc32, buf);
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
    {"top_both", (PyCFunction)(void (*)(void))top_both, METH_FASTCALL, top_both_doc},
    {"top_raw_side", (PyCFunction)(void (*)(void))top_raw_side, METH_FASTCALL, top_raw_side_doc},
    {"okx_crc", (PyCFunction)(void (*)(void))okx_crc, METH_FASTCALL, okx_crc_doc},
    {NULL, NULL, 0, NULL},
};

static int
speedups_traverse(PyObject *m, visitproc visit, void *arg)
{
    State *st = get_state(m);
#define VISIT(name) Py_VISIT(st->name);
    STATE_OBJECTS(VISIT)
#undef VISIT
    return 0;
}

static int
speedups_clear(PyObject *m)
{
    State *st = get_state(m);
#define CLEAR(name) Py_CLEAR(st->name);
    STATE_OBJECTS(CLEAR)
#undef CLEAR
    return 0;
}

static void
speedups_free(void *m)
{
    speedups_clear((PyObject *)m);
}

/* Py_mod_exec: fill this instance's state (a fresh, zeroed one per import / interpreter). */
static int
speedups_exec(PyObject *m)
{
    State *st = get_state(m);
    PyObject *zlib = PyImport_ImportModule("zlib");
    if (zlib == NULL)
        return -1;
    st->crc32 = PyObject_GetAttrString(zlib, "crc32");
    Py_DECREF(zlib);
    st->zero = PyFloat_FromDouble(0.0);
    st->inf = PyFloat_FromDouble(Py_HUGE_VAL);
    st->one = PyFloat_FromDouble(1.0);
    st->minus_one = PyFloat_FromDouble(-1.0);
    st->bid = PyUnicode_InternFromString("bid");
    st->ask = PyUnicode_InternFromString("ask");
    if (st->crc32 == NULL || st->zero == NULL || st->inf == NULL || st->one == NULL
            || st->minus_one == NULL || st->bid == NULL || st->ask == NULL)
        return -1;
    st->capi.version = BK_SPEEDUPS_CAPI_VERSION;
    st->capi.ctx = st;
    st->capi.apply_uncrossed = capi_apply_uncrossed;
    /* The table lives in this module's state: a user keeps the MODULE alive (see the header). */
    PyObject *capsule = PyCapsule_New(&st->capi, BK_SPEEDUPS_CAPSULE, NULL);
    if (capsule == NULL)
        return -1;
    int rc = PyModule_AddObjectRef(m, "_C_API", capsule);
    Py_DECREF(capsule);
    return rc;
}

static PyModuleDef_Slot slots[] = {BK_MODULE_SLOTS(speedups_exec)};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "bookkeeper._speedups", .m_size = sizeof(State),
    .m_doc = "Optional C accelerator for bookkeeper.book / bookkeeper.checksum (see the C source header).",
    .m_methods = methods, .m_slots = slots,
    .m_traverse = speedups_traverse, .m_clear = speedups_clear, .m_free = speedups_free,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
