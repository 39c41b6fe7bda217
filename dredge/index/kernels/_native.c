/* dredge.index.kernels._native: the index's compiled kernels (wrapped by intervals.py,
 * layout.py and lookup.py beside this file, which check dtypes and allocate the outputs).
 *
 * Arrays arrive through the buffer protocol as raw bytes (``y*`` read-only, ``w*``
 * writable); every length is checked against the counts a loop will use before it runs,
 * and every offset read from a table is checked before it is followed, so hostile input
 * raises ValueError/IndexError instead of reading or writing out of bounds. Loops run
 * without the GIL. Integer arithmetic wraps like the numba kernels it replaces (unsigned
 * arithmetic where an int64 sum or difference may overflow), so results are bit for bit
 * the same.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define K1 0x9E3779B97F4A7C15ULL
#define K2 0xC2B2AE3D27D4EB4FULL
#define OPEN_ 2147483647LL /* int32 max: "still owned" */
#define W4 4               /* uint32 words per IPv4 slot */
#define W6 8               /* per IPv6 slot */
#define AHEAD 16           /* rows between a slot's prefetch and its probe */
#define PENDING 16         /* rows between a segment run's prefetch and its search (2^k) */
#define SMALL_RUN 32       /* runs of equal hashes longer than this: merge sort */

enum { OK = 0, E_CORRUPT, E_INDEX, E_NOMEM };

static PyObject *fail(int status, const char *what) {
    if (status == E_NOMEM) return PyErr_NoMemory();
    PyErr_SetString(status == E_INDEX ? PyExc_IndexError : PyExc_ValueError, what);
    return NULL;
}

static void release(Py_buffer *b, int n) {
    for (int i = 0; i < n; i++) PyBuffer_Release(&b[i]);
}

/* elements of a buffer of items of `size` bytes */
#define COUNT(buf, size) ((buf).len / (Py_ssize_t)(size))

static inline int64_t wadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t wsub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }

static inline uint64_t hash4(uint64_t lo) { return lo * K1; }

static inline uint64_t hash6(uint64_t hi, uint64_t lo) {
    uint64_t h = (lo * K1) ^ (hi * K2);
    h ^= h >> 31;
    return h * K1;
}

static inline void prefetch(const void *base, int64_t byte_offset) {
    /* an address past the end is harmless: a prefetch never faults */
    __builtin_prefetch((const void *)((uintptr_t)base + (uintptr_t)byte_offset), 0, 3);
}

/* ---------------------------------------------------------------- intervals */

