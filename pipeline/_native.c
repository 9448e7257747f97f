/* pipeline._native: the two loops that Python and numpy cannot run fast enough.
 *
 * scan_lines: read Google's drawing lines without decoding them. A JSON decoder builds a
 * Python object per coordinate (about a thousand per raw drawing); this walks each line's
 * bytes once, reads the metadata in Google's key order (plain strings, a 64-bit key_id) and
 * checks the drawing strictly (strokes of k lists of numbers, the lists of one stroke equally
 * long, the line closed right after the drawing) while counting strokes, points and the raw
 * duration. Lines of any other shape are flagged for the complete decoder in drawings.py.
 * It runs without the GIL, so threads scan parts of one file on every core.
 *
 * rdp_keep: Ramer-Douglas-Peucker on one stroke.
 *
 * flatten: a simplified drawing's lists of coordinates as bytes, checked, for the sample.
 *
 * simplify: Google's simplification of one raw drawing (render.py's simplify_strokes), with
 * each kept point's time: in numpy it costs ~25 array calls per stroke, half a millisecond a
 * drawing, where the sample stage simplifies up to 100,000 of them. Step for step it is the
 * numpy recipe it replaced (the same libm hypot, numpy's sequential cumsum, arange and interp
 * formulas, rint), so it gives the same integers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t size, capacity;
} Column;

static int column_put(Column *column, const void *value, size_t size)
{
    if (column->size + size > column->capacity) {
        size_t capacity = column->capacity ? column->capacity : 1 << 16;
        while (capacity < column->size + size)
            capacity *= 2;
        char *grown = realloc(column->data, capacity);
        if (grown == NULL)
            return -1;
        column->data = grown;
        column->capacity = capacity;
    }
    memcpy(column->data + column->size, value, size);
    column->size += size;
    return 0;
}

/* The columns scan_lines returns, in this order. */
enum {
    STARTS, LENGTHS, STROKES, POINTS, DURATIONS, RECOGNIZED, KEY_IDS, SHAPED,
    WORD_ENDS, COUNTRY_ENDS, TIME_ENDS, WORDS, COUNTRIES, TIMES, COLUMNS
};

typedef struct {
    const uint8_t *buf;
    Py_ssize_t n;
} Text;

/* Index after `literal` if buf[i:] starts with it, else -1. */
static Py_ssize_t literal(Text t, Py_ssize_t i, const char *literal, Py_ssize_t size)
{
    if (i < 0 || i + size > t.n || memcmp(t.buf + i, literal, size) != 0)
        return -1;
    return i + size;
}
#define LITERAL(t, i, s) literal((t), (i), (s), (Py_ssize_t)sizeof(s) - 1)

/* Index of the closing quote of a plain string (no escapes, no control bytes), or -1. */
static Py_ssize_t plain_string(Text t, Py_ssize_t i)
{
    if (i < 0)
        return -1;
    for (; i < t.n; i++) {
        uint8_t byte = t.buf[i];
        if (byte == '"')
            return i;
        if (byte == '\\' || byte < 32)
            return -1;
    }
    return -1;
}

static int is_digit(uint8_t byte)
{
    return byte >= '0' && byte <= '9';
}

/* Index after the number at buf[i], or -1. Google writes -?(0|[1-9][0-9]*)(.[0-9]+)?; numbers
 * with an exponent or too many digits for a double (which the decoder rejects as infinite) are
 * left to the decoder. */
static Py_ssize_t json_number(const uint8_t *buf, Py_ssize_t i, Py_ssize_t n)
{
    if (i < n && buf[i] == '-')
        i++;
    if (i >= n || !is_digit(buf[i]))
        return -1;
    Py_ssize_t integer = i;
    if (buf[i++] != '0')
        while (i < n && is_digit(buf[i]))
            i++;
    if (i - integer > 300)
        return -1;
    if (i < n && buf[i] == '.') {
        if (++i >= n || !is_digit(buf[i]))
            return -1;
        while (i < n && is_digit(buf[i]))
            i++;
    }
    if (i < n && (buf[i] == 'e' || buf[i] == 'E'))
        return -1;
    return i;
}

