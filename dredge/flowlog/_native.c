/* dredge.flowlog._native: the parse kernels and the rollup's group-by, compiled at install.
 *
 * Called only through thin Python wrappers (dredge/flowlog/kernels.py: parse_lines,
 * count_newlines, parse_addr_strings, gather_slices; dredge/enrich/rollup.py: _aggregate),
 * which check dtypes and allocate the outputs. Arrays arrive through the buffer protocol
 * (contiguous, flat); this file checks every buffer's length against the counts, slots and
 * offsets it is about to use before a loop starts, and loops without the GIL.
 *
 * Results are bit for bit those of the numba kernels these replaced: integers are read with
 * wrapping 64-bit arithmetic, sums saturate at INT64_MAX, addresses are 128-bit
 * (IPv4: family 4, hi 0, lo the address; IPv6: family 6, hi and lo 64 bits each).
 *
 * Fast paths use SSE2 (in every x86-64; plain C elsewhere): token ends 16 bytes a step,
 * integers of up to 16 digits and dotted quads without a loop per byte. Each hands anything
 * unusual (and the last bytes of a buffer) to the plain byte loop, which decides.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ---- addresses ---------------------------------------------------------------------- */

/* A dotted quad in buf[s, e). Returns 1 and sets *out, or 0. The per-byte steps are
 * selects, not branches (a branch on each octet's length mispredicts); the one branch left
 * leaves early at a byte that can never be in one (an IPv6 address's ':' or letter). */
static inline int parse_v4(const uint8_t *buf, Py_ssize_t s, Py_ssize_t e, uint64_t *out)
{
    uint64_t val = 0;
    unsigned octet = 0, ndig = 0, dots = 0, bad = 0;
    for (Py_ssize_t i = s; i < e; i++) {
        unsigned c = buf[i], d = c - 48u;
        unsigned isdig = d <= 9u, isdot = c == 46;
        if (!(isdig | isdot))
            return 0;
        bad |= isdot & ((ndig == 0) | (dots == 3));
        val = isdot ? (val << 8) | octet : val;
        octet = isdig ? octet * 10 + d : 0;
        ndig = isdig ? ndig + 1 : 0;
        dots += isdot;
        bad |= (ndig > 3) | (octet > 255);
    }
    if (bad | (dots != 3) | (ndig == 0))
        return 0;
    *out = (val << 8) | octet;
    return 1;
}

static inline int hexval(unsigned c)
{
    if (c - 48u <= 9u)
        return (int)c - 48;
    if (c - 97u <= 5u)
        return (int)c - 87;
    if (c - 65u <= 5u)
        return (int)c - 55;
    return -1;
}

/* An IPv6 address in buf[s, e) ('::' and an embedded dotted quad allowed). Returns 1 and
 * sets *hi, *lo, or 0 with both zero. */
static int parse_v6(const uint8_t *buf, Py_ssize_t s, Py_ssize_t e, uint64_t *hi, uint64_t *lo)
{
    uint64_t groups[8] = {0};
    int n = 0;   /* groups parsed */
    int dc = -1; /* index in groups where '::' stands */
    Py_ssize_t i = s;
    *hi = 0;
    *lo = 0;
    if (e - s >= 2 && buf[i] == 58 && buf[i + 1] == 58) {
        dc = 0;
        i += 2;
    }
    while (i < e) {
        if (n >= 8)
            return 0;
        Py_ssize_t gs = i;
        uint64_t val = 0;
        while (i < e && i - gs < 5) {
            int h = hexval(buf[i]);
            if (h < 0)
                break;
            val = val * 16 + (uint64_t)h;
            i++;
        }
        if (i < e && buf[i] == 46) { /* embedded IPv4 as the last 32 bits */
            uint64_t v4;
            if (!parse_v4(buf, gs, e, &v4) || n > 6)
                return 0;
            groups[n] = v4 >> 16;
            groups[n + 1] = v4 & 0xFFFF;
            n += 2;
            break;
        }
        if (i == gs || i - gs > 4)
            return 0;
        groups[n++] = val;
        if (i == e)
            break;
        if (buf[i] != 58)
            return 0;
        i++;
        if (i < e && buf[i] == 58) {
            if (dc >= 0)
                return 0;
            dc = n;
            i++;
        } else if (i == e) {
            return 0; /* trailing single ':' */
        }
    }
    if (dc >= 0) {
        if (n > 7)
            return 0;
        int shift = 8 - n;
        for (int k = n - 1; k >= dc; k--)
            groups[k + shift] = groups[k];
        for (int k = dc; k < dc + shift; k++)
            groups[k] = 0;
    } else if (n != 8) {
        return 0;
    }
    uint64_t h = 0, l = 0;
    for (int k = 0; k < 4; k++) {
        h = (h << 16) | groups[k];
        l = (l << 16) | groups[k + 4];
    }
    *hi = h;
    *lo = l;
    return 1;
}