static PyObject *py_flatten(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer b[8]; /* group, start, end, owner; og, os, oe, oo */
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*w*w*w*", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                          &b[6], &b[7]))
        return NULL;
    const int64_t *group = b[0].buf, *start = b[1].buf, *end = b[2].buf;
    const int32_t *owner = b[3].buf;
    int64_t *og = b[4].buf, *os_ = b[5].buf, *oe = b[6].buf;
    int32_t *oo = b[7].buf;
    Py_ssize_t n = COUNT(b[0], 8), cap = 2 * n + 1;
    if (COUNT(b[1], 8) < n || COUNT(b[2], 8) < n || COUNT(b[3], 4) < n || COUNT(b[4], 8) < cap
        || COUNT(b[5], 8) < cap || COUNT(b[6], 8) < cap || COUNT(b[7], 4) < cap) {
        release(b, 8);
        return PyErr_Format(PyExc_ValueError, "flatten: arrays shorter than %zd rows", n);
    }
    int64_t *stack = PyMem_RawMalloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (!stack) {
        release(b, 8);
        return PyErr_NoMemory();
    }
    Py_ssize_t m = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t a = 0;
    while (a < n) {
        Py_ssize_t bb = a;
        while (bb < n && group[bb] == group[a]) bb++;
        int64_t g = group[a], cur = start[a];
        Py_ssize_t sp = 0; /* at most bb - a <= n entries */
        for (Py_ssize_t j = a; j <= bb; j++) {
            int64_t t = j < bb ? start[j] : INT64_MAX;
            while (sp > 0) {
                int64_t top = stack[sp - 1];
                if (end[top] > t) break;
                if (end[top] > cur) { /* emit [cur, end[top]) for owner[top] */
                    if (m > 0 && og[m - 1] == g && oe[m - 1] == cur && oo[m - 1] == owner[top]) {
                        oe[m - 1] = end[top];
                    } else {
                        og[m] = g; os_[m] = cur; oe[m] = end[top]; oo[m] = owner[top];
                        m++;
                    }
                    cur = end[top];
                }
                sp--;
            }
            if (j == bb) break;
            if (sp > 0 && t > cur) {
                int64_t top = stack[sp - 1];
                if (m > 0 && og[m - 1] == g && oe[m - 1] == cur && oo[m - 1] == owner[top]) {
                    oe[m - 1] = t;
                } else {
                    og[m] = g; os_[m] = cur; oe[m] = t; oo[m] = owner[top];
                    m++;
                }
            }
            stack[sp++] = j;
            if (t > cur || sp == 1) cur = t;
        }
        a = bb;
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(stack);
    release(b, 8);
    return PyLong_FromSsize_t(m);
}

static PyObject *py_merge_sorted(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer b[11]; /* a0..a4, b0..b4, out */
    int uns;
    if (!PyArg_ParseTuple(args, "(y*y*y*y*y*)(y*y*y*y*y*)w*i", &b[0], &b[1], &b[2], &b[3], &b[4],
                          &b[5], &b[6], &b[7], &b[8], &b[9], &b[10], &uns))
        return NULL;
    Py_ssize_t na = COUNT(b[0], 8), nb = COUNT(b[5], 8);
    int ok = COUNT(b[10], 8) >= na + nb;
    for (int k = 1; k < 5; k++) ok = ok && COUNT(b[k], 8) >= na && COUNT(b[5 + k], 8) >= nb;
    if (!ok) {
        release(b, 11);
        return PyErr_Format(PyExc_ValueError, "merge_sorted: key arrays of unequal lengths");
    }
    int64_t *out = b[10].buf;
    /* keys read as uint64; a signed key's sign bit flipped gives its order as an unsigned one */
    const uint64_t *a0 = b[0].buf, *a1 = b[1].buf, *a2 = b[2].buf, *a3 = b[3].buf, *a4 = b[4].buf;
    const uint64_t *b0 = b[5].buf, *b1 = b[6].buf, *b2 = b[7].buf, *b3 = b[8].buf, *b4 = b[9].buf;
    const uint64_t f0 = uns & 1 ? 0 : 1ULL << 63, f1 = uns & 2 ? 0 : 1ULL << 63,
                   f2 = uns & 4 ? 0 : 1ULL << 63, f3 = uns & 8 ? 0 : 1ULL << 63,
                   f4 = uns & 16 ? 0 : 1ULL << 63;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t i = 0, j = 0, k = 0;
    while (i < na && j < nb) {
        int take_b; /* on the first key that differs (or the last) */
        if (b0[j] != a0[i]) take_b = (b0[j] ^ f0) < (a0[i] ^ f0);
        else if (b1[j] != a1[i]) take_b = (b1[j] ^ f1) < (a1[i] ^ f1);
        else if (b2[j] != a2[i]) take_b = (b2[j] ^ f2) < (a2[i] ^ f2);
        else if (b3[j] != a3[i]) take_b = (b3[j] ^ f3) < (a3[i] ^ f3);
        else take_b = (b4[j] ^ f4) < (a4[i] ^ f4);
        out[k++] = take_b ? na + j++ : i++;
    }
    while (i < na) out[k++] = i++;
    while (j < nb) out[k++] = na + j++;
    Py_END_ALLOW_THREADS
    release(b, 11);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- layout */

static PyObject *py_addr_hash(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer b[4]; /* fam, hi, lo, out */
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &b[0], &b[1], &b[2], &b[3])) return NULL;
    Py_ssize_t n = COUNT(b[0], 1);
    if (COUNT(b[1], 8) < n || COUNT(b[2], 8) < n || COUNT(b[3], 8) < n) {
        release(b, 4);
        return PyErr_Format(PyExc_ValueError, "addr_hash: arrays shorter than %zd rows", n);
    }
    const int8_t *fam = b[0].buf;
    const uint64_t *hi = b[1].buf, *lo = b[2].buf;
    uint64_t *out = b[3].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) out[i] = fam[i] == 6 ? hash6(hi[i], lo[i]) : hash4(lo[i]);
    Py_END_ALLOW_THREADS
    release(b, 4);
    Py_RETURN_NONE;
}