/* The value of the JSON number in buf[start:end], correctly rounded; NAN if it is too long. */
static double number_value(const uint8_t *buf, Py_ssize_t start, Py_ssize_t end)
{
    char text[64];
    if (end - start >= (Py_ssize_t)sizeof text)
        return NAN;
    memcpy(text, buf + start, end - start);
    text[end - start] = '\0';
    return strtod(text, NULL);
}

typedef struct {
    int32_t strokes, points;
    int64_t duration;
} Drawing;

/* Check the drawing opening at buf[i] (`lists` lists per stroke); index after it, or -1. */
static Py_ssize_t scan_drawing(Text t, Py_ssize_t i, int lists, Drawing *drawing)
{
    const uint8_t *buf = t.buf;
    Py_ssize_t n = t.n, first_start = -1, first_end = 0, last_start = 0, last_end = 0;
    int64_t strokes = 0, points = 0;
    if (i >= n || buf[i++] != '[')
        return -1;
    for (;;) {
        Py_ssize_t length = -1;
        if (i >= n || buf[i++] != '[')
            return -1;
        for (int list = 0; list < lists; list++) {
            Py_ssize_t count = 0;
            if (list > 0 && (i >= n || buf[i++] != ','))
                return -1;
            if (i >= n || buf[i++] != '[')
                return -1;
            for (;;) {
                Py_ssize_t start = i;
                uint8_t separator;
                i = json_number(buf, i, n);
                if (i < 0 || i >= n)
                    return -1;
                if (list == 2) { /* raw: the times */
                    if (first_start < 0) {
                        first_start = start;
                        first_end = i;
                    }
                    last_start = start;
                    last_end = i;
                }
                count++;
                separator = buf[i++];
                if (separator == ']')
                    break;
                if (separator != ',')
                    return -1;
            }
            if (length >= 0 && count != length)
                return -1;
            length = count;
        }
        if (i >= n || buf[i++] != ']')
            return -1;
        strokes++;
        points += length;
        if (strokes > INT32_MAX || points > INT32_MAX || i >= n)
            return -1;
        if (buf[i] == ']') {
            drawing->strokes = (int32_t)strokes;
            drawing->points = (int32_t)points;
            drawing->duration = 0;
            if (lists == 3) {
                double duration = number_value(buf, last_start, last_end) -
                                  number_value(buf, first_start, first_end);
                if (!(fabs(duration) < 9e18)) /* NAN, or no int64: the decoder decides */
                    return -1;
                drawing->duration = (int64_t)duration;
            }
            return i + 1;
        }
        if (buf[i++] != ',')
            return -1;
    }
}

typedef struct {
    Py_ssize_t spans[6]; /* word, countrycode, timestamp: [start, end) */
    uint8_t recognized;
    uint64_t key_id;
} Metadata;

/* Google's metadata in Google's key order; the index of the drawing's value, or -1. */
static Py_ssize_t scan_metadata(Text t, Py_ssize_t i, Metadata *meta)
{
    static const char *const leads[3] = {"{\"word\":\"", "\",\"countrycode\":\"",
                                         "\",\"timestamp\":\""};
    for (int field = 0; field < 3; field++) {
        i = literal(t, i, leads[field], (Py_ssize_t)strlen(leads[field]));
        Py_ssize_t close = plain_string(t, i);
        if (close < 0)
            return -1;
        meta->spans[2 * field] = i;
        meta->spans[2 * field + 1] = close;
        i = close;
    }
    i = LITERAL(t, i, "\",\"recognized\":");
    if (i < 0)
        return -1;
    Py_ssize_t after = LITERAL(t, i, "true");
    meta->recognized = after >= 0;
    if (after < 0 && (after = LITERAL(t, i, "false")) < 0)
        return -1;
    i = LITERAL(t, after, ",\"key_id\":\"");
    if (i < 0)
        return -1;
    uint64_t key_id = 0;
    int digits = 0;
    /* 19 digits always fit in 64 bits; longer ids go to the decoder, which checks the range */
    for (; i < t.n && t.buf[i] >= '0' && t.buf[i] <= '9' && digits < 19; i++, digits++)
        key_id = key_id * 10 + (t.buf[i] - '0');
    if (digits == 0)
        return -1;
    meta->key_id = key_id;
    return LITERAL(t, i, "\",\"drawing\":");
}