/* The common dotted quad (7 to 15 bytes, four octets of 1 to 3 digits, each <= 255) in one
 * 16-byte step: returns 1 and sets *out, or 0 for anything else (parse_v4 decides then).
 * Reads buf[s, s + 16), which the caller guarantees is inside the buffer. */
static inline int fast_v4(const uint8_t *buf, Py_ssize_t s, Py_ssize_t e, uint64_t *out)
{
#ifdef __SSE2__
    Py_ssize_t len = e - s;
    if (len < 7 || len > 15)
        return 0;
    unsigned valid = (1u << len) - 1;
    __m128i x = _mm_loadu_si128((const __m128i *)(buf + s));
    __m128i t = _mm_sub_epi8(x, _mm_set1_epi8(48));
    __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t);
    unsigned digits = (unsigned)_mm_movemask_epi8(is_digit) & valid;
    unsigned dots = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(46))) & valid;
    if ((digits | dots) != valid || dots == 0)
        return 0;
    uint8_t d[19] = {0}; /* d[k + 3]: the digit at k, 0 at a dot; three zeros in front */
    _mm_storeu_si128((__m128i *)(d + 3), _mm_and_si128(t, is_digit));
    unsigned ends[4];
    for (int k = 0; k < 3; k++) {
        if (dots == 0)
            return 0;
        ends[k] = (unsigned)__builtin_ctz(dots);
        dots &= dots - 1;
    }
    if (dots != 0)
        return 0;
    ends[3] = (unsigned)len;
    uint64_t val = 0;
    unsigned start = 0;
    for (int k = 0; k < 4; k++) {
        unsigned q = ends[k], L = q - start; /* the octet is [start, q) */
        if (L - 1u > 2u)
            return 0;
        unsigned v = d[q + 2] + 10u * d[q + 1] + (L == 3 ? 100u * d[q] : 0u);
        if (v > 255)
            return 0;
        val = (val << 8) | v;
        start = q + 1;
    }
    *out = val;
    return 1;
#else
    (void)buf, (void)s, (void)e, (void)out;
    return 0;
#endif
}

/* Family 4 or 6 (IPv4-mapped IPv6 becomes the IPv4 address), or -1 with hi = lo = 0.
 * n: the buffer's length (the fast path reads 16 bytes when they are there). */
static inline int parse_addr(const uint8_t *buf, Py_ssize_t s, Py_ssize_t e, Py_ssize_t n,
                             uint64_t *hi, uint64_t *lo)
{
    uint64_t v;
    if ((s + 16 <= n && fast_v4(buf, s, e, &v)) || parse_v4(buf, s, e, &v)) {
        *hi = 0;
        *lo = v;
        return 4;
    }
    *hi = 0;
    *lo = 0;
    if (e <= s || memchr(buf + s, 58, (size_t)(e - s)) == NULL)
        return -1;
    uint64_t h, l;
    if (!parse_v6(buf, s, e, &h, &l))
        return -1;
    if (h == 0 && (l >> 32) == 0xFFFF) { /* ::ffff:10.0.0.1 meets its IPv4 owner */
        *lo = l & 0xFFFFFFFFu;
        return 4;
    }
    *hi = h;
    *lo = l;
    return 6;
}

