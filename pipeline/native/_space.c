/* pipeline.native._space: the layout's feature space with the same bits on every CPU.
 *
 * numpy's reductions and BLAS/LAPACK pick kernels by CPU (SSE, AVX2, AVX-512, FMA), and each
 * sums in its own order: the principal components of the drawings' features, and so the map,
 * came out different on different machines. Here every output is one loop in a fixed order
 * of IEEE operations (no fused multiply-add: built with -ffp-contract=off), on 1 or 2 threads
 * that each compute whole outputs (pipeline/native/_portable.h):
 *
 * - gradients: per 4x4 px cell, the gradient magnitude in 9 directions, from integer central
 *   differences; a direction's bin by integer cross products with fixed-point sector edges
 *   (no arctan2/hypot, whose bits vary by C library); each drawing's histogram mapped to the
 *   square roots of its shares (Hellinger).
 * - scatter: the features' mean and scatter matrix; project: rows onto axes.
 * - top_eigenvectors: Householder tridiagonalisation, Sturm bisection for the largest
 *   eigenvalues, inverse iteration for their vectors (no LAPACK).
 * - nearest: exact k nearest neighbours by brute force, each squared distance summed over the
 *   dimensions in order (SIMD across candidates only), ties by index; a candidate whose partial
 *   sum already reaches the k-th best is dropped early (sums of squares only grow).
 * - exp, log: pipeline/native/_portable.h's own, for the tests of their error bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_portable.h"

#define SIDE 28
#define CELL 4
#define CELLS ((SIDE / CELL) * (SIDE / CELL))
#define BINS 9
#define FEATURES (CELLS * BINS)

/* cos, sin of 20, 40, ..., 160 degrees times 2^24, rounded: the edges between the 9 bins. */
static const int64_t EDGE_COS[BINS - 1] = {15765426, 12852093, 8388608,   2913333,
                                           -2913333, -8388608, -12852093, -15765426};
static const int64_t EDGE_SIN[BINS - 1] = {5738146,  10784187, 14529495, 16522332,
                                           16522332, 14529495, 10784187, 5738146};

typedef struct {
    const uint8_t *bitmaps;
    double *out;
} Gradients;

/* Twice the derivative along a row or column: central inside, one-sided at the border
 * (numpy.gradient's scheme, doubled to stay integer). */
static int twice_derivative(const uint8_t *line, int at, int stride)
{
    if (at == 0)
        return 2 * (line[stride] - line[0]);
    if (at == SIDE - 1)
        return 2 * (line[at * stride] - line[(at - 1) * stride]);
    return line[(at + 1) * stride] - line[(at - 1) * stride];
}

static void gradients_part(void *arg, ptrdiff_t begin, ptrdiff_t end)
{
    const Gradients *g = arg;
    for (ptrdiff_t n = begin; n < end; n++) {
        const uint8_t *image = g->bitmaps + n * SIDE * SIDE;
        double *out = g->out + n * FEATURES;
        memset(out, 0, FEATURES * sizeof(double));
        for (int y = 0; y < SIDE; y++) {
            for (int x = 0; x < SIDE; x++) {
                int64_t gx = twice_derivative(image + y * SIDE, x, 1);
                int64_t gy = twice_derivative(image + x, y, SIDE);
                if (gx == 0 && gy == 0)
                    continue;
                if (gy < 0 || (gy == 0 && gx < 0)) { /* unsigned: the angle modulo 180 degrees */
                    gx = -gx;
                    gy = -gy;
                }
                int bin = 0;
                while (bin < BINS - 1 && gy * EDGE_COS[bin] - gx * EDGE_SIN[bin] >= 0)
                    bin++;
                int cell = (y / CELL) * (SIDE / CELL) + x / CELL;
                out[cell * BINS + bin] += sqrt((double)(gx * gx + gy * gy));
            }
        }
        /* Hellinger mapping: the square root of each share of the drawing's total gradient
         * (unit length, like the L2 norm, but a few strong edges no longer outweigh many faint
         * ones: kNN agreement 0.204 against 0.174, means over 5 seeds in
         * benchmarks/bench_layout.py). */
        double total = 0.0;
        for (int f = 0; f < FEATURES; f++)
            total += out[f];
        if (total > 0.0)
            for (int f = 0; f < FEATURES; f++)
                out[f] = sqrt(out[f] / total);
    }
}