/* stable sort of rows run[0:n] by start[row] (tmp: n scratch entries) */
static void merge_sort(int64_t *run, int64_t *tmp, Py_ssize_t n, const int64_t *start) {
    for (Py_ssize_t width = 1; width < n; width *= 2) {
        for (Py_ssize_t lo = 0; lo < n; lo += 2 * width) {
            Py_ssize_t mid = lo + width < n ? lo + width : n;
            Py_ssize_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            Py_ssize_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = start[run[j]] < start[run[i]] ? run[j++] : run[i++];
            while (i < mid) tmp[k++] = run[i++];
            while (j < hi) tmp[k++] = run[j++];
        }
        memcpy(run, tmp, sizeof(int64_t) * (size_t)n);
    }
}

static PyObject *py_sort_runs(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer b[6]; /* order (rw), h, fam, hi, lo, start */
    if (!PyArg_ParseTuple(args, "w*y*y*y*y*y*", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]))
        return NULL;
    int64_t *order = b[0].buf;
    const uint64_t *h = b[1].buf, *hi = b[3].buf, *lo = b[4].buf;
    const int8_t *fam = b[2].buf;
    const int64_t *start = b[5].buf;
    Py_ssize_t n = COUNT(b[0], 8), rows = COUNT(b[1], 8);
    if (COUNT(b[2], 1) < rows) rows = COUNT(b[2], 1);
    if (COUNT(b[3], 8) < rows) rows = COUNT(b[3], 8);
    if (COUNT(b[4], 8) < rows) rows = COUNT(b[4], 8);
    if (COUNT(b[5], 8) < rows) rows = COUNT(b[5], 8);
    int status = OK, same = 1;
    int64_t *tmp = NULL;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && status == OK; i++)
        if (order[i] < 0 || order[i] >= rows) status = E_INDEX;
    Py_ssize_t i = 0;
    while (i < n && status == OK) {
        int64_t r0 = order[i];
        Py_ssize_t j = i + 1;
        while (j < n && h[order[j]] == h[r0]) {
            int64_t r = order[j];
            if (fam[r] != fam[r0] || hi[r] != hi[r0] || lo[r] != lo[r0]) {
                same = 0;
                break;
            }
            j++;
        }
        if (!same) break;
        if (j - i > SMALL_RUN) {
            if (!tmp) tmp = PyMem_RawMalloc(sizeof(int64_t) * (size_t)n);
            if (!tmp) status = E_NOMEM;
            else merge_sort(order + i, tmp, j - i, start);
        } else {
            for (Py_ssize_t k = i + 1; k < j; k++) { /* insertion sort, ties keep their order */
                int64_t r = order[k];
                Py_ssize_t m = k;
                while (m > i && start[order[m - 1]] > start[r]) {
                    order[m] = order[m - 1];
                    m--;
                }
                order[m] = r;
            }
        }
        i = j;
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(tmp);
    release(b, 6);
    if (status != OK) return fail(status, "sort_runs: a row number out of range");
    return PyBool_FromLong(same);
}