/* Scan the lines that begin in buf[start:end]; 0, or -1 when out of memory. */
static int scan(Text t, Py_ssize_t start, Py_ssize_t end, int lists, Column *columns)
{
    static const int32_t zero = 0;
    for (int text = 0; text < 3; text++)
        if (column_put(&columns[WORD_ENDS + text], &zero, sizeof zero))
            return -1;
    Py_ssize_t i = start;
    while (i < end && i < t.n) {
        Metadata meta;
        Drawing drawing = {0, 0, 0};
        uint8_t shaped = 0;
        Py_ssize_t line_end = -1, drawing_start = scan_metadata(t, i, &meta);
        if (drawing_start >= 0) {
            Py_ssize_t after = scan_drawing(t, drawing_start, lists, &drawing);
            if (after >= 0 && after < t.n && t.buf[after] == '}' &&
                (after + 1 == t.n || t.buf[after + 1] == '\n')) {
                line_end = after + 1;
                shaped = 1;
            }
        }
        if (!shaped) { /* another shape: the complete decoder will look at this line */
            const uint8_t *newline = memchr(t.buf + i, '\n', t.n - i);
            line_end = newline ? newline - t.buf : t.n;
            memset(&meta, 0, sizeof meta);
            drawing = (Drawing){0, 0, 0};
        }
        int64_t line_start = i;
        int32_t length = (int32_t)(line_end - i);
        int failed = column_put(&columns[STARTS], &line_start, 8) |
                     column_put(&columns[LENGTHS], &length, 4) |
                     column_put(&columns[STROKES], &drawing.strokes, 4) |
                     column_put(&columns[POINTS], &drawing.points, 4) |
                     column_put(&columns[DURATIONS], &drawing.duration, 8) |
                     column_put(&columns[RECOGNIZED], &meta.recognized, 1) |
                     column_put(&columns[KEY_IDS], &meta.key_id, 8) |
                     column_put(&columns[SHAPED], &shaped, 1);
        for (int text = 0; text < 3; text++) {
            Column *data = &columns[WORDS + text];
            Py_ssize_t size = meta.spans[2 * text + 1] - meta.spans[2 * text];
            failed |= column_put(data, t.buf + meta.spans[2 * text], size);
            int32_t text_end = (int32_t)data->size;
            failed |= data->size > INT32_MAX;
            failed |= column_put(&columns[WORD_ENDS + text], &text_end, 4);
        }
        if (failed)
            return -1;
        i = line_end + 1;
    }
    return 0;
}

static PyObject *scan_lines(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start, end;
    int lists;
    if (!PyArg_ParseTuple(args, "y*nni", &view, &start, &end, &lists))
        return NULL;
    if (lists != 2 && lists != 3) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "lists must be 2 or 3, not %d", lists);
    }
    Column columns[COLUMNS];
    memset(columns, 0, sizeof columns);
    Text text = {view.buf, view.len};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = scan(text, start < 0 ? 0 : start, end, lists, columns);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *result = status ? PyErr_NoMemory() : PyTuple_New(COLUMNS);
    for (int c = 0; c < COLUMNS; c++) {
        if (result != NULL) {
            PyObject *bytes = PyBytes_FromStringAndSize(columns[c].data, columns[c].size);
            if (bytes == NULL)
                Py_CLEAR(result);
            else
                PyTuple_SET_ITEM(result, c, bytes);
        }
        free(columns[c].data);
    }
    return result;
}

