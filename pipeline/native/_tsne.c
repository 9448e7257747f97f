/* pipeline.native._tsne: the report's t-SNE, the same bits on every CPU.
 *
 * `descend` takes the exact gradient over all n(n-1)/2 pairs: at the report's default 1,000
 * drawings it is cheaper than any approximation and approximates nothing. Above a few thousand
 * points its quadratic cost loses, and `bh_descend` approximates the repulsion by Barnes-Hut
 * (a quadtree built in index order, each point's traversal in a fixed child order, theta 0.5
 * as openTSNE's default). It replaces openTSNE, whose FFT and thread pool sum in orders that
 * vary by CPU and thread count. `affinities` finds each point's Gaussian width by bisection
 * with pipeline/native/_portable.h's exp and log.
 *
 * Step for step it is the usual t-SNE descent (van der Maaten 2014; the learning rate n /
 * exaggeration of Belkina et al. 2019, with openTSNE's convention of the gradient divided by
 * 4): per coordinate gains (+0.2 where the gradient turned, x0.8 + 0.01 where it did not),
 * momentum, each point's step clipped to length 5, the map re-centred after every step.
 * A fixed order of every sum (on 2 threads each point's sums are one thread's, in the same
 * order): the same inputs give the same bytes on any CPU, with 1 or 2 threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_portable.h"

#define MIN_GAIN 0.01
#define MAX_STEP 5.0

typedef struct {
    Py_ssize_t n;
    const int64_t *indptr, *indices; /* the affinities P, symmetric, as CSR rows */
    const double *p;
    double *x, *y;                   /* positions */
    double *ux, *uy, *gx, *gy;       /* previous steps and gains */
    double *rx, *ry;                 /* scratch: repulsion */
    double z;                        /* sum over i != j of q_ij */
    double exaggeration, momentum, rate;
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

