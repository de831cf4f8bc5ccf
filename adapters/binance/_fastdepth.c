/*
 * bookkeeper.adapters.binance._fastdepth -- OPTIONAL C decoder for Binance ``depthUpdate`` frames.
 *
 * Why this exists
 * ---------------
 * The Binance diff-depth stream is the library's hot path. msgspec's typed decode + BookDelta
 * cost ~4 us per message of ~36 levels; this strict-subset reader does it in ~2.1 us, and its
 * fused form (decode + the APPLY case of the sequence rule + apply, no BookDelta) took the
 * parse+seq+apply pipeline from 4.2x to 5.7x ccxt (benchmarks/RESULTS.md, "Fourth session").
 * It is venue knowledge, so it lives beside the Binance adapter; the generic book loop it
 * applies with stays in bookkeeper/_speedups.c and is reached through that module's C API
 * (bookkeeper/_speedups_capi.h), not copied.
 *
 *   binance_depth(frame, ts_recv_ns, BookDelta) -> BookDelta | None
 *       for adapters/binance/parse.py: the BookDelta the msgspec path would build, or None
 *       ("not handled": msgspec decides, errors included).
 *   binance_depth_apply(frame, symbol, model, local, bsizes, bkeys, asizes, akeys)
 *       the fused steady state of a synced Binance book for BookSession.apply_frame_fast
 *       (exposed as adapters.binance.parse.fused_depth); see its section below.
 *
 * Loaded only through bookkeeper._accel.load() (BOOKKEEPER_PURE_PYTHON=1 keeps it out).
 * Module init (PEP 489 multi-phase): the BookDelta keyword names, the shared 0.0 and the
 * reference to bookkeeper._speedups live in the module state; decoded levels go to buffers on
 * the C stack (or the heap for long frames) owned by one call, so nothing is shared between
 * calls, module instances or interpreters, and a call re-entered from Python code run by a
 * dict comparison cannot clobber its caller's levels.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_speedups_capi.h"

typedef struct {
    PyObject *zero;      /* the float 0.0, shared by every zero size (a third of all levels) */
    PyObject *kwnames;   /* ("symbol", "bids", "asks", "first_seq", ...) for BookDelta */
    PyObject *speedups;  /* bookkeeper._speedups: keeps the C API table below alive */
    const BkSpeedupsCAPI *capi;
} State;

static inline State *
get_state(PyObject *module)
{
    return (State *)PyModule_GetState(module);
}

/* ------------------------------------------------------------------ the subset reader */

/* A strict-subset JSON reader for Binance ``depthUpdate`` frames (plain, or the combined-stream
 * envelope ``{"stream":...,"data":{...}}``). binance_depth builds exactly what parse.py's
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

/* After a member of an object or an array: ',' -> 1 (another member follows), ``close`` -> 0
 * (the container ends), both consumed; anything else -> -1 (not ours). */
static inline int
after_member(Cur *c, char close)
{
    skip_ws(c);
    if (c->p < c->end && (*c->p == ',' || *c->p == close))
        return *c->p++ == ',';
    return -1;
}

/* A side's decoded levels as C doubles: on the C stack up to LEVELS_INLINE (most frames), on
 * the heap beyond. Owned by one call: nothing survives it. */
#define LEVELS_INLINE 256

typedef struct {
    double *v;  /* px0, sz0, px1, sz1, ...: ``inline_`` or a PyMem block */
    Py_ssize_t n, cap;
    double inline_[2 * LEVELS_INLINE];
} LevelBuf;

/* [["px","sz"], ...] -> b (prices and sizes checked against the schemas.Px / Sz bounds). */
static int
read_levels(Cur *c, LevelBuf *b)
{
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
            Py_ssize_t cap = 2 * b->cap;
            double *v = b->v == b->inline_ ? PyMem_Malloc((size_t)cap * 2 * sizeof(double))
                                           : PyMem_Realloc(b->v, (size_t)cap * 2 * sizeof(double));
            if (v == NULL) {
                PyErr_NoMemory();
                return DEC_ERR;
            }
            if (b->v == b->inline_)
                memcpy(v, b->inline_, sizeof b->inline_);
            b->v = v;
            b->cap = cap;
        }
        b->v[2 * b->n] = px;
        b->v[2 * b->n + 1] = sz;
        b->n++;
        int more = after_member(c, ']');
        if (more <= 0)
            return more == 0 ? DEC_OK : DEC_NO;
    }
}


