/* dredge.decode._native: the compiled kernels of the stream decoders (the Python modules that
 * wrap them say what each answers):
 *
 *   cwl_scan     CloudWatch Logs subscription JSON -> canonical lines   (decode/cwlscan.py)
 *   kpl_spans    a KPL AggregatedRecord protobuf -> user-record spans   (decode/kplscan.py)
 *   kpl_gather   spans of a buffer joined with newlines                 (decode/kplscan.py)
 *
 * The decoders read bytes straight off the network: every index is checked against the end
 * of its buffer before it is read, every length read from the data is compared (unsigned,
 * without overflow) with what is left, and every output is checked against its capacity.
 * Arguments come through the buffer protocol (numpy arrays, bytes); their sizes, item sizes
 * and alignment are checked before any loop, and the loops run without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../_buffers.h"

/* ---- CloudWatch Logs subscription JSON ----------------------------------------------- */

enum { CWL_DATA = 0, CWL_CONTROL = 1, CWL_FALLBACK = 2 };

enum {
    K_MESSAGE_TYPE, K_OWNER, K_LOG_GROUP, K_LOG_STREAM, K_FILTERS, K_EVENTS, /* top level */
    K_ID, K_TIMESTAMP, K_MESSAGE, K_DATA_MESSAGE, K_CONTROL_MESSAGE, N_KEYS,
    N_TOP = K_ID,
};

#define WORD(s) {s, sizeof(s) - 1}
static const struct { const char *text; ssize len; } WORDS[N_KEYS] = {
    WORD("messageType"), WORD("owner"), WORD("logGroup"), WORD("logStream"),
    WORD("subscriptionFilters"), WORD("logEvents"), WORD("id"), WORD("timestamp"),
    WORD("message"), WORD("DATA_MESSAGE"), WORD("CONTROL_MESSAGE"),
};
#undef WORD

typedef struct {
    const uint8_t *buf;
    ssize n;
    uint8_t *out;
    ssize cap; /* of out */
    ssize o;   /* bytes written */
    int64_t lines;
} Cwl;

static ssize ws(const uint8_t *buf, ssize i, ssize n)
{
    while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
        i++;
    return i;
}

/* A string opens at i: the index of its closing quote, or -1. The document holds no
 * backslash (cwl_scan refuses it first), so a string ends at the next quote. */
static ssize string_end(const Cwl *s, ssize i)
{
    if (i < 0 || i >= s->n || s->buf[i] != '"')
        return -1;
    const uint8_t *q = memchr(s->buf + i + 1, '"', (size_t)(s->n - i - 1));
    return q ? q - s->buf : -1;
}

/* buf[a:e] spells keyword w. */
static int is_word(const uint8_t *buf, ssize a, ssize e, int w)
{
    return e - a == WORDS[w].len && memcmp(buf + a, WORDS[w].text, (size_t)(e - a)) == 0;
}