static PyObject *py_probe_slots(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer b[2]; /* home, out */
    if (!PyArg_ParseTuple(args, "y*w*", &b[0], &b[1])) return NULL;
    Py_ssize_t n = COUNT(b[0], 8);
    if (COUNT(b[1], 8) < n) {
        release(b, 2);
        return PyErr_Format(PyExc_ValueError, "probe_slots: output shorter than %zd", n);
    }
    const int64_t *home = b[0].buf;
    int64_t *slot = b[1].buf, nxt = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t s = home[i] > nxt ? home[i] : nxt;
        slot[i] = s;
        nxt = wadd(s, 1);
    }
    Py_END_ALLOW_THREADS
    release(b, 2);
    Py_RETURN_NONE;
}

/* x - base clipped to [0, top] (base + top wraps like numba's int64) */
static inline int64_t relative(int64_t x, int64_t base, int64_t top) {
    if (x <= base) return 0;
    if (x >= wadd(base, top)) return top;
    return wsub(x, base);
}

static PyObject *py_fill_table(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer b[10]; /* tab (rw), slot, hi, lo, first, count, start, end, owner, seg (rw) */
    Py_ssize_t width, keys, pos;
    long long base;
    if (!PyArg_ParseTuple(args, "w*nny*y*y*y*y*y*y*y*Lw*n", &b[0], &width, &keys, &b[1], &b[2],
                          &b[3], &b[4], &b[5], &b[6], &b[7], &b[8], &base, &b[9], &pos))
        return NULL;
    uint32_t *tab = b[0].buf;
    const int64_t *slot = b[1].buf, *first = b[4].buf, *count = b[5].buf;
    const uint64_t *hi = b[2].buf, *lo = b[3].buf;
    const int64_t *start = b[6].buf, *end = b[7].buf;
    const int32_t *owner = b[8].buf;
    int32_t *seg = b[9].buf;
    Py_ssize_t n = COUNT(b[1], 8), rows = COUNT(b[6], 8), segrows = COUNT(b[9], 12);
    if (COUNT(b[7], 8) < rows) rows = COUNT(b[7], 8);
    if (COUNT(b[8], 4) < rows) rows = COUNT(b[8], 4);
    if ((keys != 1 && keys != 4) || width < keys + 3) {
        release(b, 10);
        return PyErr_Format(PyExc_ValueError, "fill_table: bad width %zd or keys %zd", width, keys);
    }
    if (COUNT(b[2], 8) < n || COUNT(b[3], 8) < n || COUNT(b[4], 8) < n || COUNT(b[5], 8) < n) {
        release(b, 10);
        return PyErr_Format(PyExc_ValueError, "fill_table: arrays shorter than %zd rows", n);
    }
    Py_ssize_t size = COUNT(b[0], 4) / width, w = keys;
    int status = OK;
    Py_BEGIN_ALLOW_THREADS
    int64_t s_free = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t s = slot[i], a = first[i], c = count[i];
        if (s < 0 || s >= size || a < 0 || a >= rows || c < 1 || c > rows - a || pos < 0) {
            status = E_INDEX;
            break;
        }
        for (; s_free < s; s_free++) tab[width * s_free + w + 2] = (uint32_t)pos;
        uint32_t *o = tab + width * s;
        if (keys == 1) {
            o[0] = (uint32_t)lo[i];
        } else {
            o[0] = (uint32_t)(hi[i] >> 32);
            o[1] = (uint32_t)hi[i];
            o[2] = (uint32_t)(lo[i] >> 32);
            o[3] = (uint32_t)lo[i];
        }
        int64_t bb = a + c, e = relative(end[bb - 1], base, OPEN_);
        if (e == OPEN_) { /* still owned: the tail */
            bb--;
            o[w] = (uint32_t)relative(start[bb], base, OPEN_ - 1);
            o[w + 1] = (uint32_t)((int64_t)owner[bb] + 2);
        } else { /* nobody from the last end on */
            o[w] = (uint32_t)e;
            o[w + 1] = 1;
        }
        o[w + 2] = (uint32_t)pos;
        if (bb - a > segrows - pos) {
            status = E_INDEX;
            break;
        }
        for (int64_t k = a; k < bb; k++, pos++) {
            seg[3 * pos] = (int32_t)relative(start[k], base, OPEN_ - 1);
            seg[3 * pos + 1] = (int32_t)relative(end[k], base, OPEN_);
            seg[3 * pos + 2] = owner[k];
        }
        s_free = s + 1;
    }
    if (status == OK)
        for (; s_free < size; s_free++) tab[width * s_free + w + 2] = (uint32_t)pos;
    Py_END_ALLOW_THREADS
    release(b, 10);
    if (status != OK) return fail(status, "fill_table: a slot, row or segment out of range");
    return PyLong_FromSsize_t(pos);
}

