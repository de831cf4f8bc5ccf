/*
 * The C API of bookkeeper._speedups, for a venue adapter's own C module (a fused decode + apply).
 *
 * The generic book loops live in bookkeeper/_speedups.c only; a venue module that decodes frames
 * into C doubles applies them through this API instead of copying the loops. How to use it:
 *
 *     PyObject *mod = PyImport_ImportModule("bookkeeper._speedups");
 *     PyObject *cap = PyObject_GetAttrString(mod, "_C_API");
 *     const BkSpeedupsCAPI *api = PyCapsule_GetPointer(cap, BK_SPEEDUPS_CAPSULE);
 *     if (api->version != BK_SPEEDUPS_CAPI_VERSION) -> ImportError
 *
 * The table lives in the providing module's state: keep a strong reference to ``mod`` (not just
 * the capsule) for as long as the pointer is used, e.g. in your own module state. Every function
 * takes ``api->ctx`` as its first argument. Called with the GIL held.
 */
#ifndef BOOKKEEPER_SPEEDUPS_CAPI_H
#define BOOKKEEPER_SPEEDUPS_CAPI_H

#include <Python.h>

#define BK_SPEEDUPS_CAPSULE "bookkeeper._speedups._C_API"
#define BK_SPEEDUPS_CAPI_VERSION 1

/* apply_uncrossed's answers (>= 0); -1 is an error with a Python exception set. */
enum {
    BK_APPLIED = 0,        /* every level was applied */
    BK_MAYBE_CROSSED = 1,  /* nothing touched: the book is, or might end, crossed */
    BK_BAD_STATE = 2,      /* nothing touched: containers are not dict/list, or a best key is not a float */
};

typedef struct BkSpeedupsCAPI {
    int version;  /* BK_SPEEDUPS_CAPI_VERSION */
    void *ctx;    /* the providing module's state: the first argument of every function */

    /* Apply decoded levels to an L2Book's containers (``_bids``, ``_bkeys``, ``_asks``,
     * ``_akeys``: price -> size dicts and sorted key lists, asks keyed by the negated price),
     * exactly as L2Book.apply_delta's level loop does for (float, float) levels -- but ONLY when
     * the book provably cannot end crossed: before, best bid < best ask (or a side empty), and
     * max(best bid, highest new non-zero bid) < min(best ask, lowest new non-zero ask); deletes
     * only move the best levels apart. ``bids``/``asks`` are nb/na pairs of doubles
     * (px0, sz0, px1, sz1, ...) with 0 < px < inf and 0 <= sz < inf (the caller guarantees it).
     * Returns BK_APPLIED, BK_MAYBE_CROSSED or BK_BAD_STATE (nothing touched), or -1 (only a
     * MemoryError mid-loop leaves a partly applied delta). */
    int (*apply_uncrossed)(void *ctx, PyObject *bsizes, PyObject *bkeys, const double *bids, Py_ssize_t nb,
                           PyObject *asizes, PyObject *akeys, const double *asks, Py_ssize_t na);
} BkSpeedupsCAPI;

/* The PEP 489 slots of every bookkeeper extension, after its Py_mod_exec function: all state
 * is per module instance and no C static is written after load, so each interpreter (even with
 * its own GIL) gets an independent instance; the GIL itself is needed, as lists and dicts are
 * edited in place. Use: ``static PyModuleDef_Slot slots[] = {BK_MODULE_SLOTS(my_exec)};`` */
#ifdef Py_mod_multiple_interpreters
#define BK_SLOT_INTERPRETERS {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#else
#define BK_SLOT_INTERPRETERS
#endif
#ifdef Py_mod_gil
#define BK_SLOT_GIL {Py_mod_gil, Py_MOD_GIL_USED},
#else
#define BK_SLOT_GIL
#endif
#define BK_MODULE_SLOTS(exec) {Py_mod_exec, (void *)(exec)}, BK_SLOT_INTERPRETERS BK_SLOT_GIL {0, NULL}

#endif /* BOOKKEEPER_SPEEDUPS_CAPI_H */