/* RDP over points[0..n) (x, y pairs); sets keep[q] = 1 for the points it keeps. */
static void rdp(const double *points, Py_ssize_t n, double epsilon, uint8_t *keep,
                Py_ssize_t *stack)
{
    Py_ssize_t top = 0;
    memset(keep, 0, n);
    keep[0] = keep[n - 1] = 1;
    stack[top++] = 0;
    stack[top++] = n - 1;
    while (top > 0) {
        Py_ssize_t j = stack[--top], i = stack[--top];
        if (j <= i + 1)
            continue;
        double ax = points[2 * i], ay = points[2 * i + 1];
        double abx = points[2 * j] - ax, aby = points[2 * j + 1] - ay;
        double chord = hypot(abx, aby), best = -1.0, best_cross = -1.0;
        Py_ssize_t far = i + 1;
        for (Py_ssize_t q = i + 1; q < j; q++) {
            double rx = points[2 * q] - ax, ry = points[2 * q + 1] - ay;
            double distance;
            if (chord > 0) {
                /* cross / chord is monotonic in cross: a point whose cross product is not
                 * above the largest seen cannot be farther, so only those are divided */
                double cross = fabs(abx * ry - aby * rx);
                if (!(cross > best_cross))
                    continue;
                best_cross = cross;
                distance = cross / chord;
            } else {
                distance = hypot(rx, ry);
            }
            if (distance > best) {
                best = distance;
                far = q;
            }
        }
        if (best > epsilon) {
            keep[far] = 1;
            stack[top++] = far;
            stack[top++] = j;
            stack[top++] = i;
            stack[top++] = far;
        }
    }
}

static PyObject *rdp_keep(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer points, keep;
    double epsilon;
    if (!PyArg_ParseTuple(args, "y*w*d", &points, &keep, &epsilon))
        return NULL;
    Py_ssize_t n = keep.len;
    PyObject *result = Py_None;
    if (n < 1 || points.len != n * 2 * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "rdp_keep: points must be n (x, y) doubles, n >= 1");
        result = NULL;
    } else {
        /* each stroke point is pushed at most once, as two pairs of indices */
        Py_ssize_t *stack = PyMem_RawMalloc(sizeof(Py_ssize_t) * (4 * n + 2));
        if (stack == NULL) {
            result = PyErr_NoMemory();
        } else {
            Py_BEGIN_ALLOW_THREADS
            rdp(points.buf, n, epsilon, keep.buf, stack);
            Py_END_ALLOW_THREADS
            PyMem_RawFree(stack);
        }
    }
    PyBuffer_Release(&points);
    PyBuffer_Release(&keep);
    Py_XINCREF(result);
    return result;
}

/* One growing array of doubles per quantity, freed together. */
typedef struct {
    double *x, *y, *t;
    Py_ssize_t capacity;
} Points;

static int points_reserve(Points *p, Py_ssize_t n)
{
    if (n <= p->capacity)
        return 0;
    Py_ssize_t capacity = p->capacity ? p->capacity : 256;
    while (capacity < n)
        capacity *= 2;
    double *x = PyMem_RawRealloc(p->x, capacity * sizeof(double));
    if (x != NULL)
        p->x = x;
    double *y = x ? PyMem_RawRealloc(p->y, capacity * sizeof(double)) : NULL;
    if (y != NULL)
        p->y = y;
    double *t = y ? PyMem_RawRealloc(p->t, capacity * sizeof(double)) : NULL;
    if (t == NULL)
        return -1;
    p->t = t;
    p->capacity = capacity;
    return 0;
}

static void points_free(Points *p)
{
    PyMem_RawFree(p->x);
    PyMem_RawFree(p->y);
    PyMem_RawFree(p->t);
}

/* numpy.interp(x, xp, fp) at increasing x, walking j forward (numpy's formula and cases),
 * for the three quantities at once: they share xp, so they share j. */
static void interp3(double x, const double *xp, const double *const fp[3], Py_ssize_t m,
                    Py_ssize_t *j, double out[3])
{
    while (*j + 1 < m && xp[*j + 1] <= x)
        ++*j;
    for (int r = 0; r < 3; r++) {
        if (x < xp[0])
            out[r] = fp[r][0];
        else if (*j == m - 1 || x == xp[*j])
            out[r] = fp[r][*j];
        else {
            double slope = (fp[r][*j + 1] - fp[r][*j]) / (xp[*j + 1] - xp[*j]);
            out[r] = slope * (x - xp[*j]) + fp[r][*j];
        }
    }
}