/* The keyword buf[a:e] spells, or -1. */
static int which(const uint8_t *buf, ssize a, ssize e)
{
    for (int w = 0; w < N_KEYS; w++)
        if (is_word(buf, a, e, w))
            return w;
    return -1;
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* -?(0|[1-9][0-9]{0,17}) at i, not followed by . e E: the index after it, or -1. */
static ssize integer_end(const uint8_t *buf, ssize i, ssize n)
{
    if (i < n && buf[i] == '-')
        i++;
    if (i >= n || !is_digit(buf[i]))
        return -1;
    if (buf[i] == '0') {
        i++;
    } else {
        int digits = 0;
        while (i < n && is_digit(buf[i])) {
            i++;
            if (++digits > 18)
                return -1;
        }
    }
    if (i < n && (buf[i] == '.' || buf[i] == 'e' || buf[i] == 'E'))
        return -1;
    return i;
}

/* One log event object at i: the index after it, or -1. Its message, trimmed of spaces, is
 * appended to the output (after a newline unless first) when not empty. */
static ssize event(Cwl *s, ssize i)
{
    const uint8_t *buf = s->buf;
    const ssize n = s->n;
    if (i >= n || buf[i] != '{')
        return -1;
    i = ws(buf, i + 1, n);
    int seen_id = 0, seen_ts = 0;
    ssize ms = -1, me = -1;
    for (;;) {
        ssize ke = string_end(s, i);
        if (ke < 0)
            return -1;
        ssize a = i + 1;
        int key = is_word(buf, a, ke, K_MESSAGE) ? K_MESSAGE
                  : is_word(buf, a, ke, K_ID) ? K_ID
                  : is_word(buf, a, ke, K_TIMESTAMP) ? K_TIMESTAMP : -1;
        i = ws(buf, ke + 1, n);
        if (i >= n || buf[i] != ':')
            return -1;
        i = ws(buf, i + 1, n);
        if (key == K_MESSAGE && ms < 0) {
            ssize end = string_end(s, i);
            if (end < 0)
                return -1;
            ms = i + 1;
            me = end;
            i = end + 1;
        } else if (key == K_ID && !seen_id) {
            ssize end = string_end(s, i);
            if (end < 0)
                return -1;
            seen_id = 1;
            i = end + 1;
        } else if (key == K_TIMESTAMP && !seen_ts) {
            i = integer_end(buf, i, n);
            if (i < 0)
                return -1;
            seen_ts = 1;
        } else { /* unknown or repeated key */
            return -1;
        }
        i = ws(buf, i, n);
        if (i < n && buf[i] == ',') {
            i = ws(buf, i + 1, n);
            continue;
        }
        if (i < n && buf[i] == '}' && ms >= 0)
            break;
        return -1;
    }
    while (ms < me && buf[ms] == ' ')
        ms++;
    while (me > ms && buf[me - 1] == ' ')
        me--;
    if (me == ms)
        return i + 1;
    ssize k = me - ms, sep = s->o > 0;
    if (k + sep > s->cap - s->o) /* cannot happen (output <= input); be safe */
        return -1;
    if (sep)
        s->out[s->o++] = '\n';
    memcpy(s->out + s->o, buf + ms, (size_t)k);
    s->o += k;
    s->lines++;
    return i + 1;
}

/* An array of plain strings, or (events) of log events: the index after it, or -1. */
static ssize array(Cwl *s, ssize i, int events)
{
    const uint8_t *buf = s->buf;
    const ssize n = s->n;
    if (i >= n || buf[i] != '[')
        return -1;
    i = ws(buf, i + 1, n);
    if (i < n && buf[i] == ']')
        return i + 1;
    for (;;) {
        if (events) {
            i = event(s, i);
        } else {
            ssize end = string_end(s, i);
            i = end >= 0 ? end + 1 : -1;
        }
        if (i < 0)
            return -1;
        i = ws(buf, i, n);
        if (i < n && buf[i] == ',') {
            i = ws(buf, i + 1, n);
            continue;
        }
        if (i < n && buf[i] == ']')
            return i + 1;
        return -1;
    }
}

/* The kind (DATA, CONTROL or FALLBACK) of the document; fills s->o, s->lines and the span
 * of the logStream value. */
static int scan_document(Cwl *s, ssize *ls_start, ssize *ls_end)
{
    const uint8_t *buf = s->buf;
    const ssize n = s->n;
    unsigned refused = 0;
    for (ssize j = 0; j < n; j++) { /* no branch: the compiler vectorizes this */
        uint8_t c = buf[j];
        refused |= ((uint8_t)(c - 32) >= 96) | (c == '\\');
    }
    if (refused)
        return CWL_FALLBACK;
    ssize i = ws(buf, 0, n);
    if (i >= n || buf[i] != '{')
        return CWL_FALLBACK;
    i = ws(buf, i + 1, n);
    int seen[N_TOP] = {0};
    int kind = -1;
    for (;;) {
        ssize ke = string_end(s, i);
        if (ke < 0)
            return CWL_FALLBACK;
        int key = which(buf, i + 1, ke);
        if (key < 0 || key >= N_TOP || seen[key])
            return CWL_FALLBACK;
        seen[key] = 1;
        i = ws(buf, ke + 1, n);
        if (i >= n || buf[i] != ':')
            return CWL_FALLBACK;
        i = ws(buf, i + 1, n);
        if (key == K_FILTERS || key == K_EVENTS) {
            i = array(s, i, key == K_EVENTS);
            if (i < 0)
                return CWL_FALLBACK;
        } else {
            ssize end = string_end(s, i);
            if (end < 0)
                return CWL_FALLBACK;
            if (key == K_MESSAGE_TYPE) {
                int word = which(buf, i + 1, end);
                if (word == K_DATA_MESSAGE)
                    kind = CWL_DATA;
                else if (word == K_CONTROL_MESSAGE)
                    kind = CWL_CONTROL;
                else
                    return CWL_FALLBACK;
            } else if (key == K_LOG_STREAM) {
                *ls_start = i + 1;
                *ls_end = end;
            }
            i = end + 1;
        }
        i = ws(buf, i, n);
        if (i < n && buf[i] == ',') {
            i = ws(buf, i + 1, n);
            continue;
        }
        if (i < n && buf[i] == '}')
            break;
        return CWL_FALLBACK;
    }
    if (ws(buf, i + 1, n) != n || kind < 0)
        return CWL_FALLBACK;
    return kind;
}

/* cwl_scan(doc, out) -> (kind, lines, output length, logStream start, logStream end); all
 * but the kind are 0 for FALLBACK. out must hold len(doc) bytes. */
static PyObject *cwl_scan(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer doc, out;
    if (!PyArg_ParseTuple(args, "y*w*", &doc, &out))
        return NULL;
    PyObject *result = NULL;
    if (check_view(&out, 1, doc.len, "out") == 0) {
        Cwl s = {doc.buf, doc.len, out.buf, out.len, 0, 0};
        ssize ls_start = 0, ls_end = 0;
        int kind;
        Py_BEGIN_ALLOW_THREADS
        kind = scan_document(&s, &ls_start, &ls_end);
        Py_END_ALLOW_THREADS
        if (kind == CWL_FALLBACK)
            result = Py_BuildValue("(innnn)", kind, (ssize)0, (ssize)0, (ssize)0, (ssize)0);
        else
            result = Py_BuildValue("(iLnnn)", kind, (long long)s.lines, s.o, ls_start, ls_end);
    }
    release((Py_buffer *[]){&doc, &out}, 2);
    return result;
}

/* ---- KPL aggregates: the AggregatedRecord protobuf --------------------------------------- */

enum { KPL_OK = 0, KPL_MALFORMED = 1, KPL_GROUP = 2 };

enum {
    KEY_PARTITION_KEY_TABLE = 0x0A, KEY_EXPLICIT_HASH_KEY_TABLE = 0x12, KEY_RECORDS = 0x1A,
    KEY_PARTITION_KEY_INDEX = 0x08, KEY_EXPLICIT_HASH_KEY_INDEX = 0x10, KEY_DATA = 0x1A,
};

/* A varint at pos: the position after it (its value in *value), or -1 when it is truncated
 * or longer than 10 bytes. Bits past the 64th are dropped, as protobuf does. */
static ssize varint(const uint8_t *buf, ssize pos, ssize end, uint64_t *value)
{
    uint64_t v = 0;
    unsigned shift = 0;
    while (pos < end) {
        uint8_t byte = buf[pos++];
        if (shift < 64)
            v |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *value = v;
            return pos;
        }
        shift += 7;
        if (shift >= 70)
            break;
    }
    *value = v;
    return -1;
}