/* ---------------------------------------------------------------- lookups */

typedef struct {
    const uint32_t *tab;
    unsigned shift; /* 64 - bits: a hash's top bits are its home slot */
} table_t;

/* A table of `width`-word slots and 1 << bits home slots is safe to probe if a free slot
 * (its word `taken` is 0) follows them all: every probe stops there at the latest, and the
 * slot after a taken one (where the taken one's segments end) is inside the table. */
static int check_table(const Py_buffer *buf, Py_ssize_t width, Py_ssize_t taken, Py_ssize_t bits,
                       table_t *t) {
    Py_ssize_t size = COUNT(*buf, 4) / width;
    if (bits < 1 || bits > 48 || size <= ((Py_ssize_t)1 << bits)
        || ((const uint32_t *)buf->buf)[width * (size - 1) + taken] != 0) {
        PyErr_SetString(PyExc_ValueError, "lookup: a hash table without its free last slot");
        return -1;
    }
    t->tab = buf->buf;
    t->shift = (unsigned)(64 - bits);
    return 0;
}

/* slot of an IPv4 address, or -1 */
static inline int64_t find4(const table_t *t, uint64_t lo) {
    int64_t s = (int64_t)(hash4(lo) >> t->shift);
    uint32_t key = (uint32_t)lo, taken = t->tab[W4 * s + 2];
    while (taken != 0 && t->tab[W4 * s] != key) taken = t->tab[W4 * ++s + 2];
    return taken != 0 ? s : -1;
}

/* slot of an IPv6 address, or -1 */
static inline int64_t find6(const table_t *t, uint64_t hi, uint64_t lo) {
    int64_t s = (int64_t)(hash6(hi, lo) >> t->shift);
    uint32_t k0 = (uint32_t)(hi >> 32), k1 = (uint32_t)hi, k2 = (uint32_t)(lo >> 32), k3 = (uint32_t)lo;
    const uint32_t *tab = t->tab;
    uint32_t taken = tab[W6 * s + 5];
    while (taken != 0 && !(tab[W6 * s + 3] == k3 && tab[W6 * s + 2] == k2
                           && tab[W6 * s + 1] == k1 && tab[W6 * s] == k0))
        taken = tab[W6 * ++s + 5];
    return taken != 0 ? s : -1;
}

/* owner of slot s at relative time tr if tr is at or after the tail's start (-1: nobody;
 * *a = *b = 0), else -1 and the run [*a, *b) of segments to search */
static inline int64_t at(const uint32_t *tab, int64_t width, int64_t keys, int64_t s, int64_t tr,
                         int64_t *a, int64_t *b) {
    const uint32_t *w = tab + width * s + keys;
    if (tr >= (int64_t)w[0]) {
        *a = *b = 0;
        return (int64_t)w[1] - 2;
    }
    *a = w[2];
    *b = w[width + 2];
    return -1;
}

/* owner among segments [a, b) at relative time tr, or -1 */
static inline int64_t search(const int32_t *seg, int64_t a, int64_t b, int64_t tr) {
    int64_t k;
    if (b - a <= 8) {
        k = b - 1;
        while (k >= a && seg[3 * k] > tr) k--;
    } else {
        int64_t lo = a, hi = b;
        while (lo < hi) {
            int64_t mid = (lo + hi) >> 1;
            if (seg[3 * mid] <= tr) lo = mid + 1;
            else hi = mid;
        }
        k = lo - 1;
    }
    return k >= a && tr < seg[3 * k + 1] ? seg[3 * k + 2] : -1;
}