/* Read a stroke's first `rows` lists of numbers into p at `at`; its length, or -1. */
static Py_ssize_t read_stroke(PyObject *stroke, int rows, Points *p, Py_ssize_t at)
{
    PyObject *lists = PySequence_Fast(stroke, "a stroke must be a list of lists");
    if (lists == NULL)
        return -1;
    Py_ssize_t n = -1;
    if (PySequence_Fast_GET_SIZE(lists) < rows) {
        PyErr_Format(PyExc_ValueError, "a stroke must hold %d lists", rows);
        goto done;
    }
    for (int r = 0; r < rows; r++) {
        PyObject *values = PySequence_Fast(PySequence_Fast_GET_ITEM(lists, r),
                                           "a stroke's coordinates must be a list of numbers");
        if (values == NULL) {
            n = -1;
            goto done;
        }
        Py_ssize_t count = PySequence_Fast_GET_SIZE(values);
        if (r > 0 && count != n) {
            PyErr_SetString(PyExc_ValueError, "the lists of a stroke differ in length");
            Py_DECREF(values);
            n = -1;
            goto done;
        }
        n = count;
        if (points_reserve(p, at + n) < 0) {
            PyErr_NoMemory();
            Py_DECREF(values);
            n = -1;
            goto done;
        }
        double *out = r == 0 ? p->x : r == 1 ? p->y : p->t;
        for (Py_ssize_t i = 0; i < n; i++) {
            double v = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(values, i));
            if (v == -1.0 && PyErr_Occurred()) {
                Py_DECREF(values);
                n = -1;
                goto done;
            }
            out[at + i] = v;
        }
        Py_DECREF(values);
    }
done:
    Py_DECREF(lists);
    return n;
}

/* Resample one scaled stroke (n points at src) at 1-unit arc length, then RDP, appending the
 * kept points, rounded, to the output columns. */
static int simplify_stroke(const double *sx, const double *sy, const double *st, Py_ssize_t n,
                           int timed, double epsilon, Points *work, Column *xs, Column *ys,
                           Column *ts)
{
    /* drop points that repeat their predecessor (numpy: steps of length 0) */
    Py_ssize_t m = 0;
    double *px = work->x, *py = work->y, *pt = work->t, *arc;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0 && sx[i] == sx[i - 1] && sy[i] == sy[i - 1]) /* a step of length 0 */
            continue;
        px[m] = sx[i];
        py[m] = sy[i];
        pt[m] = timed ? st[i] : 0.0;
        m++;
    }
    Py_ssize_t k = m;
    double *rx = px, *ry = py, *rt = pt, *buffer = NULL;
    if (m >= 2) {
        arc = PyMem_RawMalloc(m * sizeof(double));
        if (arc == NULL)
            return -1;
        arc[0] = 0.0;
        for (Py_ssize_t i = 1; i < m; i++)
            arc[i] = arc[i - 1] + hypot(px[i] - px[i - 1], py[i] - py[i - 1]);
        double length = arc[m - 1];
        Py_ssize_t steps = (Py_ssize_t)ceil(length); /* numpy.arange(0.0, length, 1.0) */
        k = steps + (length - (double)(steps - 1) > 1e-9);
        buffer = PyMem_RawMalloc(k * 4 * sizeof(double) + k);
        if (buffer == NULL) {
            PyMem_RawFree(arc);
            return -1;
        }
        rx = buffer;                /* interleaved x, y for rdp */
        rt = buffer + 2 * k;        /* times */
        const double *const quantities[3] = {px, py, pt};
        Py_ssize_t j = 0;
        for (Py_ssize_t i = 0; i < k; i++) {
            double target = i < steps ? (double)i : length, value[3];
            interp3(target, arc, quantities, m, &j, value);
            rx[2 * i] = value[0];
            rx[2 * i + 1] = value[1];
            rt[i] = value[2];
        }
        PyMem_RawFree(arc);
        ry = rx + 1;
    }
    uint8_t *keep = NULL;
    if (k > 2) {
        keep = (uint8_t *)(buffer + 3 * k);
        Py_ssize_t *stack = PyMem_RawMalloc(sizeof(Py_ssize_t) * (4 * k + 2));
        if (stack == NULL) {
            PyMem_RawFree(buffer);
            return -1;
        }
        rdp(rx, k, epsilon, keep, stack);
        PyMem_RawFree(stack);
    }
    Py_ssize_t stride = buffer ? 2 : 1, kept = 0;
    for (Py_ssize_t i = 0; i < k; i++) {
        if (keep && !keep[i])
            continue;
        for (int copy = 0; copy < (k == 1 ? 2 : 1); copy++) { /* a dot: its point twice */
            double x = rint(rx[stride * i]), y = rint(ry[stride * i]);
            uint8_t bx = x < 0 ? 0 : x > 255 ? 255 : (uint8_t)x;
            uint8_t by = y < 0 ? 0 : y > 255 ? 255 : (uint8_t)y;
            int32_t time = (int32_t)rint(rt[i]);
            if (column_put(xs, &bx, 1) < 0 || column_put(ys, &by, 1) < 0 ||
                (timed && column_put(ts, &time, sizeof time) < 0)) {
                PyMem_RawFree(buffer);
                return -1;
            }
            kept++;
        }
    }
    PyMem_RawFree(buffer);
    return (int)kept;
}