/* gradients(bitmaps, out, threads): out (n, 441) float64 from bitmaps (n, 784) uint8. */
static PyObject *gradients(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer in, out;
    int threads;
    if (!PyArg_ParseTuple(args, "y*w*i", &in, &out, &threads))
        return NULL;
    Py_ssize_t n = in.len / (SIDE * SIDE);
    int bad = in.len % (SIDE * SIDE) != 0 || out.len != n * FEATURES * (Py_ssize_t)sizeof(double);
    if (!bad) {
        Gradients g = {in.buf, out.buf};
        Py_BEGIN_ALLOW_THREADS
        in_parts(gradients_part, &g, n, threads);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (bad)
        return PyErr_Format(PyExc_ValueError, "gradients: bitmaps (n, 784) uint8, out (n, 441) "
                                              "float64");
    Py_RETURN_NONE;
}

#define BLOCK 64 /* rows of the features per pass over a row of the scatter matrix */

typedef struct {
    const double *x, *mean;
    double *scatter;
    Py_ssize_t n, d;
    int failed; /* a thread could not allocate its block */
} Scatter;

/* Rows of the scatter matrix in an order that pairs short and long ones, so that the two
 * halves of the work (the upper triangle) are about equal. */
static Py_ssize_t paired_row(Py_ssize_t item, Py_ssize_t d)
{
    return item % 2 == 0 ? item / 2 : d - 1 - item / 2;
}

static void scatter_part(void *arg, ptrdiff_t begin, ptrdiff_t end)
{
    Scatter *s = arg;
    Py_ssize_t d = s->d;
    double *block = malloc((size_t)BLOCK * (size_t)d * sizeof(double));
    if (block == NULL) {
        s->failed = 1;
        return;
    }
    for (Py_ssize_t start = 0; start < s->n; start += BLOCK) {
        Py_ssize_t rows = s->n - start < BLOCK ? s->n - start : BLOCK;
        for (Py_ssize_t i = 0; i < rows; i++)
            for (Py_ssize_t a = 0; a < d; a++)
                block[i * d + a] = s->x[(start + i) * d + a] - s->mean[a];
        for (ptrdiff_t item = begin; item < end; item++) {
            Py_ssize_t a = paired_row(item, d);
            double *restrict row = s->scatter + a * d;
            for (Py_ssize_t i = 0; i < rows; i++) {
                const double *restrict c = block + i * d;
                double ca = c[a];
                for (Py_ssize_t b = a; b < d; b++)
                    row[b] += ca * c[b];
            }
        }
    }
    free(block);
}

/* scatter(x, n, d, mean, scatter, threads): mean (d) and scatter matrix (d, d) of x (n, d). */
static PyObject *scatter(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer x, mean, out;
    Py_ssize_t n, d;
    int threads;
    if (!PyArg_ParseTuple(args, "y*nnw*w*i", &x, &n, &d, &mean, &out, &threads))
        return NULL;
    int failed = 0;
    int bad = n < 1 || d < 1 || x.len != n * d * (Py_ssize_t)sizeof(double) ||
              mean.len != d * (Py_ssize_t)sizeof(double) ||
              out.len != d * d * (Py_ssize_t)sizeof(double);
    if (!bad) {
        double *m = mean.buf, *s = out.buf;
        const double *rows = x.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t a = 0; a < d; a++)
            m[a] = 0.0;
        for (Py_ssize_t i = 0; i < n; i++)
            for (Py_ssize_t a = 0; a < d; a++)
                m[a] += rows[i * d + a];
        for (Py_ssize_t a = 0; a < d; a++)
            m[a] /= (double)n;
        memset(s, 0, (size_t)(d * d) * sizeof(double));
        Scatter job = {rows, m, s, n, d, 0};
        in_parts(scatter_part, &job, d, threads);
        failed = job.failed;
        for (Py_ssize_t a = 0; a < d; a++)
            for (Py_ssize_t b = 0; b < a; b++)
                s[a * d + b] = s[b * d + a];
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&mean);
    PyBuffer_Release(&out);
    if (bad)
        return PyErr_Format(PyExc_ValueError, "scatter: x (n, d), mean (d), scatter (d, d) "
                                              "float64, n, d >= 1");
    if (failed)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

typedef struct {
    const double *x, *mean, *axes;
    double *out;
    Py_ssize_t d, k;
} Project;

static void project_part(void *arg, ptrdiff_t begin, ptrdiff_t end)
{
    const Project *p = arg;
    for (ptrdiff_t i = begin; i < end; i++) {
        double *restrict acc = p->out + i * p->k;
        for (Py_ssize_t c = 0; c < p->k; c++)
            acc[c] = 0.0;
        for (Py_ssize_t a = 0; a < p->d; a++) {
            double t = p->x[i * p->d + a] - p->mean[a];
            const double *restrict axis = p->axes + a * p->k;
            for (Py_ssize_t c = 0; c < p->k; c++)
                acc[c] += t * axis[c];
        }
    }
}

/* project(x, n, d, mean, axes, k, out, threads): out (n, k) = (x - mean) @ axes (d, k). */
static PyObject *project(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer x, mean, axes, out;
    Py_ssize_t n, d, k;
    int threads;
    if (!PyArg_ParseTuple(args, "y*nny*y*nw*i", &x, &n, &d, &mean, &axes, &k, &out, &threads))
        return NULL;
    Py_ssize_t f = (Py_ssize_t)sizeof(double);
    int bad = n < 0 || d < 1 || k < 1 || x.len != n * d * f || mean.len != d * f ||
              axes.len != d * k * f || out.len != n * k * f;
    if (!bad) {
        Project job = {x.buf, mean.buf, axes.buf, out.buf, d, k};
        Py_BEGIN_ALLOW_THREADS
        in_parts(project_part, &job, n, threads);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&mean);
    PyBuffer_Release(&axes);
    PyBuffer_Release(&out);
    if (bad)
        return PyErr_Format(PyExc_ValueError, "project: x (n, d), mean (d), axes (d, k), "
                                              "out (n, k) float64");
    Py_RETURN_NONE;
}

/* Eigenvalues of the tridiagonal (diag, off) below x: the Sturm sequence's sign changes. */
static Py_ssize_t below(const double *diag, const double *off, Py_ssize_t d, double x,
                        double tiny)
{
    Py_ssize_t count = 0;
    double q = 1.0;
    for (Py_ssize_t i = 0; i < d; i++) {
        q = diag[i] - x - (i > 0 ? off[i - 1] * off[i - 1] / q : 0.0);
        if (q == 0.0)
            q = -tiny;
        count += q < 0.0;
    }
    return count;
}

/* Solve (T - shift I) v = rhs in place by Gaussian elimination with partial pivoting;
 * u is scratch of 3d. Zero pivots become `tiny`. */
static void shifted_solve(const double *diag, const double *off, Py_ssize_t d, double shift,
                          double tiny, double *rhs, double *u)
{
    double cur[3] = {diag[0] - shift, d > 1 ? off[0] : 0.0, 0.0}, cur_rhs = rhs[0];
    for (Py_ssize_t i = 0; i + 1 < d; i++) {
        double next[3] = {off[i], diag[i + 1] - shift, i + 2 < d ? off[i + 1] : 0.0};
        double next_rhs = rhs[i + 1];
        if (fabs(next[0]) > fabs(cur[0])) {
            for (int j = 0; j < 3; j++) {
                double t = cur[j];
                cur[j] = next[j];
                next[j] = t;
            }
            double t = cur_rhs;
            cur_rhs = next_rhs;
            next_rhs = t;
        }
        if (cur[0] == 0.0)
            cur[0] = tiny;
        double m = next[0] / cur[0];
        memcpy(u + 3 * i, cur, sizeof cur);
        rhs[i] = cur_rhs;
        cur[0] = next[1] - m * cur[1];
        cur[1] = next[2] - m * cur[2];
        cur[2] = 0.0;
        cur_rhs = next_rhs - m * cur_rhs;
    }
    if (cur[0] == 0.0)
        cur[0] = tiny;
    memcpy(u + 3 * (d - 1), cur, sizeof cur);
    rhs[d - 1] = cur_rhs;
    for (Py_ssize_t i = d - 1; i >= 0; i--) {
        double v = rhs[i];
        if (i + 1 < d)
            v -= u[3 * i + 1] * rhs[i + 1];
        if (i + 2 < d)
            v -= u[3 * i + 2] * rhs[i + 2];
        rhs[i] = v / u[3 * i];
    }
}

static double dot(const double *a, const double *b, Py_ssize_t n)
{
    double s = 0.0;
    for (Py_ssize_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* A start vector for inverse iteration: fixed pseudo-random entries in [-1, 1). */
static void start_vector(double *v, Py_ssize_t d, Py_ssize_t which)
{
    uint64_t state = 0x9E3779B97F4A7C15ULL * (uint64_t)(which + 1);
    for (Py_ssize_t i = 0; i < d; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = (double)(state >> 11) / 4503599627370496.0 - 1.0; /* / 2^52 */
    }
}

/* The k largest eigenvalues (descending) of the symmetric a (d, d, overwritten) and their unit
 * eigenvectors as the columns of vectors (d, k). Returns 0, or -1 when out of memory. */
static int top_eigen(double *a, Py_ssize_t d, Py_ssize_t k, double *values, double *vectors)
{
    double *house = calloc((size_t)(d * d), sizeof(double)); /* Householder vectors, by row */
    double *beta = calloc((size_t)d, sizeof(double));
    double *p = malloc((size_t)d * sizeof(double)), *w = malloc((size_t)d * sizeof(double));
    double *diag = malloc((size_t)d * sizeof(double)), *off = calloc((size_t)d, sizeof(double));
    double *z = malloc((size_t)k * (size_t)d * sizeof(double));
    double *v = malloc((size_t)d * sizeof(double)), *u = malloc(3 * (size_t)d * sizeof(double));
    int ok = house && beta && p && w && diag && off && z && v && u;
    if (ok) {
        /* A <- H A H on the trailing block, column by column: H = I - beta h h^T. */
        for (Py_ssize_t j = 0; j + 2 < d; j++) {
            Py_ssize_t m = d - j - 1;
            double *h = house + j * d + j + 1;
            double norm = 0.0;
            for (Py_ssize_t i = 0; i < m; i++) {
                h[i] = a[(j + 1 + i) * d + j];
                norm += h[i] * h[i];
            }
            norm = sqrt(norm);
            double alpha = h[0] > 0 ? -norm : norm;
            h[0] -= alpha;
            double hh = dot(h, h, m);
            if (hh == 0.0)
                continue; /* already tridiagonal in this column */
            beta[j] = 2.0 / hh;
            for (Py_ssize_t r = 0; r < m; r++)
                p[r] = beta[j] * dot(a + (j + 1 + r) * d + j + 1, h, m);
            double half = 0.5 * beta[j] * dot(h, p, m);
            for (Py_ssize_t r = 0; r < m; r++)
                w[r] = p[r] - half * h[r];
            for (Py_ssize_t r = 0; r < m; r++) {
                double *row = a + (j + 1 + r) * d + j + 1;
                for (Py_ssize_t c = 0; c < m; c++)
                    row[c] -= h[r] * w[c] + w[r] * h[c];
            }
            a[(j + 1) * d + j] = alpha;
            a[j * d + j + 1] = alpha;
        }
        double spread = 0.0;
        for (Py_ssize_t i = 0; i < d; i++) {
            diag[i] = a[i * d + i];
            off[i] = i + 1 < d ? a[(i + 1) * d + i] : 0.0;
        }
        double low = diag[0], high = diag[0]; /* Gershgorin's bounds */
        for (Py_ssize_t i = 0; i < d; i++) {
            double radius = fabs(off[i]) + (i > 0 ? fabs(off[i - 1]) : 0.0);
            low = fmin(low, diag[i] - radius);
            high = fmax(high, diag[i] + radius);
        }
        spread = fmax(fabs(low), fabs(high));
        double tiny = spread > 0 ? spread * 2.220446049250313e-16 : 2.2250738585072014e-308;
        for (Py_ssize_t e = 0; e < k; e++) {
            Py_ssize_t index = d - 1 - e; /* ascending rank of the wanted eigenvalue */
            double lo = low - tiny, hi = high + tiny;
            for (int it = 0; it < 200; it++) {
                double mid = 0.5 * (lo + hi);
                if (mid <= lo || mid >= hi)
                    break;
                if (below(diag, off, d, mid, tiny) > index)
                    hi = mid;
                else
                    lo = mid;
            }
            values[e] = 0.5 * (lo + hi);
            double *ze = z + e * d;
            start_vector(ze, d, e);
            for (int it = 0; it < 3; it++) {
                shifted_solve(diag, off, d, values[e], tiny, ze, u);
                for (Py_ssize_t f = 0; f < e; f++) { /* orthogonal to the ones before */
                    double t = dot(ze, z + f * d, d);
                    for (Py_ssize_t i = 0; i < d; i++)
                        ze[i] -= t * z[f * d + i];
                }
                double length = sqrt(dot(ze, ze, d));
                if (!(length > 0.0) || !isfinite(length)) {
                    start_vector(ze, d, e + k);
                    continue;
                }
                for (Py_ssize_t i = 0; i < d; i++)
                    ze[i] /= length;
            }
            /* back to the original basis: apply H_{d-3} ... H_0 in reverse */
            memcpy(v, ze, (size_t)d * sizeof(double));
            for (Py_ssize_t j = d - 3; j >= 0; j--) {
                if (beta[j] == 0.0)
                    continue;
                double *h = house + j * d + j + 1;
                double t = beta[j] * dot(h, v + j + 1, d - j - 1);
                for (Py_ssize_t i = 0; i < d - j - 1; i++)
                    v[j + 1 + i] -= t * h[i];
            }
            for (Py_ssize_t i = 0; i < d; i++)
                vectors[i * k + e] = v[i];
        }
    }
    free(house);
    free(beta);
    free(p);
    free(w);
    free(diag);
    free(off);
    free(z);
    free(v);
    free(u);
    return ok ? 0 : -1;
}

/* top_eigenvectors(matrix, d, k, values, vectors): see top_eigen; matrix is not changed. */
static PyObject *top_eigenvectors(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer matrix, values, vectors;
    Py_ssize_t d, k;
    if (!PyArg_ParseTuple(args, "y*nnw*w*", &matrix, &d, &k, &values, &vectors))
        return NULL;
    Py_ssize_t f = (Py_ssize_t)sizeof(double);
    int bad = d < 1 || k < 1 || k > d || matrix.len != d * d * f || values.len != k * f ||
              vectors.len != d * k * f;
    int failed = 0;
    if (!bad) {
        double *copy = malloc((size_t)(d * d) * sizeof(double));
        failed = copy == NULL;
        if (!failed) {
            memcpy(copy, matrix.buf, (size_t)(d * d) * sizeof(double));
            Py_BEGIN_ALLOW_THREADS
            failed = top_eigen(copy, d, k, values.buf, vectors.buf) != 0;
            Py_END_ALLOW_THREADS
            free(copy);
        }
    }
    PyBuffer_Release(&matrix);
    PyBuffer_Release(&values);
    PyBuffer_Release(&vectors);
    if (bad)
        return PyErr_Format(PyExc_ValueError, "top_eigenvectors: matrix (d, d), values (k), "
                                              "vectors (d, k) float64, 1 <= k <= d");
    if (failed)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

#define LANES 8 /* candidates whose distances are summed side by side */

typedef struct {
    const double *queries, *lanes; /* candidates transposed: [block][dimension][lane] */
    Py_ssize_t n, d, k;
    int exclude_self;
    int64_t *indices;
    double *squares;
} Nearest;

static void nearest_part(void *arg, ptrdiff_t begin, ptrdiff_t end)
{
    const Nearest *s = arg;
    Py_ssize_t blocks = (s->n + LANES - 1) / LANES, k = s->k;
    for (ptrdiff_t q = begin; q < end; q++) {
        const double *query = s->queries + q * s->d;
        int64_t *best = s->indices + q * k;
        double *best_sq = s->squares + q * k;
        Py_ssize_t found = 0;
        for (Py_ssize_t b = 0; b < blocks; b++) {
            double acc[LANES] = {0};
            const double *lanes = s->lanes + b * s->d * LANES;
            int pruned = 0;
            for (Py_ssize_t a = 0; a < s->d && !pruned; a++) {
                double qa = query[a];
                for (int l = 0; l < LANES; l++) {
                    double t = qa - lanes[a * LANES + l];
                    acc[l] += t * t;
                }
                /* Partial sums only grow: once all 8 reach the k-th best, none can enter
                 * (an equal one comes later by index and loses), so stop early. */
                if (found == k && a % 8 == 7) {
                    pruned = 1;
                    for (int l = 0; l < LANES; l++)
                        pruned = pruned && acc[l] >= best_sq[k - 1];
                }
            }
            if (pruned)
                continue;
            for (int l = 0; l < LANES; l++) {
                int64_t j = b * LANES + l;
                if (j >= s->n || (s->exclude_self && j == q))
                    continue;
                double sq = acc[l];
                if (found == k && !(sq < best_sq[k - 1]))
                    continue; /* candidates come by index: an equal one later loses */
                Py_ssize_t at = found < k ? found++ : k - 1;
                while (at > 0 && sq < best_sq[at - 1]) {
                    best_sq[at] = best_sq[at - 1];
                    best[at] = best[at - 1];
                    at--;
                }
                best_sq[at] = sq;
                best[at] = j;
            }
        }
    }
}

/* nearest(queries, m, points, n, d, k, exclude_self, indices, squares, threads): the k nearest
 * points of each query (nearest first, ties by index) and their squared distances. */
static PyObject *nearest(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer queries, points, indices, squares;
    Py_ssize_t m, n, d, k;
    int exclude_self, threads;
    if (!PyArg_ParseTuple(args, "y*ny*nnnpw*w*i", &queries, &m, &points, &n, &d, &k,
                          &exclude_self, &indices, &squares, &threads))
        return NULL;
    Py_ssize_t f = (Py_ssize_t)sizeof(double);
    int bad = m < 0 || d < 1 || k < 1 || k > n - (exclude_self ? 1 : 0) ||
              (exclude_self && m > n) || queries.len != m * d * f || points.len != n * d * f ||
              indices.len != m * k * (Py_ssize_t)sizeof(int64_t) || squares.len != m * k * f;
    Py_ssize_t blocks = bad ? 0 : (n + LANES - 1) / LANES;
    double *lanes = bad ? NULL : calloc((size_t)(blocks * d * LANES), sizeof(double));
    if (!bad && lanes != NULL) {
        const double *p = points.buf;
        for (Py_ssize_t j = 0; j < n; j++)
            for (Py_ssize_t a = 0; a < d; a++)
                lanes[(j / LANES) * d * LANES + a * LANES + j % LANES] = p[j * d + a];
        Nearest job = {queries.buf, lanes, n, d, k, exclude_self, indices.buf, squares.buf};
        Py_BEGIN_ALLOW_THREADS
        in_parts(nearest_part, &job, m, threads);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&queries);
    PyBuffer_Release(&points);
    PyBuffer_Release(&indices);
    PyBuffer_Release(&squares);
    if (bad)
        return PyErr_Format(PyExc_ValueError,
                            "nearest: queries (m, d), points (n, d) float64, indices (m, k) "
                            "int64, squares (m, k) float64, 1 <= k < n (k <= n without "
                            "exclude_self)");
    if (lanes == NULL)
        return PyErr_NoMemory();
    free(lanes);
    Py_RETURN_NONE;
}

/* elementwise(values, out, which): out = portable exp (which 0) or log (which 1) of values. */
static PyObject *elementwise(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer in, out;
    int which;
    if (!PyArg_ParseTuple(args, "y*w*i", &in, &out, &which))
        return NULL;
    int bad = in.len != out.len || in.len % (Py_ssize_t)sizeof(double) != 0;
    if (!bad) {
        const double *x = in.buf;
        double *y = out.buf;
        for (Py_ssize_t i = 0; i < in.len / (Py_ssize_t)sizeof(double); i++)
            y[i] = which == 0 ? portable_exp(x[i]) : portable_log(x[i]);
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (bad)
        return PyErr_Format(PyExc_ValueError, "elementwise: values and out float64, same size");
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"gradients", gradients, METH_VARARGS, "gradients(bitmaps, out, threads)"},
    {"scatter", scatter, METH_VARARGS, "scatter(x, n, d, mean, scatter, threads)"},
    {"project", project, METH_VARARGS, "project(x, n, d, mean, axes, k, out, threads)"},
    {"top_eigenvectors", top_eigenvectors, METH_VARARGS,
     "top_eigenvectors(matrix, d, k, values, vectors)"},
    {"nearest", nearest, METH_VARARGS,
     "nearest(queries, m, points, n, d, k, exclude_self, indices, squares, threads)"},
    {"elementwise", elementwise, METH_VARARGS, "elementwise(values, out, which): 0 exp, 1 log"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pipeline.native._space",
    .m_doc = "The layout's feature space, portable to the bit: see pipeline/native/_space.c.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__space(void)
{
    return PyModule_Create(&module);
}