/* pos + length if it stays within end (pos <= end), else -1; no overflow. */
static ssize after(ssize pos, uint64_t length, ssize end)
{
    if (length > (uint64_t)(end - pos))
        return -1;
    return pos + (ssize)length;
}

/* The position after the whole field at pos; -1 malformed, -2 a group. */
static ssize skip_field(const uint8_t *buf, ssize pos, ssize end)
{
    uint64_t key, length;
    pos = varint(buf, pos, end, &key);
    if (pos < 0 || (key >> 3) == 0)
        return -1;
    switch (key & 7) {
    case 0:
        return varint(buf, pos, end, &length);
    case 2:
        pos = varint(buf, pos, end, &length);
        return pos < 0 ? -1 : after(pos, length, end);
    case 1:
        return after(pos, 8, end);
    case 5:
        return after(pos, 4, end);
    case 3:
        return -2;
    default:
        return -1;
    }
}

typedef struct {
    uint64_t pk, ehk;
    uint8_t has_ehk;
    ssize start, end;
} Record;

/* One Record in buf[pos:end]: OK, MALFORMED or GROUP; the fields in *r. */
static int record(const uint8_t *buf, ssize pos, ssize end, Record *r)
{
    int has_pk = 0;
    r->pk = r->ehk = 0;
    r->has_ehk = 0;
    r->start = r->end = -1;
    while (pos < end) {
        uint8_t key = buf[pos];
        if (key == KEY_DATA) {
            uint64_t length;
            ssize start = varint(buf, pos + 1, end, &length);
            if (start < 0 || (pos = after(start, length, end)) < 0)
                return KPL_MALFORMED;
            r->start = start;
            r->end = pos;
        } else if (key == KEY_PARTITION_KEY_INDEX || key == KEY_EXPLICIT_HASH_KEY_INDEX) {
            uint64_t value;
            pos = varint(buf, pos + 1, end, &value);
            if (pos < 0)
                return KPL_MALFORMED;
            if (key == KEY_PARTITION_KEY_INDEX) {
                r->pk = value;
                has_pk = 1;
            } else {
                r->ehk = value;
                r->has_ehk = 1;
            }
        } else {
            pos = skip_field(buf, pos, end);
            if (pos < 0)
                return pos == -2 ? KPL_GROUP : KPL_MALFORMED;
        }
    }
    if (!has_pk || r->start < 0)
        return KPL_MALFORMED;
    return KPL_OK;
}

