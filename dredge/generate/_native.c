/* dredge.generate._native: the generator's line writer, the compiled kernel of
 * dredge/generate/lines.py (format_lines): int64 columns -> space-separated flow-log lines.
 * Its arguments come through the buffer protocol and are checked before the loop; every
 * string id is checked against the pool and every write against the output's size; the loop
 * runs without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../_buffers.h"

typedef struct {
    const int64_t *table; /* rows x fields, row-major */
    ssize rows, fields;
    const uint8_t *is_str;
    const uint8_t *pool;
    ssize pool_size;
    const int64_t *offsets, *lengths;
    ssize strings;
    uint8_t *out;
    ssize cap;
    int64_t *line_end;
} Rows;

/* The bytes written; -1 when a string id or span is outside the pool, -2 when the output is
 * too small. Negative values are written "-", string fields as their pool string,
 * integers in decimal. */
static ssize write_rows(const Rows *t)
{
    uint8_t digits[20];
    ssize pos = 0;
    for (ssize r = 0; r < t->rows; r++) {
        for (ssize f = 0; f < t->fields; f++) {
            int64_t v = t->table[r * t->fields + f];
            if (f) {
                if (pos >= t->cap)
                    return -2;
                t->out[pos++] = ' ';
            }
            if (v < 0) {
                if (pos >= t->cap)
                    return -2;
                t->out[pos++] = '-';
            } else if (t->is_str[f]) {
                if (v >= t->strings)
                    return -1;
                int64_t a = t->offsets[v], k = t->lengths[v];
                if (a < 0 || k < 0 || a > t->pool_size || k > t->pool_size - a)
                    return -1;
                if (k > t->cap - pos)
                    return -2;
                if (k)
                    memcpy(t->out + pos, t->pool + a, (size_t)k);
                pos += k;
            } else {
                int n = 0;
                do {
                    digits[n++] = (uint8_t)('0' + v % 10);
                    v /= 10;
                } while (v > 0);
                if (n > t->cap - pos)
                    return -2;
                while (n)
                    t->out[pos++] = digits[--n];
            }
        }
        if (pos >= t->cap)
            return -2;
        t->out[pos++] = '\n';
        t->line_end[r] = pos;
    }
    return pos;
}

/* format_rows(table, rows, fields, is_str, pool, offsets, lengths, out, line_end) -> bytes
 * written; table is int64 rows x fields (C order), is_str bool per field, offsets and lengths
 * int64 per pool string, out uint8, line_end int64 per row. */
static PyObject *format_rows(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer table, is_str, pool, offsets, lengths, out, line_end;
    ssize rows, fields;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*w*w*", &table, &rows, &fields, &is_str, &pool,
                          &offsets, &lengths, &out, &line_end))
        return NULL;
    PyObject *result = NULL;
    ssize strings = offsets.len / 8;
    if (rows < 0 || fields < 0 || (fields > 0 && rows > PY_SSIZE_T_MAX / 8 / fields)) {
        PyErr_SetString(PyExc_ValueError, "bad table shape");
    } else if (check_view(&table, 8, rows * fields, "table") == 0
               && check_view(&is_str, 1, fields, "is_str") == 0
               && check_view(&offsets, 8, strings, "offsets") == 0
               && check_view(&lengths, 8, strings, "lengths") == 0
               && check_view(&line_end, 8, rows, "line_end") == 0) {
        Rows t = {table.buf, rows, fields, is_str.buf, pool.buf, pool.len, offsets.buf,
                  lengths.buf, strings, out.buf, out.len, line_end.buf};
        ssize used;
        Py_BEGIN_ALLOW_THREADS
        used = write_rows(&t);
        Py_END_ALLOW_THREADS
        if (used < 0)
            PyErr_SetString(PyExc_ValueError, used == -1 ? "a string id is outside the pool"
                                                         : "the output is too small");
        else
            result = PyLong_FromSsize_t(used);
    }
    release((Py_buffer *[]){&table, &is_str, &pool, &offsets, &lengths, &out, &line_end}, 7);
    return result;
}

static PyMethodDef methods[] = {
    {"format_rows", format_rows, METH_VARARGS, "Columns to flow-log lines (generate/lines.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dredge.generate._native", "The generator's line writer.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