typedef struct {
    const char *sym;
    Py_ssize_t sym_len;
    long long U, u, E, pu;
    int has_pu;  /* pu given as an int (0: absent or null) */
    LevelBuf *levels[2];  /* where b (bids) and a (asks) go */
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
            rc = read_levels(c, d->levels[0]);
            break;
        default: /* F_A */
            rc = read_levels(c, d->levels[1]);
            break;
        }
        if (rc != DEC_OK)
            return rc;
    next:
        rc = after_member(c, '}');
        if (rc < 0)
            return DEC_NO;
        if (rc == 0)
            break;
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
        rc = after_member(c, '}');
        if (rc < 0)
            return DEC_NO;
        if (rc == 0)
            break;
    }
    return seen == 3 ? DEC_OK : DEC_NO;
}


/* One decoded frame: its fields and both sides' levels (bids: levels[0], asks: levels[1]). */
typedef struct {
    Depth d;
    LevelBuf levels[2];
} Frame;

/* Decode ``buf`` into *f (always pair with frame_release). DEC_OK, DEC_NO or DEC_ERR. */
static int
frame_decode(Frame *f, const char *buf, Py_ssize_t len)
{
    memset(&f->d, 0, sizeof f->d);
    for (int k = 0; k < 2; k++) {
        f->levels[k].v = f->levels[k].inline_;
        f->levels[k].n = 0;
        f->levels[k].cap = LEVELS_INLINE;
        f->d.levels[k] = &f->levels[k];
    }
    Cur c = {buf, buf + len};
    int rc;
    /* parse.py picks the envelope decoder exactly when the frame starts with '{"stream"' */
    if (len >= 9 && memcmp(buf, "{\"stream\"", 9) == 0)
        rc = read_envelope(&c, &f->d);
    else
        rc = read_depth(&c, &f->d);
    if (rc != DEC_OK)
        return rc;
    skip_ws(&c);
    if (c.p != c.end)
        return DEC_NO;  /* trailing bytes */
    if (f->d.u < f->d.U || f->d.E > 9000000000000LL)
        return DEC_NO;  /* the Python path raises its AdapterError / the int would overflow */
    return DEC_OK;
}

static void
frame_release(Frame *f)
{
    for (int k = 0; k < 2; k++)
        if (f->levels[k].v != f->levels[k].inline_)
            PyMem_Free(f->levels[k].v);
}

/* A side's levels as a new list of (float, float) tuples, as msgspec builds them. */
static PyObject *
levels_list(State *st, const LevelBuf *b)
{
    PyObject *list = PyList_New(b->n);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        PyObject *t = PyTuple_New(2);
        if (t == NULL)
            goto error;
        PyList_SET_ITEM(list, i, t);  /* list and tuple tolerate NULL items until filled */
        double px = b->v[2 * i], sz = b->v[2 * i + 1];
        PyObject *pf = PyFloat_FromDouble(px);
        if (pf == NULL)
            goto error;
        PyTuple_SET_ITEM(t, 0, pf);
        /* sz is +0.0 here: the decimal has no sign */
        PyObject *sf = sz == 0.0 ? Py_NewRef(st->zero) : PyFloat_FromDouble(sz);
        if (sf == NULL)
            goto error;
        PyTuple_SET_ITEM(t, 1, sf);
    }
    return list;
error:
    Py_DECREF(list);
    return NULL;
}

/* BookDelta(symbol=s, bids=b, asks=a, first_seq=U, last_seq=u, prev_seq=pu,
 *           ts_exchange_ns=E * 1_000_000, ts_recv_ns=ts_recv_ns) */
static PyObject *
build_delta(State *st, const Frame *f, PyObject *ts_recv_ns, PyObject *book_delta)
{
    const Depth *d = &f->d;
    PyObject *vals[8] = {NULL};
    PyObject *result = NULL;
    vals[0] = PyUnicode_New(d->sym_len, 127);
    if (vals[0] != NULL)
        memcpy(PyUnicode_DATA(vals[0]), d->sym, (size_t)d->sym_len);
    vals[1] = levels_list(st, &f->levels[0]);
    vals[2] = levels_list(st, &f->levels[1]);
    vals[3] = PyLong_FromLongLong(d->U);
    vals[4] = PyLong_FromLongLong(d->u);
    vals[5] = d->has_pu ? PyLong_FromLongLong(d->pu) : Py_NewRef(Py_None);
    vals[6] = PyLong_FromLongLong(d->E * 1000000LL);
    vals[7] = ts_recv_ns;  /* borrowed */
    int ok = 1;
    for (int i = 0; i < 7; i++)
        ok &= vals[i] != NULL;
    if (ok)
        result = PyObject_Vectorcall(book_delta, vals, 0, st->kwnames);
    for (int i = 0; i < 7; i++)
        Py_XDECREF(vals[i]);
    return result;  /* NULL if an allocation or BookDelta raised */
}