typedef struct {
    uint64_t *pk, *ehk;
    uint8_t *has_ehk;
    int64_t *starts, *ends;
    ssize cap;
} Spans;

/* buf[pos:end] as an AggregatedRecord: the status; the counts in *n, *n_pk, *n_ehk. */
static int aggregate(const uint8_t *buf, ssize pos, ssize end, const Spans *out, ssize *n,
                     ssize *n_pk, ssize *n_ehk)
{
    *n = *n_pk = *n_ehk = 0;
    while (pos < end) {
        uint8_t key = buf[pos];
        if (key == KEY_RECORDS || key == KEY_PARTITION_KEY_TABLE
                || key == KEY_EXPLICIT_HASH_KEY_TABLE) {
            uint64_t length;
            ssize start = varint(buf, pos + 1, end, &length);
            if (start < 0 || (pos = after(start, length, end)) < 0)
                return KPL_MALFORMED;
            if (key == KEY_RECORDS) {
                if (*n >= out->cap)
                    return KPL_GROUP; /* cannot happen (a record takes >= 6 bytes); be safe */
                Record r;
                int status = record(buf, start, pos, &r);
                if (status != KPL_OK)
                    return status;
                out->pk[*n] = r.pk;
                out->ehk[*n] = r.ehk;
                out->has_ehk[*n] = r.has_ehk;
                out->starts[*n] = r.start;
                out->ends[*n] = r.end;
                ++*n;
            } else if (key == KEY_PARTITION_KEY_TABLE) {
                ++*n_pk;
            } else {
                ++*n_ehk;
            }
        } else {
            pos = skip_field(buf, pos, end);
            if (pos < 0)
                return pos == -2 ? KPL_GROUP : KPL_MALFORMED;
        }
    }
    return KPL_OK;
}