static PyObject *py_lookup(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer b[8]; /* fam, hi, lo, t, tab4, tab6, seg, out (rw) */
    Py_ssize_t bits4, bits6;
    long long base;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*ny*ny*Lw*", &b[0], &b[1], &b[2], &b[3], &b[4], &bits4,
                          &b[5], &bits6, &b[6], &base, &b[7]))
        return NULL;
    const int8_t *fam = b[0].buf;
    const uint64_t *hi = b[1].buf, *lo = b[2].buf;
    const int64_t *t = b[3].buf;
    const int32_t *seg = b[6].buf;
    int32_t *out = b[7].buf;
    Py_ssize_t n = COUNT(b[0], 1);
    int64_t nseg = COUNT(b[6], 12);
    table_t t4, t6;
    if (COUNT(b[1], 8) < n || COUNT(b[2], 8) < n || COUNT(b[3], 8) < n || COUNT(b[7], 4) < n) {
        release(b, 8);
        return PyErr_Format(PyExc_ValueError, "lookup: arrays shorter than %zd rows", n);
    }
    if (check_table(&b[4], W4, 2, bits4, &t4) || check_table(&b[5], W6, 5, bits6, &t6)) {
        release(b, 8);
        return NULL;
    }
    int status = OK;
    int64_t hits = 0;
    Py_BEGIN_ALLOW_THREADS
    /* rows waiting for their segments (prefetched) to arrive: a ring of PENDING */
    int64_t p_row[PENDING], p_a[PENDING], p_b[PENDING], p_t[PENDING];
    int64_t head = 0, tail = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        Py_ssize_t q = r + AHEAD;
        if (q < n) {
            if (fam[q] == 4) {
                int64_t w = W4 * (int64_t)(hash4(lo[q]) >> t4.shift);
                prefetch(t4.tab, 4 * w);
                prefetch(t4.tab, 4 * (w + W4 + 3)); /* the next slot's first segment */
            } else if (fam[q] == 6) {
                int64_t w = W6 * (int64_t)(hash6(hi[q], lo[q]) >> t6.shift);
                prefetch(t6.tab, 4 * w);
                prefetch(t6.tab, 4 * (w + W6 + 6));
            }
        }
        out[r] = -1;
        int8_t f = fam[r];
        int64_t tr = wsub(t[r], base), s, o, a, bb;
        if (tr < 0 || (f != 4 && f != 6)) continue;
        if (tr >= OPEN_) tr = OPEN_ - 1;
        if (f == 4) {
            if ((s = find4(&t4, lo[r])) < 0) continue;
            o = at(t4.tab, W4, 1, s, tr, &a, &bb);
        } else {
            if ((s = find6(&t6, hi[r], lo[r])) < 0) continue;
            o = at(t6.tab, W6, 4, s, tr, &a, &bb);
        }
        if (o >= 0) {
            out[r] = (int32_t)o;
            hits++;
        } else if (bb > a) {
            if (bb > nseg) {
                status = E_CORRUPT;
                break;
            }
            prefetch(seg, 4 * 3 * a);
            prefetch(seg, 4 * (3 * bb - 1));
            int64_t j = tail & (PENDING - 1);
            p_row[j] = r; p_a[j] = a; p_b[j] = bb; p_t[j] = tr;
            if (++tail - head == PENDING) {
                j = head++ & (PENDING - 1);
                o = search(seg, p_a[j], p_b[j], p_t[j]);
                out[p_row[j]] = (int32_t)o;
                hits += o >= 0;
            }
        }
    }
    for (; head < tail; head++) {
        int64_t j = head & (PENDING - 1), o = search(seg, p_a[j], p_b[j], p_t[j]);
        out[p_row[j]] = (int32_t)o;
        hits += o >= 0;
    }
    Py_END_ALLOW_THREADS
    release(b, 8);
    if (status != OK) return fail(status, "lookup: a slot's segments past the segment table");
    return PyLong_FromLongLong(hits);
}