/* TypeError(usage) and 1 unless the call has ``want`` arguments. */
static int
wrong_nargs(Py_ssize_t nargs, Py_ssize_t want, const char *usage)
{
    if (nargs == want)
        return 0;
    PyErr_SetString(PyExc_TypeError, usage);
    return 1;
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
    if (wrong_nargs(nargs, 3, "binance_depth(frame, ts_recv_ns, BookDelta)"))
        return NULL;
    PyObject *frame = args[0];
    if (!PyBytes_CheckExact(frame))
        Py_RETURN_NONE;
    Frame f;
    int rc = frame_decode(&f, PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame));
    PyObject *result = NULL;
    if (rc == DEC_OK)
        result = build_delta(get_state(self), &f, args[1], args[2]);
    else if (rc == DEC_NO)
        result = Py_NewRef(Py_None);
    frame_release(&f);
    return result;
}

/* ------------------------------------------------------------------ fused steady state */

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
 * levels kept as C doubles instead of tuples), the APPLY test, then bookkeeper._speedups'
 * apply_uncrossed (L2Book.apply_delta's level loop, applied only when the book provably cannot
 * end crossed), no BookDelta. Its caller is BookSession.apply_frame_fast (through
 * L2Book.apply_frame, which hands over the containers), which gates it (SYNCED, no bridge, no
 * checksum, no truncation, no per-level ids, no raw strings, book not poisoned) and does the
 * bookkeeping of an applied delta (Sequencer.advance, stats.deltas_applied). On ANY status the
 * caller must take the normal path for the frame -- decoder.decode() -> session.on_delta() --
 * which stays the single source of truth for every decision (stale, duplicate, gap, crossed,
 * bad frame, ...).
 *
 * The sequence rule lives in bookkeeper/sequencer.py (Sequencer._check_range /
 * _check_pointer). This function may ONLY answer its single APPLY case, for two models, with
 * ``local`` an int: model 1 CONTIGUOUS_RANGE: u > local and U <= local + 1; model 2
 * PREV_POINTER: pu == local and u != local. Anything else returns 2 and the Sequencer decides.
 * Change this only in step with Sequencer (tests/speedups/test_fastpath.py checks both).
 * Only a MemoryError mid-apply leaves a partly applied delta (raised).
 */
enum { FAST_NOT_OURS = 1, FAST_NOT_APPLY = 2, FAST_MAYBE_CROSSED = 3, FAST_BAD_STATE = 4 };

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

/* The decoded frame against the book: a status, or the (U, u) tuple once applied. */
static PyObject *
apply_decoded(State *st, const Frame *f, PyObject *symbol, long model, long long local,
              PyObject *const *book)
{
    const Depth *d = &f->d;
    Py_ssize_t sym_len;
    const char *sym = PyUnicode_AsUTF8AndSize(symbol, &sym_len);
    if (sym == NULL)
        return NULL;
    if (sym_len != d->sym_len || memcmp(sym, d->sym, (size_t)sym_len) != 0)
        return PyLong_FromLong(FAST_NOT_OURS);

    /* The APPLY case of Sequencer's rule ONLY (bookkeeper/sequencer.py); see above. */
    int apply;
    if (model == 1)
        apply = d->u > local && d->U - 1 <= local;
    else
        apply = d->has_pu && d->pu == local && d->u != local;
    if (!apply)
        return PyLong_FromLong(FAST_NOT_APPLY);

    const LevelBuf *b = &f->levels[0], *a = &f->levels[1];
    int rc = st->capi->apply_uncrossed(st->capi->ctx, book[0], book[1], b->v, b->n, book[2], book[3], a->v, a->n);
    if (rc < 0)
        return NULL;
    if (rc == BK_MAYBE_CROSSED)
        return PyLong_FromLong(FAST_MAYBE_CROSSED);
    if (rc != BK_APPLIED)
        return PyLong_FromLong(FAST_BAD_STATE);
    PyObject *first = PyLong_FromLongLong(d->U);
    PyObject *last = first ? PyLong_FromLongLong(d->u) : NULL;
    PyObject *out = last ? PyTuple_Pack(2, first, last) : NULL;
    Py_XDECREF(first);
    Py_XDECREF(last);
    return out;
}

PyDoc_STRVAR(binance_depth_apply_doc,
"binance_depth_apply(frame, symbol, model, local, bsizes, bkeys, asizes, akeys)\n"
"-> (first_seq, last_seq) | int\n\n"
"Fused decode + the APPLY case of the sequence rule + apply for a synced Binance book\n"
"(see the C source). A tuple: applied; an int: nothing was touched, take the normal path.");

