/* The buffer checks shared by Dredge's compiled kernels (included by each area's _native.c).
 *
 * Arguments reach a kernel through the buffer protocol (numpy arrays, bytes); before any loop
 * the kernel checks each buffer's size, item size and alignment against the counts it is about
 * to use, so a wrong argument is a ValueError, never a read or write out of bounds.
 */
#ifndef DREDGE_BUFFERS_H
#define DREDGE_BUFFERS_H

#include <Python.h>
#include <stdint.h>

typedef Py_ssize_t ssize;

/* A buffer holds at least `need` items of `itemsize` bytes, suitably aligned; else ValueError. */
static inline int check_view(const Py_buffer *view, ssize itemsize, ssize need, const char *name)
{
    if (view->len % itemsize != 0 || ((uintptr_t)view->buf) % (uintptr_t)itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: expected an aligned buffer of %zd-byte items",
                     name, itemsize);
        return -1;
    }
    if (need < 0 || view->len / itemsize < need) {
        PyErr_Format(PyExc_ValueError, "%s: %zd items, %zd needed", name,
                     view->len / itemsize, need);
        return -1;
    }
    return 0;
}

/* Releases the argument buffers of a call. */
static inline void release(Py_buffer *const views[], int count)
{
    for (int i = 0; i < count; i++)
        PyBuffer_Release(views[i]);
}

#endif