/* kpl_spans(data, end, pk, ehk, has_ehk, starts, ends) -> (status, records, partition keys,
 * explicit hash keys) of data[4:end]; the outputs (uint64, uint64, bool, int64, int64) are
 * filled up to the record count. */
static PyObject *kpl_spans(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer data, pk, ehk, has_ehk, starts, ends;
    ssize end;
    if (!PyArg_ParseTuple(args, "y*nw*w*w*w*w*", &data, &end, &pk, &ehk, &has_ehk, &starts,
                          &ends))
        return NULL;
    PyObject *result = NULL;
    ssize cap = pk.len / 8;
    if (end > data.len) {
        PyErr_Format(PyExc_ValueError, "end %zd is past the data (%zd bytes)", end, data.len);
    } else if (check_view(&pk, 8, cap, "pk") == 0 && check_view(&ehk, 8, cap, "ehk") == 0
               && check_view(&has_ehk, 1, cap, "has_ehk") == 0
               && check_view(&starts, 8, cap, "starts") == 0
               && check_view(&ends, 8, cap, "ends") == 0) {
        Spans out = {pk.buf, ehk.buf, has_ehk.buf, starts.buf, ends.buf, cap};
        ssize n, n_pk, n_ehk;
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = aggregate(data.buf, 4, end, &out, &n, &n_pk, &n_ehk);
        Py_END_ALLOW_THREADS
        if (status != KPL_OK)
            n = n_pk = n_ehk = 0;
        result = Py_BuildValue("(innn)", status, n, n_pk, n_ehk);
    }
    release((Py_buffer *[]){&data, &pk, &ehk, &has_ehk, &starts, &ends}, 6);
    return result;
}

/* Joins data[starts[r]:ends[r]] with newlines into out; the bytes written, or -1 when a span
 * is reversed or outside the data, or the output is too small. */
static ssize gather_spans(const uint8_t *buf, ssize size, const int64_t *starts,
                          const int64_t *ends, ssize count, uint8_t *out, ssize cap)
{
    ssize o = 0;
    for (ssize r = 0; r < count; r++) {
        int64_t a = starts[r], e = ends[r];
        if (a < 0 || a > e || e > size || e - a + (r > 0) > cap - o)
            return -1;
        if (r)
            out[o++] = '\n';
        if (e > a)
            memcpy(out + o, buf + a, (size_t)(e - a));
        o += e - a;
    }
    return o;
}

/* kpl_gather(data, starts, ends, out) -> bytes written. */
static PyObject *kpl_gather(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer data, starts, ends, out;
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &data, &starts, &ends, &out))
        return NULL;
    PyObject *result = NULL;
    ssize count = starts.len / 8;
    if (check_view(&starts, 8, count, "starts") == 0
            && check_view(&ends, 8, count, "ends") == 0) {
        ssize used;
        Py_BEGIN_ALLOW_THREADS
        used = gather_spans(data.buf, data.len, starts.buf, ends.buf, count, out.buf, out.len);
        Py_END_ALLOW_THREADS
        if (used < 0)
            PyErr_SetString(PyExc_ValueError, "a span is outside the data or the output");
        else
            result = PyLong_FromSsize_t(used);
    }
    release((Py_buffer *[]){&data, &starts, &ends, &out}, 4);
    return result;
}

static PyMethodDef methods[] = {
    {"cwl_scan", cwl_scan, METH_VARARGS, "CloudWatch Logs JSON to lines (decode/cwlscan.py)."},
    {"kpl_spans", kpl_spans, METH_VARARGS, "A KPL aggregate's record spans (decode/kplscan.py)."},
    {"kpl_gather", kpl_gather, METH_VARARGS, "Spans joined with newlines (decode/kplscan.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dredge.decode._native",
    "Compiled kernels of the stream decoders.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