static PyObject *
binance_depth_apply(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (wrong_nargs(nargs, 8, "binance_depth_apply(frame, symbol, model, local, bsizes, bkeys, asizes, akeys)"))
        return NULL;
    PyObject *frame = args[0], *symbol = args[1];
    long model = PyLong_Check(args[2]) ? PyLong_AsLong(args[2]) : 0;
    if (model == -1 && PyErr_Occurred())
        return NULL;
    if ((model != 1 && model != 2) || !PyLong_CheckExact(args[3]) || !PyUnicode_Check(symbol))
        return PyLong_FromLong(FAST_BAD_STATE);
    int overflow = 0;
    long long local = PyLong_AsLongLongAndOverflow(args[3], &overflow);
    if (local == -1 && PyErr_Occurred())
        return NULL;
    if (overflow)
        return PyLong_FromLong(FAST_BAD_STATE);
    if (!PyBytes_CheckExact(frame))
        return PyLong_FromLong(FAST_NOT_OURS);
    const char *buf = PyBytes_AS_STRING(frame);
    Py_ssize_t len = PyBytes_GET_SIZE(frame);
    /* parse.decode() only takes the depth decoders for frames containing "depthUpdate" */
    if (!has_depth_update(buf, len))
        return PyLong_FromLong(FAST_NOT_OURS);
    Frame f;
    int rc = frame_decode(&f, buf, len);
    PyObject *out;
    if (rc == DEC_OK)
        out = apply_decoded(get_state(self), &f, symbol, model, local, &args[4]);
    else
        out = rc == DEC_ERR ? NULL : PyLong_FromLong(FAST_NOT_OURS);
    frame_release(&f);
    return out;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"binance_depth", (PyCFunction)(void (*)(void))binance_depth, METH_FASTCALL, binance_depth_doc},
    {"binance_depth_apply", (PyCFunction)(void (*)(void))binance_depth_apply, METH_FASTCALL,
     binance_depth_apply_doc},
    {NULL, NULL, 0, NULL},
};

static int
fastdepth_traverse(PyObject *m, visitproc visit, void *arg)
{
    State *st = get_state(m);
    Py_VISIT(st->zero);
    Py_VISIT(st->kwnames);
    Py_VISIT(st->speedups);
    return 0;
}

static int
fastdepth_clear(PyObject *m)
{
    State *st = get_state(m);
    st->capi = NULL;
    Py_CLEAR(st->zero);
    Py_CLEAR(st->kwnames);
    Py_CLEAR(st->speedups);
    return 0;
}

static void
fastdepth_free(void *m)
{
    fastdepth_clear((PyObject *)m);
}

/* Py_mod_exec: fill this instance's state (a fresh, zeroed one per import / interpreter). */
static int
fastdepth_exec(PyObject *m)
{
    State *st = get_state(m);
    /* The generic level loop: bookkeeper._speedups' C API (held through the module). */
    st->speedups = PyImport_ImportModule("bookkeeper._speedups");
    if (st->speedups == NULL)
        return -1;
    PyObject *capsule = PyObject_GetAttrString(st->speedups, "_C_API");
    if (capsule == NULL)
        return -1;
    st->capi = (const BkSpeedupsCAPI *)PyCapsule_GetPointer(capsule, BK_SPEEDUPS_CAPSULE);
    Py_DECREF(capsule);
    if (st->capi == NULL)
        return -1;
    if (st->capi->version != BK_SPEEDUPS_CAPI_VERSION) {
        PyErr_Format(PyExc_ImportError, "bookkeeper._speedups C API version %d, expected %d (rebuild both)",
                     st->capi->version, BK_SPEEDUPS_CAPI_VERSION);
        st->capi = NULL;
        return -1;
    }
    st->zero = PyFloat_FromDouble(0.0);
    if (st->zero == NULL)
        return -1;
    static const char *const kw[8] = {"symbol", "bids", "asks", "first_seq", "last_seq", "prev_seq",
                                      "ts_exchange_ns", "ts_recv_ns"};
    st->kwnames = PyTuple_New(8);
    if (st->kwnames == NULL)
        return -1;
    for (int i = 0; i < 8; i++) {
        PyObject *name = PyUnicode_InternFromString(kw[i]);
        if (name == NULL)
            return -1;
        PyTuple_SET_ITEM(st->kwnames, i, name);
    }
    return 0;
}

static PyModuleDef_Slot slots[] = {BK_MODULE_SLOTS(fastdepth_exec)};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "bookkeeper.adapters.binance._fastdepth", .m_size = sizeof(State),
    .m_doc = "Optional C decoder of Binance depthUpdate frames (see the C source header).",
    .m_methods = methods, .m_slots = slots,
    .m_traverse = fastdepth_traverse, .m_clear = fastdepth_clear, .m_free = fastdepth_free,
};

PyMODINIT_FUNC
PyInit__fastdepth(void)
{
    return PyModuleDef_Init(&module);
}