/* ---- buffers -------------------------------------------------------------------------- */

static int too_short(const Py_buffer *b, Py_ssize_t count, Py_ssize_t itemsize, const char *name)
{
    if (count < 0 || b->len / itemsize < count) {
        PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes, need %zd items of %zd bytes",
                     name, b->len, count, itemsize);
        return 1;
    }
    return 0;
}

static void release(Py_buffer *views, int n)
{
    for (int i = 0; i < n; i++)
        PyBuffer_Release(&views[i]);
}

/* ---- parse_lines ---------------------------------------------------------------------- */

/* Line status codes, as in kernels.py. */
enum { OK = 0, WRONG_FIELD_COUNT = 1, BAD_INTEGER = 2, BAD_ADDRESS = 3, BAD_WORD = 4 };
enum { K_NONE = -2, K_INT = 0, K_ADDR = 1, K_CODE = 2 };

/* Where one format field's values go: row bases (slot * cap) in the output arrays. */
typedef struct {
    int kind; /* -2 past the format, < 0 skipped, 0 int, 1 address, 2 word, > 2 text only */
    int64_t *ival;
    uint8_t *inull;
    int8_t *fam;
    uint64_t *hi, *lo;
    int8_t *code;
    const uint8_t *words; /* [n_words][max_len] */
    const int16_t *wlens; /* [n_words] */
    int64_t *sstart;      /* NULL: the text is not kept */
    int32_t *slen;
} field_out;

typedef struct {
    const uint8_t *buf;
    Py_ssize_t n, nfields, n_words, max_len, cap;
    const field_out *fields;
    int64_t *line_start, *line_end, *line_no;
    uint8_t *status;
    int16_t *bad_field;
} parse_job;

/* token ends: space, tab, CR, LF */
static inline int is_end(unsigned c) { return c == 32 || c == 10 || c == 9 || c == 13; }
static inline int is_sep(unsigned c) { return c == 32 || c == 9 || c == 13; }

/* The end of the token at i: the first space, tab, CR or LF at or after i, or n. Sixteen
 * bytes a step (SSE2, in every x86-64): a byte-by-byte loop mispredicts every token's end. */
static inline Py_ssize_t token_end(const uint8_t *buf, Py_ssize_t i, Py_ssize_t n)
{
#ifdef __SSE2__
    const __m128i sp = _mm_set1_epi8(32), lf = _mm_set1_epi8(10), tab = _mm_set1_epi8(9),
                  cr = _mm_set1_epi8(13);
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(buf + i));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, sp), _mm_cmpeq_epi8(x, lf)),
                                   _mm_or_si128(_mm_cmpeq_epi8(x, tab), _mm_cmpeq_epi8(x, cr)));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m != 0)
            return i + __builtin_ctz(m);
    }
#endif
    while (i < n && !is_end(buf[i]))
        i++;
    return i;
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* The value of len (1..8) ASCII digits at p, or UINT64_MAX if a byte is not a digit; reads
 * the 8 bytes p[0..8), which the caller guarantees are inside the buffer. */
