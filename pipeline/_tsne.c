/* pipeline._tsne: exact t-SNE gradient descent for the report's small maps.
 *
 * At the report's default 1,000 drawings, openTSNE's Barnes-Hut run costs 0.9 s and its import
 * (scikit-learn, scipy.stats) 1.1 s more, most of a sample change's rebuild. The exact gradient
 * over all n(n-1)/2 pairs is cheaper there and approximates nothing; above a few thousand
 * points its quadratic cost loses, and embedding.py hands the map to openTSNE instead.
 *
 * Step for step it is the usual t-SNE descent (van der Maaten 2014; the learning rate n /
 * exaggeration of Belkina et al. 2019, with openTSNE's convention of the gradient divided by
 * 4): per coordinate gains (+0.2 where the gradient turned, x0.8 + 0.01 where it did not),
 * momentum, each point's step clipped to length 5, the map re-centred after every step.
 * One thread and a fixed order of every sum: the same inputs give the same bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_GAIN 0.01
#define MAX_STEP 5.0

typedef struct {
    Py_ssize_t n;
    const int64_t *indptr, *indices; /* the affinities P, symmetric, as CSR rows */
    const double *p;
    double *x, *y;                   /* positions */
    double *ux, *uy, *gx, *gy;       /* previous steps and gains */
    double *rx, *ry;                 /* scratch: repulsion */
} Map;

/* The repulsion sum_j q_ij^2 (y_i - y_j) with q_ij = 1 / (1 + |y_i - y_j|^2), into rx, ry,
 * over each pair once; returns Z = sum over i != j of q_ij. */
static double repulsion(const Map *m)
{
    Py_ssize_t n = m->n;
    const double *restrict x = m->x, *restrict y = m->y;
    double *restrict rx = m->rx, *restrict ry = m->ry;
    double z = 0.0;
    memset(rx, 0, (size_t)n * sizeof(double));
    memset(ry, 0, (size_t)n * sizeof(double));
    for (Py_ssize_t i = 0; i < n; i++) {
        double xi = x[i], yi = y[i], sx = 0.0, sy = 0.0, sz = 0.0;
        for (Py_ssize_t j = i + 1; j < n; j++) {
            double dx = xi - x[j], dy = yi - y[j];
            double q = 1.0 / (1.0 + dx * dx + dy * dy);
            double q2 = q * q;
            sz += q;
            sx += q2 * dx;
            sy += q2 * dy;
            rx[j] -= q2 * dx;
            ry[j] -= q2 * dy;
        }
        rx[i] += sx;
        ry[i] += sy;
        z += sz;
    }
    return 2.0 * z;
}

/* One descent step with the P values multiplied by `exaggeration`. */
static void step(Map *m, double exaggeration, double momentum, double rate)
{
    Py_ssize_t n = m->n;
    double z = repulsion(m);
    double cx = 0.0, cy = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double ax = 0.0, ay = 0.0;
        for (int64_t e = m->indptr[i]; e < m->indptr[i + 1]; e++) {
            int64_t j = m->indices[e];
            double dx = m->x[i] - m->x[j], dy = m->y[i] - m->y[j];
            double w = m->p[e] / (1.0 + dx * dx + dy * dy);
            ax += w * dx;
            ay += w * dy;
        }
        double grad[2] = {exaggeration * ax - m->rx[i] / z, exaggeration * ay - m->ry[i] / z};
        double *update[2] = {&m->ux[i], &m->uy[i]}, *gain[2] = {&m->gx[i], &m->gy[i]};
        for (int d = 0; d < 2; d++) {
            int turned = (*update[d] > 0) - (*update[d] < 0) != (grad[d] > 0) - (grad[d] < 0);
            *gain[d] = turned ? *gain[d] + 0.2 : *gain[d] * 0.8 + MIN_GAIN;
            *update[d] = momentum * *update[d] - rate * *gain[d] * grad[d];
        }
        double length = sqrt(m->ux[i] * m->ux[i] + m->uy[i] * m->uy[i]);
        if (length > MAX_STEP) {
            m->ux[i] = m->ux[i] / length * MAX_STEP;
            m->uy[i] = m->uy[i] / length * MAX_STEP;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        m->x[i] += m->ux[i];
        m->y[i] += m->uy[i];
        cx += m->x[i];
        cy += m->y[i];
    }
    cx /= (double)n;
    cy /= (double)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        m->x[i] -= cx;
        m->y[i] -= cy;
    }
}

static int writable_doubles(Py_buffer *b, Py_ssize_t n)
{
    return b->len == n * (Py_ssize_t)sizeof(double);
}

/* descend(x, y, ux, uy, gx, gy, indptr, indices, p, iterations, exaggeration, momentum) */
static PyObject *descend(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer b[9];
    Py_ssize_t iterations;
    double exaggeration, momentum;
    if (!PyArg_ParseTuple(args, "w*w*w*w*w*w*y*y*y*ndd", &b[0], &b[1], &b[2], &b[3], &b[4],
                          &b[5], &b[6], &b[7], &b[8], &iterations, &exaggeration, &momentum))
        return NULL;
    Py_ssize_t n = b[0].len / (Py_ssize_t)sizeof(double);
    Py_ssize_t nnz = b[8].len / (Py_ssize_t)sizeof(double);
    int bad = n < 2 || iterations < 0 || b[6].len != (n + 1) * (Py_ssize_t)sizeof(int64_t) ||
              b[7].len != nnz * (Py_ssize_t)sizeof(int64_t);
    for (int k = 0; k < 6; k++)
        bad = bad || !writable_doubles(&b[k], n);
    const int64_t *indptr = b[6].buf, *indices = b[7].buf;
    if (!bad) {
        bad = indptr[0] != 0 || indptr[n] != nnz;
        for (Py_ssize_t i = 0; i < n && !bad; i++)
            bad = indptr[i] > indptr[i + 1];
        for (Py_ssize_t e = 0; e < nnz && !bad; e++)
            bad = indices[e] < 0 || indices[e] >= n;
    }
    double *scratch = bad ? NULL : malloc(2 * (size_t)n * sizeof(double));
    if (!bad && scratch != NULL) {
        Map m = {n, indptr, indices, b[8].buf, b[0].buf, b[1].buf, b[2].buf, b[3].buf,
                 b[4].buf, b[5].buf, scratch, scratch + n};
        double rate = (double)n / exaggeration;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t t = 0; t < iterations; t++)
            step(&m, exaggeration, momentum, rate);
        Py_END_ALLOW_THREADS
    }
    for (int k = 0; k < 9; k++)
        PyBuffer_Release(&b[k]);
    if (bad)
        return PyErr_Format(PyExc_ValueError,
                            "descend: x, y, ux, uy, gx, gy must be n >= 2 float64 each, indptr "
                            "n + 1 int64 from 0 to nnz, indices nnz int64 in [0, n), p nnz "
                            "float64");
    if (scratch == NULL)
        return PyErr_NoMemory();
    free(scratch);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"descend", descend, METH_VARARGS,
     "descend(x, y, ux, uy, gx, gy, indptr, indices, p, iterations, exaggeration, momentum): "
     "exact t-SNE gradient descent in place on positions x, y (float64, n each) with their "
     "previous steps and gains, under the symmetric affinities P (CSR: int64 indptr, int64 "
     "indices, float64 values)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pipeline._tsne",
    .m_doc = "Exact t-SNE descent for small maps: see pipeline/_tsne.c.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__tsne(void)
{
    return PyModule_Create(&module);
}