/* Scale a drawing's points (read by simplify) and simplify each stroke into the columns;
 * 0, or -1 when out of memory. Runs without the GIL. */
static int simplify_points(Points *all, const Py_ssize_t *sizes, Py_ssize_t count,
                           Py_ssize_t total, int timed, double epsilon, Column *xs, Column *ys,
                           Column *ts, Column *ends)
{
    if (total == 0)
        return 0;
    double lowx = INFINITY, lowy = INFINITY, highx = -INFINITY, highy = -INFINITY;
    for (Py_ssize_t i = 0; i < total; i++) {
        lowx = fmin(lowx, all->x[i]);
        highx = fmax(highx, all->x[i]);
        lowy = fmin(lowy, all->y[i]);
        highy = fmax(highy, all->y[i]);
    }
    double extent = fmax(highx - lowx, highy - lowy);
    double scale = extent > 0 ? 255.0 / extent : 1.0, start = timed ? all->t[0] : 0.0;
    for (Py_ssize_t i = 0; i < total; i++) {
        all->x[i] = (all->x[i] - lowx) * scale;
        all->y[i] = (all->y[i] - lowy) * scale;
        if (timed)
            all->t[i] -= start;
    }
    Points work = {0};
    int32_t end = 0, failed = 0;
    for (Py_ssize_t s = 0, at = 0; s < count && !failed; at += sizes[s], s++) {
        if (sizes[s] == 0)
            continue;
        int kept = points_reserve(&work, sizes[s]) < 0
                       ? -1
                       : simplify_stroke(all->x + at, all->y + at, all->t + at, sizes[s], timed,
                                         epsilon, &work, xs, ys, ts);
        end += kept;
        failed = kept < 0 || column_put(ends, &end, sizeof end) < 0;
    }
    points_free(&work);
    return failed ? -1 : 0;
}

static PyObject *simplify(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *drawing;
    int timed;
    double epsilon;
    if (!PyArg_ParseTuple(args, "Opd", &drawing, &timed, &epsilon))
        return NULL;
    PyObject *strokes = PySequence_Fast(drawing, "a drawing must be a list of strokes");
    if (strokes == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(strokes), total = 0;
    Points all = {0};
    Column xs = {0}, ys = {0}, ts = {0}, ends = {0};
    Py_ssize_t *sizes = PyMem_RawMalloc((count + 1) * sizeof(Py_ssize_t));
    PyObject *result = NULL;
    if (sizes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t s = 0; s < count; s++) {
        sizes[s] = read_stroke(PySequence_Fast_GET_ITEM(strokes, s), timed ? 3 : 2, &all, total);
        if (sizes[s] < 0)
            goto done;
        total += sizes[s];
    }
    int failed;
    Py_BEGIN_ALLOW_THREADS /* the arithmetic needs no Python objects: other threads run */
    failed = simplify_points(&all, sizes, count, total, timed, epsilon, &xs, &ys, &ts, &ends);
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *times = timed ? PyBytes_FromStringAndSize(ts.data, ts.size) : Py_NewRef(Py_None);
    /* "y#" turns a NULL pointer (an empty column) into None: give it an empty string */
    result = Py_BuildValue("(y#y#Ny#)", xs.data ? xs.data : "", (Py_ssize_t)xs.size,
                           ys.data ? ys.data : "", (Py_ssize_t)ys.size, times,
                           ends.data ? ends.data : "", (Py_ssize_t)ends.size);
done:
    PyMem_RawFree(sizes);
    points_free(&all);
    free(xs.data);
    free(ys.data);
    free(ts.data);
    free(ends.data);
    Py_DECREF(strokes);
    return result;
}

/* Append a list of integers in 0..255 to a column of bytes; its length, or -1. */
static Py_ssize_t put_bytes(PyObject *list, Column *out)
{
    PyObject *values = PySequence_Fast(list, "a stroke's coordinates must be a list of numbers");
    if (values == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(values);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(values, i);
        long v = PyLong_Check(item) ? PyLong_AsLong(item) : -2;
        if (v < 0 || v > 255) {
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_SetString(PyExc_ValueError,
                                "simplified coordinates must be integers in 0..255");
            }
            n = -1;
            break;
        }
        uint8_t byte = (uint8_t)v;
        if (column_put(out, &byte, 1) < 0) {
            PyErr_NoMemory();
            n = -1;
            break;
        }
    }
    Py_DECREF(values);
    return n;
}