static inline uint64_t digits8(const uint8_t *p, Py_ssize_t len)
{
    const uint64_t zeros = 0x3030303030303030u;
    uint64_t x = load64(p) << (8 * (8 - len)); /* little-endian: the digits move to the top */
    if (len < 8)
        x |= zeros >> (8 * len);               /* and '0's fill in front of them */
    if ((x & 0xF0F0F0F0F0F0F0F0u) != zeros || ((x + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) != zeros)
        return UINT64_MAX;
    x -= zeros;
    x = x * 10 + (x >> 8);
    return (uint32_t)((((x & 0x000000FF000000FFu) * (100 + (1000000ull << 32)))
                       + (((x >> 16) & 0x000000FF000000FFu) * (1 + (10000ull << 32)))) >> 32);
}

/* An unsigned decimal token of 1..16 digits in buf[ts, te) without a loop per digit; 0 if
 * it is not one or sits too near the buffer's end to read 8 bytes (the caller loops). */
static inline int fast_int(const uint8_t *buf, Py_ssize_t ts, Py_ssize_t te, Py_ssize_t n, uint64_t *v)
{
    Py_ssize_t len = te - ts;
    if (len < 1 || len > 16 || ts + 8 > n)
        return 0;
    if (len <= 8) {
        uint64_t x = digits8(buf + ts, len);
        if (x == UINT64_MAX)
            return 0;
        *v = x;
        return 1;
    }
    uint64_t hi = digits8(buf + ts, len - 8), lo = digits8(buf + te - 8, 8);
    if (hi == UINT64_MAX || lo == UINT64_MAX)
        return 0;
    *v = hi * 100000000u + lo;
    return 1;
}

/* The word's code (1-based index in the field's words) or 0. */
static inline int match_word(const parse_job *j, const field_out *fo, const uint8_t *t, Py_ssize_t len)
{
    for (Py_ssize_t w = 0; w < j->n_words; w++) {
        Py_ssize_t wl = fo->wlens[w];
        if (wl == len && wl > 0 && memcmp(t, fo->words + w * j->max_len, (size_t)wl) == 0)
            return (int)(w + 1);
    }
    return 0;
}

/* Nulls for the fields a line lacks: never left unset. */
static void fill_missing(const parse_job *j, Py_ssize_t f, Py_ssize_t rec)
{
    for (; f < j->nfields; f++) {
        const field_out *fo = &j->fields[f];
        if (fo->kind < 0)
            continue;
        if (fo->sstart != NULL) {
            fo->sstart[rec] = 0;
            fo->slen[rec] = -1;
        }
        if (fo->kind == K_INT) {
            fo->ival[rec] = 0;
            fo->inull[rec] = 1;
        } else if (fo->kind == K_ADDR) {
            fo->fam[rec] = 0;
            fo->hi[rec] = fo->lo[rec] = 0;
        } else if (fo->kind == K_CODE) {
            fo->code[rec] = 0;
        }
    }
}

/* One pass over the bytes. Returns records written (-1: more records than cap). */
static Py_ssize_t run_parse(const parse_job *j, Py_ssize_t *phys_out)
{
    const uint8_t *buf = j->buf;
    const Py_ssize_t n = j->n, nfields = j->nfields;
    static const field_out past = {.kind = K_NONE};
    Py_ssize_t rec = 0, phys = 0, i = 0;
    while (i < n) {
        Py_ssize_t ls = i, last_end = i, f = 0;
        int st = OK, bf = -1;
        for (;;) {
            while (i < n && is_sep(buf[i]))
                i++;
            if (i >= n || buf[i] == 10)
                break;
            if (f == 0 && rec >= j->cap)
                return -1;
            const Py_ssize_t ts = i;
            const field_out *fo = f < nfields ? &j->fields[f] : &past;
            const int k = fo->kind;
            if (k == K_INT) { /* digits are read while the token is scanned */
                uint64_t v = 0;
                int good = 1;
                i = token_end(buf, i, n);
                if (!fast_int(buf, ts, i, n, &v)) {
                    for (Py_ssize_t p = ts; p < i; p++) {
                        int64_t d = (int64_t)buf[p] - 48;
                        good &= (uint64_t)d <= 9;
                        v = v * 10 + (uint64_t)d; /* wraps at 64 bits (two's complement) */
                    }
                }
                int dash = i - ts == 1 && buf[ts] == 45;
                fo->ival[rec] = dash ? 0 : (int64_t)v;
                fo->inull[rec] = (uint8_t)dash;
                if (!dash && (!good || i - ts > 18) && st == OK) {
                    st = BAD_INTEGER;
                    bf = (int)f;
                }
                if (fo->sstart != NULL) {
                    fo->sstart[rec] = ts;
                    fo->slen[rec] = dash ? -1 : (int32_t)(uint32_t)(i - ts);
                }
            } else {
                i = token_end(buf, i, n);
                const Py_ssize_t te = i;
                if (k >= 0) {
                    int dash = te - ts == 1 && buf[ts] == 45;
                    if (fo->sstart != NULL) {
                        fo->sstart[rec] = ts;
                        fo->slen[rec] = dash ? -1 : (int32_t)(uint32_t)(te - ts);
                    }
                    if (k == K_ADDR) {
                        int fa = 0;
                        uint64_t h = 0, l = 0;
                        if (!dash) {
                            fa = parse_addr(buf, ts, te, n, &h, &l);
                            if (fa < 0) {
                                fa = 0;
                                if (st == OK) {
                                    st = BAD_ADDRESS;
                                    bf = (int)f;
                                }
                            }
                        }
                        fo->fam[rec] = (int8_t)fa;
                        fo->hi[rec] = h;
                        fo->lo[rec] = l;
                    } else if (k == K_CODE) {
                        int code = 0;
                        if (!dash) {
                            code = match_word(j, fo, buf + ts, te - ts);
                            if (code == 0 && st == OK) {
                                st = BAD_WORD;
                                bf = (int)f;
                            }
                        }
                        fo->code[rec] = (int8_t)code;
                    }
                }
            }
            last_end = i;
            f++;
        }
        if (f > 0) {
            fill_missing(j, f, rec);
            if (f != nfields && st == OK) {
                st = WRONG_FIELD_COUNT;
                bf = -1;
            }
            j->line_start[rec] = ls;
            j->line_end[rec] = last_end;
            j->line_no[rec] = phys;
            j->status[rec] = (uint8_t)st;
            j->bad_field[rec] = (int16_t)bf;
            rec++;
        }
        /* the end of the line (a line longer than the format is already flagged) */
        while (i < n && buf[i] != 10)
            i++;
        phys++;
        i++;
    }
    *phys_out = phys;
    return rec;
}

/* Items of `itemsize` per output row, or PY_SSIZE_T_MAX rows when cap is 0 (nothing is
 * written then: the first record stops the parse). */
static Py_ssize_t rows(const Py_buffer *b, Py_ssize_t itemsize, Py_ssize_t cap)
{
    return cap > 0 ? b->len / itemsize / cap : PY_SSIZE_T_MAX;
}

enum { B_BUF, B_KINDS, B_SLOTS, B_STR_SLOTS, B_WORDS, B_WLENS, B_INTS, B_INT_NULL, B_FAM, B_HI,
       B_LO, B_CODES, B_STR_START, B_STR_LEN, B_LINE_START, B_LINE_END, B_LINE_NO, B_STATUS,
       B_BAD_FIELD, N_BUFS };

/* Row bases for every field; 0 with a ValueError set if a slot does not fit its output. */
static int plan_fields(Py_buffer *v, Py_ssize_t n_words, Py_ssize_t max_len, Py_ssize_t cap,
                       field_out *fields, Py_ssize_t nfields)
{
    const int8_t *kinds = v[B_KINDS].buf;
    const int16_t *slots = v[B_SLOTS].buf, *str_slots = v[B_STR_SLOTS].buf;
    const int16_t *wlens = v[B_WLENS].buf;
    Py_ssize_t n_int = rows(&v[B_INTS], 8, cap), n_addr = rows(&v[B_FAM], 1, cap);
    Py_ssize_t n_code = rows(&v[B_CODES], 1, cap), n_str = rows(&v[B_STR_START], 8, cap);
    n_int = Py_MIN(n_int, rows(&v[B_INT_NULL], 1, cap));
    n_addr = Py_MIN(n_addr, Py_MIN(rows(&v[B_HI], 8, cap), rows(&v[B_LO], 8, cap)));
    n_str = Py_MIN(n_str, rows(&v[B_STR_LEN], 4, cap));
    Py_ssize_t n_wrows = n_words > 0 ? Py_MIN(v[B_WLENS].len / 2 / n_words,
                                              max_len > 0 ? v[B_WORDS].len / max_len / n_words : 0)
                                     : 0;
    for (Py_ssize_t f = 0; f < nfields; f++) {
        field_out *fo = &fields[f];
        memset(fo, 0, sizeof(*fo));
        fo->kind = kinds[f];
        Py_ssize_t s = slots[f], ss = str_slots[f], k = kinds[f];
        if (k >= 0 && ss >= 0) {
            if (ss >= n_str)
                goto bad;
            fo->sstart = (int64_t *)v[B_STR_START].buf + ss * cap;
            fo->slen = (int32_t *)v[B_STR_LEN].buf + ss * cap;
        }
        if (k == K_INT) {
            if (s < 0 || s >= n_int)
                goto bad;
            fo->ival = (int64_t *)v[B_INTS].buf + s * cap;
            fo->inull = (uint8_t *)v[B_INT_NULL].buf + s * cap;
        } else if (k == K_ADDR) {
            if (s < 0 || s >= n_addr)
                goto bad;
            fo->fam = (int8_t *)v[B_FAM].buf + s * cap;
            fo->hi = (uint64_t *)v[B_HI].buf + s * cap;
            fo->lo = (uint64_t *)v[B_LO].buf + s * cap;
        } else if (k == K_CODE) {
            if (s < 0 || s >= n_code || s >= n_wrows)
                goto bad;
            fo->code = (int8_t *)v[B_CODES].buf + s * cap;
            fo->words = (const uint8_t *)v[B_WORDS].buf + s * n_words * max_len;
            fo->wlens = wlens + s * n_words;
            for (Py_ssize_t w = 0; w < n_words; w++)
                if (fo->wlens[w] > max_len) {
                    PyErr_Format(PyExc_ValueError, "field %zd: word %zd longer than max_len", f, w);
                    return 0;
                }
        }
        continue;
    bad:
        PyErr_Format(PyExc_ValueError, "field %zd: slot %zd (text %zd) outside its output", f, s, ss);
        return 0;
    }
    return 1;
}

/* parse_lines(buf, kinds, slots, str_slots, code_words, code_lens, n_words, max_len, ints,
 *             int_null, fam, hi, lo, codes, str_start, str_len, line_start, line_end,
 *             line_no, status, bad_field) -> (records, physical lines) */
static PyObject *parse_lines(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer v[N_BUFS];
    Py_ssize_t n_words, max_len;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*nnw*w*w*w*w*w*w*w*w*w*w*w*w*", &v[0], &v[1], &v[2],
                          &v[3], &v[4], &v[5], &n_words, &max_len, &v[6], &v[7], &v[8], &v[9],
                          &v[10], &v[11], &v[12], &v[13], &v[14], &v[15], &v[16], &v[17], &v[18]))
        return NULL;
    parse_job j = {.buf = v[B_BUF].buf, .n = v[B_BUF].len, .nfields = v[B_KINDS].len,
                   .n_words = n_words, .max_len = max_len, .cap = v[B_LINE_START].len / 8};
    field_out *fields = NULL;
    Py_ssize_t rec = 0, phys = 0;
    if (n_words < 0 || max_len < 0) {
        PyErr_SetString(PyExc_ValueError, "negative word table shape");
        goto out;
    }
    if (too_short(&v[B_SLOTS], j.nfields, 2, "slots") || too_short(&v[B_STR_SLOTS], j.nfields, 2, "str_slots")
        || too_short(&v[B_LINE_END], j.cap, 8, "line_end") || too_short(&v[B_LINE_NO], j.cap, 8, "line_no")
        || too_short(&v[B_STATUS], j.cap, 1, "status") || too_short(&v[B_BAD_FIELD], j.cap, 2, "bad_field"))
        goto out;
    fields = PyMem_Calloc((size_t)j.nfields + 1, sizeof(field_out));
    if (fields == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    if (!plan_fields(v, n_words, max_len, j.cap, fields, j.nfields))
        goto out;
    j.fields = fields;
    j.line_start = v[B_LINE_START].buf;
    j.line_end = v[B_LINE_END].buf;
    j.line_no = v[B_LINE_NO].buf;
    j.status = v[B_STATUS].buf;
    j.bad_field = v[B_BAD_FIELD].buf;
    Py_BEGIN_ALLOW_THREADS
    rec = run_parse(&j, &phys);
    Py_END_ALLOW_THREADS
    if (rec < 0)
        PyErr_Format(PyExc_ValueError, "more records than the %zd rows allocated", j.cap);
out:
    PyMem_Free(fields);
    release(v, N_BUFS);
    if (PyErr_Occurred())
        return NULL;
    return Py_BuildValue("nn", rec, phys);
}