static PyObject *py_lookup_networks(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer b[7]; /* fam, hi, lo, tab4, tab6, seg, out (rw) */
    int net_fam;
    unsigned long long hi_mask, lo_mask;
    Py_ssize_t bits4, bits6;
    long long base;
    if (!PyArg_ParseTuple(args, "y*y*y*iKKy*ny*ny*Lw*", &b[0], &b[1], &b[2], &net_fam, &hi_mask,
                          &lo_mask, &b[3], &bits4, &b[4], &bits6, &b[5], &base, &b[6]))
        return NULL;
    const int8_t *fam = b[0].buf;
    const uint64_t *hi = b[1].buf, *lo = b[2].buf;
    const int32_t *seg = b[5].buf;
    int32_t *out = b[6].buf;
    Py_ssize_t n = COUNT(b[0], 1);
    int64_t nseg = COUNT(b[5], 12);
    table_t t4, t6;
    if (COUNT(b[1], 8) < n || COUNT(b[2], 8) < n || COUNT(b[6], 4) < n) {
        release(b, 7);
        return PyErr_Format(PyExc_ValueError, "lookup_networks: arrays shorter than %zd rows", n);
    }
    if (check_table(&b[3], W4, 2, bits4, &t4) || check_table(&b[4], W6, 5, bits6, &t6)) {
        release(b, 7);
        return NULL;
    }
    int64_t tr = wsub(0, base), found = 0; /* networks are timeless: time 0 */
    int status = OK;
    Py_BEGIN_ALLOW_THREADS
    if (tr >= OPEN_) tr = OPEN_ - 1;
    for (Py_ssize_t r = 0; r < n && tr >= 0; r++) {
        if (out[r] >= 0 || fam[r] != net_fam) continue;
        int64_t s, o, a, bb;
        if (net_fam == 4) {
            if ((s = find4(&t4, lo[r] & lo_mask)) < 0) continue;
            o = at(t4.tab, W4, 1, s, tr, &a, &bb);
        } else {
            if ((s = find6(&t6, hi[r] & hi_mask, lo[r] & lo_mask)) < 0) continue;
            o = at(t6.tab, W6, 4, s, tr, &a, &bb);
        }
        if (bb > a) {
            if (bb > nseg) {
                status = E_CORRUPT;
                break;
            }
            o = search(seg, a, bb, tr);
        }
        if (o >= 0) {
            out[r] = (int32_t)o;
            found++;
        }
    }
    Py_END_ALLOW_THREADS
    release(b, 7);
    if (status != OK) return fail(status, "lookup_networks: a slot's segments past the segment table");
    return PyLong_FromLongLong(found);
}

/* ---------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"flatten", py_flatten, METH_VARARGS, "flatten(group, start, end, owner, og, os, oe, oo) -> m"},
    {"merge_sorted", py_merge_sorted, METH_VARARGS,
     "merge_sorted((a0..a4), (b0..b4), out, unsigned_keys_mask) -> None"},
    {"addr_hash", py_addr_hash, METH_VARARGS, "addr_hash(fam, hi, lo, out) -> None"},
    {"sort_runs", py_sort_runs, METH_VARARGS, "sort_runs(order, h, fam, hi, lo, start) -> bool"},
    {"probe_slots", py_probe_slots, METH_VARARGS, "probe_slots(home, out) -> None"},
    {"fill_table", py_fill_table, METH_VARARGS,
     "fill_table(tab, width, keys, slot, hi, lo, first, count, start, end, owner, base, seg, pos)"
     " -> pos"},
    {"lookup", py_lookup, METH_VARARGS,
     "lookup(fam, hi, lo, t, tab4, bits4, tab6, bits6, seg, base, out) -> hits"},
    {"lookup_networks", py_lookup_networks, METH_VARARGS,
     "lookup_networks(fam, hi, lo, net_fam, hi_mask, lo_mask, tab4, bits4, tab6, bits6, seg,"
     " base, out) -> found"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dredge.index.kernels._native",
    "The index's compiled kernels (wrapped by intervals.py, layout.py, lookup.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