static PyObject *flatten(PyObject *Py_UNUSED(module), PyObject *drawing)
{
    PyObject *strokes = PySequence_Fast(drawing, "a drawing must be a list of strokes");
    if (strokes == NULL)
        return NULL;
    Column xs = {0}, ys = {0}, ends = {0};
    PyObject *result = NULL;
    int32_t end = 0;
    for (Py_ssize_t s = 0; s < PySequence_Fast_GET_SIZE(strokes); s++) {
        PyObject *lists = PySequence_Fast(PySequence_Fast_GET_ITEM(strokes, s),
                                          "a stroke must be a list of lists");
        if (lists == NULL)
            goto done;
        Py_ssize_t nx = -1, ny = -1;
        if (PySequence_Fast_GET_SIZE(lists) != 2)
            PyErr_SetString(PyExc_ValueError, "a stroke must hold 2 lists");
        else if ((nx = put_bytes(PySequence_Fast_GET_ITEM(lists, 0), &xs)) >= 0 &&
                 (ny = put_bytes(PySequence_Fast_GET_ITEM(lists, 1), &ys)) >= 0 && nx != ny)
            PyErr_SetString(PyExc_ValueError, "the lists of a stroke differ in length");
        Py_DECREF(lists);
        if (nx < 0 || ny < 0 || nx != ny)
            goto done;
        end += (int32_t)nx;
        if (column_put(&ends, &end, sizeof end) < 0) {
            PyErr_NoMemory();
            goto done;
        }
    }
    result = Py_BuildValue("(y#y#y#)", xs.data ? xs.data : "", (Py_ssize_t)xs.size,
                           ys.data ? ys.data : "", (Py_ssize_t)ys.size,
                           ends.data ? ends.data : "", (Py_ssize_t)ends.size);
done:
    free(xs.data);
    free(ys.data);
    free(ends.data);
    Py_DECREF(strokes);
    return result;
}

static PyMethodDef methods[] = {
    {"scan_lines", scan_lines, METH_VARARGS,
     "scan_lines(buffer, start, end, lists) -> 14 bytes objects: per line start (int64), "
     "length (int32), strokes (int32), points (int32), duration (int64), recognized (uint8), "
     "key_id (uint64), in Google's shape (uint8); word, countrycode and timestamp as Arrow "
     "offsets (int32, n + 1) and then their bytes. Lines not in Google's shape have zeros."},
    {"rdp_keep", rdp_keep, METH_VARARGS,
     "rdp_keep(points, keep, epsilon): Ramer-Douglas-Peucker over float64 (n, 2) points; "
     "sets keep (uint8, n) to 1 for the points kept."},
    {"flatten", flatten, METH_O,
     "flatten(strokes) -> (xs, ys, ends): a simplified drawing ([[xs, ys], ...], integers in "
     "0..255) as its points' x and y (uint8 bytes) and each stroke's exclusive end (int32)."},
    {"simplify", simplify, METH_VARARGS,
     "simplify(strokes, timed, epsilon) -> (xs, ys, ts, ends): Google's simplification of one "
     "raw drawing ([[xs, ys(, ts)], ...]): the kept points' x and y (uint8 bytes), their times "
     "in ms since the first point (int32 bytes; None unless timed) and each stroke's "
     "exclusive end (int32 bytes)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pipeline._native",
    .m_doc = "Compiled kernels: see pipeline/_native.c.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    return PyModule_Create(&module);
}