/* ---- small kernels -------------------------------------------------------------------- */

static int64_t newlines(const uint8_t *p, Py_ssize_t n)
{
    int64_t count = 0;
    Py_ssize_t i = 0;
#ifdef __SSE2__
    const __m128i lf = _mm_set1_epi8(10), zero = _mm_setzero_si128();
    while (i + 16 <= n) { /* byte counters (255 steps at most), summed by psadbw */
        __m128i acc = zero;
        for (int k = 0; k < 255 && i + 16 <= n; k++, i += 16)
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + i)), lf));
        __m128i sums = _mm_sad_epu8(acc, zero);
        count += _mm_cvtsi128_si32(sums) + _mm_cvtsi128_si32(_mm_unpackhi_epi64(sums, sums));
    }
#endif
    for (; i < n; i++)
        count += p[i] == 10;
    return count;
}

static PyObject *count_newlines(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b))
        return NULL;
    int64_t count;
    Py_BEGIN_ALLOW_THREADS
    count = newlines(b.buf, b.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    return PyLong_FromLongLong(count);
}

static PyObject *parse_addr_strings(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer v[6]; /* offsets, data, valid, fam, hi, lo */
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*w*", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]))
        return NULL;
    Py_ssize_t n = v[3].len;
    if (too_short(&v[0], n + 1, 8, "offsets") || too_short(&v[2], n, 1, "valid")
        || too_short(&v[4], n, 8, "hi") || too_short(&v[5], n, 8, "lo")) {
        release(v, 6);
        return NULL;
    }
    const int64_t *off = v[0].buf;
    const uint8_t *data = v[1].buf, *valid = v[2].buf;
    int8_t *fam = v[3].buf;
    uint64_t *hi = v[4].buf, *lo = v[5].buf;
    Py_ssize_t len = v[1].len, bad = 0, wrong = -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < n; r++) {
        int64_t s = off[r], e = off[r + 1];
        if (!valid[r]) {
            fam[r] = 0;
            hi[r] = lo[r] = 0;
            continue;
        }
        if (s < 0 || e < s || e > len) { /* an offset is data too: never trusted */
            wrong = r;
            break;
        }
        if ((e - s == 1 && data[s] == 45) || e == s) {
            fam[r] = 0;
            hi[r] = lo[r] = 0;
            continue;
        }
        int fa = parse_addr(data, s, e, len, &hi[r], &lo[r]);
        if (fa < 0)
            bad++;
        fam[r] = (int8_t)fa;
    }
    Py_END_ALLOW_THREADS
    release(v, 6);
    if (wrong >= 0)
        return PyErr_Format(PyExc_ValueError, "string %zd: offsets out of range", wrong);
    return PyLong_FromSsize_t(bad);
}