/* The gradient and the new step of points [begin, end), from m->rx, m->ry and m->z. */
static void update_part(void *arg, ptrdiff_t begin, ptrdiff_t end)
{
    Map *m = arg;
    double z = m->z, rate = m->rate, exaggeration = m->exaggeration, momentum = m->momentum;
    for (ptrdiff_t i = begin; i < end; i++) {
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
}

/* One descent step (the P values multiplied by m->exaggeration) once m->rx, m->ry, m->z hold
 * the repulsion: every point's new step, then all move and the map is re-centred. */
static void step(Map *m, int threads)
{
    Py_ssize_t n = m->n;
    double cx = 0.0, cy = 0.0;
    in_parts(update_part, m, n, threads);
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

/* A Barnes-Hut quadtree over the map: cells split in four until each holds one point (or,
 * MAX_DEPTH deep, all the points that coincide there). */
#define MAX_DEPTH 48
#define NONE (-1)

typedef struct {
    double cx, cy, half;  /* the square cell: centre and half its side */
    double sx, sy;        /* sum of the positions in it, then their centre of mass */
    int64_t count;
    int64_t child[4];     /* quadrants: bit 0 x >= cx, bit 1 y >= cy */
} Node;

/* The tree flattened in depth-first order (children 0..3): a cell's subtree is the cells from
 * it to `skip`, so a traversal is one forward pass with no stack. */
typedef struct {
    double x, y;          /* centre of mass */
    double side2;         /* the cell's side, squared */
    double count;
    int64_t skip;         /* the next cell after this one's subtree */
    int64_t leaf;
} Flat;

typedef struct {
    Map *map;
    Node *nodes;
    Flat *flat;
    int64_t *order;       /* scratch: node -> its place in depth-first order, and a stack */
    int64_t used, size;
    int64_t *leaf;        /* the leaf each point lies in */
    int64_t *first;       /* the point a one-point leaf holds */
    double theta2;
    double *sz;           /* each point's sum of q over the others */
} Tree;

static int64_t new_node(Tree *t, double cx, double cy, double half)
{
    if (t->used == t->size) {
        int64_t size = 2 * t->size;
        Node *nodes = realloc(t->nodes, (size_t)size * sizeof(Node));
        int64_t *first = realloc(t->first, (size_t)size * sizeof(int64_t));
        if (nodes != NULL)
            t->nodes = nodes;
        if (first != NULL)
            t->first = first;
        if (nodes == NULL || first == NULL)
            return NONE;
        t->size = size;
    }
    Node *node = &t->nodes[t->used];
    *node = (Node){cx, cy, half, 0.0, 0.0, 0, {NONE, NONE, NONE, NONE}};
    t->first[t->used] = NONE;
    return t->used++;
}

static int64_t child_of(Tree *t, int64_t at, double x, double y)
{
    int quadrant = (x >= t->nodes[at].cx) | (y >= t->nodes[at].cy) << 1;
    if (t->nodes[at].child[quadrant] == NONE) {
        double h = t->nodes[at].half / 2;
        double cx = t->nodes[at].cx + (quadrant & 1 ? h : -h);
        double cy = t->nodes[at].cy + (quadrant & 2 ? h : -h);
        int64_t made = new_node(t, cx, cy, h); /* may move t->nodes */
        if (made == NONE)
            return NONE;
        t->nodes[at].child[quadrant] = made;
    }
    return t->nodes[at].child[quadrant];
}

static int is_leaf(const Node *node)
{
    return node->child[0] == NONE && node->child[1] == NONE && node->child[2] == NONE &&
           node->child[3] == NONE;
}

/* t->flat from t->nodes, depth first; t->leaf then names places in t->flat. */
static int flatten(Tree *t)
{
    Flat *flat = realloc(t->flat, (size_t)t->used * sizeof(Flat));
    int64_t *order = realloc(t->order, 2 * (size_t)t->used * sizeof(int64_t));
    if (flat != NULL)
        t->flat = flat;
    if (order != NULL)
        t->order = order;
    if (flat == NULL || order == NULL)
        return -1;
    int64_t *stack = order + t->used, top = 0, next = 0;
    stack[top++] = 0;
    while (top > 0) { /* preorder: each node's place */
        int64_t at = stack[--top];
        const Node *node = &t->nodes[at];
        order[at] = next;
        flat[next] = (Flat){node->sx, node->sy, 4 * node->half * node->half,
                            (double)node->count, 0, is_leaf(node)};
        next++;
        for (int c = 3; c >= 0; c--)
            if (node->child[c] != NONE)
                stack[top++] = node->child[c];
    }
    for (int64_t k = t->used - 1; k >= 0; k--) { /* subtree ends, children before parents */
        const Node *node = &t->nodes[k];
        int64_t end = order[k] + 1;
        for (int c = 0; c < 4; c++)
            if (node->child[c] != NONE && flat[order[node->child[c]]].skip > end)
                end = flat[order[node->child[c]]].skip;
        flat[order[k]].skip = end;
    }
    for (Py_ssize_t i = 0; i < t->map->n; i++)
        t->leaf[i] = order[t->leaf[i]];
    return 0;
}

/* Builds the tree of the map's points, inserted in index order; -1 when out of memory. */
static int build(Tree *t)
{
    const Map *m = t->map;
    double low_x = m->x[0], high_x = m->x[0], low_y = m->y[0], high_y = m->y[0];
    for (Py_ssize_t i = 1; i < m->n; i++) {
        low_x = fmin(low_x, m->x[i]);
        high_x = fmax(high_x, m->x[i]);
        low_y = fmin(low_y, m->y[i]);
        high_y = fmax(high_y, m->y[i]);
    }
    double half = fmax(high_x - low_x, high_y - low_y) / 2 * (1 + 1e-9) + 1e-300;
    t->used = 0;
    if (new_node(t, (low_x + high_x) / 2, (low_y + high_y) / 2, half) == NONE)
        return -1;
    for (Py_ssize_t i = 0; i < m->n; i++) {
        double x = m->x[i], y = m->y[i];
        int64_t at = 0;
        for (int depth = 0;; depth++) {
            Node *node = &t->nodes[at];
            int64_t before = node->count;
            node->sx += x;
            node->sy += y;
            node->count++;
            if (before == 0 || (is_leaf(node) && depth >= MAX_DEPTH)) {
                if (before == 0)
                    t->first[at] = i;
                t->leaf[i] = at;
                break;
            }
            if (is_leaf(node)) { /* one point here: move it one level down */
                int64_t other = t->first[at];
                int64_t below = child_of(t, at, m->x[other], m->y[other]);
                if (below == NONE)
                    return -1;
                t->nodes[below].sx = m->x[other];
                t->nodes[below].sy = m->y[other];
                t->nodes[below].count = 1;
                t->first[below] = other;
                t->leaf[other] = below;
                t->first[at] = NONE;
            }
            at = child_of(t, at, x, y);
            if (at == NONE)
                return -1;
        }
    }
    for (int64_t k = 0; k < t->used; k++) {
        t->nodes[k].sx /= (double)t->nodes[k].count;
        t->nodes[k].sy /= (double)t->nodes[k].count;
    }
    return flatten(t);
}

/* Each point's repulsion from the tree: a cell seen smaller than theta times its distance
 * counts as all its points at their centre of mass; children are visited in order 0..3. */
static void traverse_part(void *arg, ptrdiff_t begin, ptrdiff_t end)
{
    Tree *t = arg;
    const Map *m = t->map;
    const Flat *flat = t->flat;
    int64_t cells = t->used;
    for (ptrdiff_t i = begin; i < end; i++) {
        double xi = m->x[i], yi = m->y[i], fx = 0.0, fy = 0.0, sz = 0.0;
        int64_t own = t->leaf[i];
        for (int64_t at = 0; at < cells;) {
            const Flat *cell = &flat[at];
            double dx = xi - cell->x, dy = yi - cell->y, d2 = dx * dx + dy * dy;
            if (!cell->leaf && !(cell->side2 < t->theta2 * d2)) {
                at++; /* open the cell: its first child comes next */
                continue;
            }
            double count = cell->count - (own == at);
            at = cell->skip;
            if (count == 0.0)
                continue;
            double q = 1.0 / (1.0 + d2), wq = count * q;
            sz += wq;
            fx += wq * q * dx;
            fy += wq * q * dy;
        }
        m->rx[i] = fx;
        m->ry[i] = fy;
        t->sz[i] = sz;
    }
}

static int writable_doubles(Py_buffer *b, Py_ssize_t n)
{
    return b->len == n * (Py_ssize_t)sizeof(double);
}

/* The exact descent, or (barnes_hut) the Barnes-Hut one on `threads` threads. */
static int run_descent(Map *m, Py_ssize_t iterations, int barnes_hut, double theta, int threads)
{
    if (!barnes_hut) {
        for (Py_ssize_t t = 0; t < iterations; t++) {
            m->z = repulsion(m);
            step(m, 1);
        }
        return 0;
    }
    Py_ssize_t n = m->n;
    Tree t = {m, malloc(4 * (size_t)n * sizeof(Node)), NULL, NULL, 0, 4 * (int64_t)n,
              malloc((size_t)n * sizeof(int64_t)), malloc(4 * (size_t)n * sizeof(int64_t)),
              theta * theta, malloc((size_t)n * sizeof(double))};
    int failed = t.nodes == NULL || t.leaf == NULL || t.first == NULL || t.sz == NULL;
    for (Py_ssize_t it = 0; it < iterations && !failed; it++) {
        failed = build(&t) != 0;
        if (failed)
            break;
        in_parts(traverse_part, &t, n, threads);
        double z = 0.0;
        for (Py_ssize_t i = 0; i < n; i++)
            z += t.sz[i];
        m->z = z;
        step(m, threads);
    }
    free(t.nodes);
    free(t.flat);
    free(t.order);
    free(t.leaf);
    free(t.first);
    free(t.sz);
    return failed ? -1 : 0;
}

static PyObject *descent(PyObject *args, int barnes_hut)
{
    Py_buffer b[9];
    Py_ssize_t iterations;
    double exaggeration, momentum, theta = 0.5;
    int threads = 1;
    if (!PyArg_ParseTuple(args, barnes_hut ? "w*w*w*w*w*w*y*y*y*ndddi" : "w*w*w*w*w*w*y*y*y*ndd",
                          &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6], &b[7], &b[8],
                          &iterations, &exaggeration, &momentum, &theta, &threads))
        return NULL;
    Py_ssize_t n = b[0].len / (Py_ssize_t)sizeof(double);
    Py_ssize_t nnz = b[8].len / (Py_ssize_t)sizeof(double);
    int bad = n < 2 || iterations < 0 || !(theta >= 0) ||
              b[6].len != (n + 1) * (Py_ssize_t)sizeof(int64_t) ||
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
    int failed = scratch == NULL;
    if (!bad && scratch != NULL) {
        Map m = {n, indptr, indices, b[8].buf, b[0].buf, b[1].buf, b[2].buf, b[3].buf,
                 b[4].buf, b[5].buf, scratch, scratch + n, 0.0, exaggeration, momentum,
                 (double)n / exaggeration};
        Py_BEGIN_ALLOW_THREADS
        failed = run_descent(&m, iterations, barnes_hut, theta, threads) != 0;
        Py_END_ALLOW_THREADS
    }
    for (int k = 0; k < 9; k++)
        PyBuffer_Release(&b[k]);
    free(scratch);
    if (bad)
        return PyErr_Format(PyExc_ValueError,
                            "descend: x, y, ux, uy, gx, gy must be n >= 2 float64 each, indptr "
                            "n + 1 int64 from 0 to nnz, indices nnz int64 in [0, n), p nnz "
                            "float64, theta >= 0");
    if (failed)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* descend(x, y, ux, uy, gx, gy, indptr, indices, p, iterations, exaggeration, momentum) */
static PyObject *descend(PyObject *Py_UNUSED(module), PyObject *args)
{
    return descent(args, 0);
}

/* bh_descend(..., momentum, theta, threads): the same with Barnes-Hut's repulsion. */
static PyObject *bh_descend(PyObject *Py_UNUSED(module), PyObject *args)
{
    return descent(args, 1);
}

typedef struct {
    const double *distances;
    double *out;
    Py_ssize_t k;
    double target;
} Rows;

/* Each row's Gaussian width by bisection on beta = 1 / (2 sigma^2) until the entropy is
 * within 1e-10 of ln(perplexity); out = the conditional P_j|i of its neighbours. */
static void affinities_part(void *arg, ptrdiff_t begin, ptrdiff_t end)
{
    const Rows *r = arg;
    Py_ssize_t k = r->k;
    for (ptrdiff_t i = begin; i < end; i++) {
        const double *dist = r->distances + i * k;
        double *w = r->out + i * k;
        double nearest = dist[0] * dist[0];
        double beta = 1.0, low = 0.0, high = 1.0 / 0.0, total = 0.0;
        for (int it = 0; it < 200; it++) {
            double weighted = 0.0;
            total = 0.0;
            for (Py_ssize_t j = 0; j < k; j++) {
                double square = dist[j] * dist[j] - nearest; /* the nearest at 0: no underflow */
                w[j] = portable_exp(-beta * square);
                total += w[j];
                weighted += w[j] * square;
            }
            double entropy = portable_log(total) + beta * weighted / total;
            if (fabs(entropy - r->target) < 1e-10)
                break;
            if (entropy > r->target) { /* too many neighbours count: narrow the Gaussian */
                low = beta;
                beta = isinf(high) ? beta * 2 : (low + high) / 2;
            } else {
                high = beta;
                beta = (low + high) / 2;
            }
        }
        for (Py_ssize_t j = 0; j < k; j++)
            w[j] /= total;
    }
}

/* affinities(distances, n, k, perplexity, out, threads): conditional P (n, k) of the rows'
 * neighbour distances (n, k, nearest first). */
static PyObject *affinities(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer distances, out;
    Py_ssize_t n, k;
    double perplexity;
    int threads;
    if (!PyArg_ParseTuple(args, "y*nndw*i", &distances, &n, &k, &perplexity, &out, &threads))
        return NULL;
    Py_ssize_t f = (Py_ssize_t)sizeof(double);
    int bad = n < 0 || k < 1 || !(perplexity > 0) || distances.len != n * k * f ||
              out.len != n * k * f;
    if (!bad) {
        Rows rows = {distances.buf, out.buf, k, portable_log(perplexity)};
        Py_BEGIN_ALLOW_THREADS
        in_parts(affinities_part, &rows, n, threads);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&distances);
    PyBuffer_Release(&out);
    if (bad)
        return PyErr_Format(PyExc_ValueError, "affinities: distances and out (n, k) float64, "
                                              "perplexity > 0");
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"descend", descend, METH_VARARGS,
     "descend(x, y, ux, uy, gx, gy, indptr, indices, p, iterations, exaggeration, momentum): "
     "exact t-SNE gradient descent in place on positions x, y (float64, n each) with their "
     "previous steps and gains, under the symmetric affinities P (CSR: int64 indptr, int64 "
     "indices, float64 values)."},
    {"bh_descend", bh_descend, METH_VARARGS,
     "bh_descend(x, y, ux, uy, gx, gy, indptr, indices, p, iterations, exaggeration, momentum, "
     "theta, threads): the same with the repulsion approximated by Barnes-Hut."},
    {"affinities", affinities, METH_VARARGS,
     "affinities(distances, n, k, perplexity, out, threads): conditional P per row."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pipeline.native._tsne",
    .m_doc = "The report's t-SNE: see pipeline/native/_tsne.c.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__tsne(void)
{
    return PyModule_Create(&module);
}