/* gather_slices(buf, starts, lens, offsets) -> bytearray: copies buf[starts[r]:+lens[r]]
 * end to end (a negative length is null, no bytes) and fills offsets (n + 1 int64). */
static PyObject *gather_slices(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer v[4]; /* buf, starts, lens, offsets */
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &v[0], &v[1], &v[2], &v[3]))
        return NULL;
    Py_ssize_t n = v[1].len / 8;
    if (too_short(&v[2], n, 4, "lens") || too_short(&v[3], n + 1, 8, "offsets")) {
        release(v, 4);
        return NULL;
    }
    const int64_t *starts = v[1].buf;
    const int32_t *lens = v[2].buf;
    int64_t *offsets = v[3].buf, total = 0, len = v[0].len;
    Py_ssize_t wrong = -1;
    Py_BEGIN_ALLOW_THREADS
    offsets[0] = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        int64_t ln = lens[r];
        if (ln > 0) {
            if (starts[r] < 0 || starts[r] > len - ln) {
                wrong = r;
                break;
            }
            total += ln;
        }
        offsets[r + 1] = total;
    }
    Py_END_ALLOW_THREADS
    PyObject *out = NULL;
    if (wrong >= 0)
        PyErr_Format(PyExc_ValueError, "slice %zd is outside the buffer", wrong);
    else
        out = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (out != NULL) {
        uint8_t *data = (uint8_t *)PyByteArray_AS_STRING(out);
        const uint8_t *src = v[0].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; r < n; r++)
            if (lens[r] > 0)
                memcpy(data + offsets[r], src + starts[r], (size_t)lens[r]);
        Py_END_ALLOW_THREADS
    }
    release(v, 4);
    return out;
}

/* ---- the rollup's group-by ------------------------------------------------------------ */

/* a + b for counts, saturating at INT64_MAX instead of wrapping (a b <= 0 wraps at 64 bits) */
static inline int64_t add_sat(int64_t a, int64_t b)
{
    if (b <= 0 || a <= INT64_MAX - b)
        return (int64_t)((uint64_t)a + (uint64_t)b);
    return INT64_MAX;
}

/* aggregate(k1, k2, b, p, f, ok1, ok2, ob, op, of) -> m: groups rows by (k1, k2) in
 * first-seen order, writing each group's key and sums to row g of the outputs. */
static PyObject *aggregate(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer v[10];
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*w*w*w*w*", &v[0], &v[1], &v[2], &v[3], &v[4],
                          &v[5], &v[6], &v[7], &v[8], &v[9]))
        return NULL;
    Py_ssize_t n = v[0].len / 8;
    for (int i = 1; i < 10; i++)
        if (too_short(&v[i], n, 8, "aggregate")) {
            release(v, 10);
            return NULL;
        }
    size_t size = 16;
    while (size < 2 * (size_t)n + 1)
        size *= 2;
    int64_t *slot_of = calloc(size, sizeof(int64_t)); /* group + 1; 0 is empty */
    if (slot_of == NULL) {
        release(v, 10);
        return PyErr_NoMemory();
    }
    const uint64_t *k1 = v[0].buf, *k2 = v[1].buf;
    const int64_t *b = v[2].buf, *p = v[3].buf, *f = v[4].buf;
    uint64_t *ok1 = v[5].buf, *ok2 = v[6].buf;
    int64_t *ob = v[7].buf, *op = v[8].buf, *of = v[9].buf;
    uint64_t mask = size - 1;
    Py_ssize_t m = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < n; r++) {
        uint64_t a = k1[r], c = k2[r];
        uint64_t h = (a * 0x9E3779B97F4A7C15u) ^ (c * 0xC2B2AE3D27D4EB4Fu);
        h ^= h >> 31;
        uint64_t s = h & mask;
        int64_t g;
        for (;;) {
            g = slot_of[s] - 1;
            if (g < 0) {
                g = m++;
                slot_of[s] = g + 1;
                ok1[g] = a;
                ok2[g] = c;
                ob[g] = op[g] = of[g] = 0;
                break;
            }
            if (ok1[g] == a && ok2[g] == c)
                break;
            s = (s + 1) & mask;
        }
        ob[g] = add_sat(ob[g], b[r]);
        op[g] = add_sat(op[g], p[r]);
        of[g] = add_sat(of[g], f[r]);
    }
    Py_END_ALLOW_THREADS
    free(slot_of);
    release(v, 10);
    return PyLong_FromSsize_t(m);
}

static PyMethodDef methods[] = {
    {"parse_lines", parse_lines, METH_VARARGS, "Parse every non-blank line of a chunk."},
    {"count_newlines", count_newlines, METH_VARARGS, "Count b'\\n' bytes."},
    {"parse_addr_strings", parse_addr_strings, METH_VARARGS, "Parse Arrow-held addresses."},
    {"gather_slices", gather_slices, METH_VARARGS, "Copy byte slices end to end."},
    {"aggregate", aggregate, METH_VARARGS, "Group rows by two uint64 keys, saturating sums."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dredge.flowlog._native", NULL, -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
