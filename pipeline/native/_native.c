/* pipeline.native._native: the two loops that Python and numpy cannot run fast enough.
 *
 * scan_lines: read Google's drawing lines without decoding them. A JSON decoder builds a
 * Python object per coordinate (about a thousand per raw drawing); this walks each line's
 * bytes once, reads the metadata in Google's key order (plain strings, a 64-bit key_id) and
 * checks the drawing strictly (strokes of k lists of numbers, the lists of one stroke equally
 * long, the line closed right after the drawing, and Google's format: simplified coordinates
 * integers in 0..255, raw times integers that never decrease within a stroke) while counting
 * strokes, points and the raw
 * duration, and computing the first stroke's signed area (the shoelace formula, closing edge
 * included; in the file's y-down coordinates positive means clockwise on screen). Lines of
 * any other shape are flagged for the complete decoder in drawings.py.
 * It runs without the GIL, so threads scan parts of one file on every core.
 *
 * rdp_keep: Ramer-Douglas-Peucker on one stroke.
 *
 * flatten: a simplified drawing's lists of coordinates as bytes, checked, for the sample.
 *
 * simplify: Google's simplification of one raw drawing (render.py's simplify_strokes), with
 * each kept point's time: in numpy it costs ~25 array calls per stroke, half a millisecond a
 * drawing, where the sample stage simplifies up to 100,000 of them. Step for step it is the
 * numpy recipe it replaced (numpy's sequential cumsum, arange and interp formulas, rint), so it
 * gives the same integers; lengths are hypot_exact's, correctly rounded, where C libraries'
 * hypot differ in the last bit (and macOS's, musl's and glibc's are not all correctly rounded).
 *
 * group_sums: the profile's per-country sums of bitmaps, one pass over the rows (numpy needs
 * a gather per country: 3x slower, measured in pipeline/stats/profile.py's docstring).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
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
    STARTS, LENGTHS, STROKES, POINTS, DURATIONS, RECOGNIZED, KEY_IDS, SHAPED, AREAS,
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

/* m / 10^k rounded to the nearest double, for m < 10^19 and k <= 19; NAN when that needs the
 * slow way (strtod). Up to 15 digits, m and 10^k are exact doubles, so one division rounds
 * correctly (Clinger's fast path). Longer mantissas (raw files hold float32 values printed
 * with 17 digits) are divided in x87 extended precision, exact operands rounded once to 64
 * bits, then rounded to 53: that second rounding errs only if the first landed exactly
 * halfway between two doubles (the 11 bits dropped are 10000000000), which is checked. */
static double decimal_value(uint64_t m, int digits, int k)
{
    static const double powers[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    if (digits <= 15 && k <= 15)
        return k ? (double)m / powers[k] : (double)m;
#if LDBL_MANT_DIG == 64 && defined(__x86_64__)
    static const long double long_powers[] = {
        1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
        1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L};
    long double wide = (long double)m / long_powers[k];
    uint64_t significand;
    memcpy(&significand, &wide, sizeof significand); /* x87: the low 8 bytes, explicit 1 */
    if ((significand & 0x7FF) == 0x400)
        return NAN;
    return (double)wide;
#else
    (void)m;
    (void)k;
    return NAN;
#endif
}

/* The value of the JSON number in buf[start:end] (valid, no exponent), correctly rounded; NAN if
 * it is too long. */
static double number_value(const uint8_t *buf, Py_ssize_t start, Py_ssize_t end)
{
    char text[64];
    if (end - start >= (Py_ssize_t)sizeof text)
        return NAN;
    memcpy(text, buf + start, end - start);
    text[end - start] = '\0';
    return strtod(text, NULL);
}

#define INLINE static inline __attribute__((always_inline))

/* Read digits while they last, into the mantissa (if any) while it has room (19 digits). */
INLINE Py_ssize_t digit_run(const uint8_t *buf, Py_ssize_t i, Py_ssize_t n,
                                   uint64_t *mantissa, int *digits)
{
    for (; i < n && is_digit(buf[i]); i++)
        if (mantissa != NULL && ++*digits <= 19)
            *mantissa = *mantissa * 10 + (buf[i] - '0');
    return i;
}

/* Index after the number at buf[i], or -1; its value in *value when value is not NULL. Google
 * writes -?(0|[1-9][0-9]*)(.[0-9]+)?; numbers with an exponent or too many digits for a double
 * (which the decoder rejects as infinite) are left to the decoder. Inlined at each call, so the
 * numbers whose value is not needed (all but the first stroke's) cost no arithmetic. */
INLINE Py_ssize_t json_number(const uint8_t *buf, Py_ssize_t i, Py_ssize_t n, double *value)
{
    Py_ssize_t start = i;
    uint64_t mantissa = 0, *accumulate = value != NULL ? &mantissa : NULL;
    int digits = 0, fraction = 0;
    if (i < n && buf[i] == '-')
        i++;
    if (i >= n || !is_digit(buf[i]))
        return -1;
    Py_ssize_t integer = i;
    uint8_t lead = buf[i++];
    mantissa = lead - '0';
    digits = 1;
    if (lead != '0')
        i = digit_run(buf, i, n, accumulate, &digits);
    if (i - integer > 300)
        return -1;
    if (i < n && buf[i] == '.') {
        if (++i >= n || !is_digit(buf[i]))
            return -1;
        Py_ssize_t point = i;
        i = digit_run(buf, i, n, accumulate, &digits);
        fraction = (int)(i - point);
    }
    if (i < n && (buf[i] == 'e' || buf[i] == 'E'))
        return -1;
    if (value != NULL) {
        double v = digits <= 19 ? decimal_value(mantissa, digits, fraction) : NAN;
        if (isnan(v))
            v = number_value(buf, start, i);
        else if (buf[start] == '-')
            v = -v;
        *value = v;
    }
    return i;
}

typedef struct {
    int32_t strokes, points;
    int64_t duration;
    double area;
} Drawing;

/* The first stroke's signed area, computed while its numbers go by: the xs are kept, then each
 * y closes one edge of the shoelace sum. drawings.first_stroke_area sums in the same order, so
 * the two agree to the bit (the build turns off fused multiply-adds, which would round once
 * where Python rounds twice). */
typedef struct {
    Column xs; /* doubles, reused from line to line */
    Py_ssize_t count;
    double first_y, previous_y, sum;
} Shoelace;

/* Take `value`, point `point` of list `list` (0: x, 1: y) of the first stroke; 0, or -1 to
 * hand the line to the decoder (an overlong number, no memory: the decoder decides). */
static int shoelace_put(Shoelace *s, int list, Py_ssize_t point, double value)
{
    if (isnan(value))
        return -1;
    if (list == 0) {
        if (point == 0)
            s->xs.size = 0;
        s->count = point + 1;
        return column_put(&s->xs, &value, sizeof value);
    }
    if (point >= s->count)
        return 0; /* more ys than xs: the line is rejected anyway */
    const double *xs = (const double *)s->xs.data;
    if (point == 0) {
        s->first_y = value;
        s->sum = 0.0;
    } else {
        s->sum += xs[point - 1] * value - xs[point] * s->previous_y;
    }
    s->previous_y = value;
    return 0;
}

static double shoelace_area(const Shoelace *s)
{
    const double *xs = (const double *)s->xs.data;
    Py_ssize_t last = s->count - 1;
    return (s->sum + (xs[last] * s->first_y - xs[0] * s->previous_y)) * 0.5;
}

/* One list of numbers at buf[i]; the index after it, or -1. Counts its numbers; with a
 * shoelace, hands it each value as list `list` of the first stroke; with `times`, keeps the
 * spans of its first and last number. Inlined at each call, so each list pays only for what
 * it needs. */
enum { ANY_NUMBER, BYTE, TIME };

/* Whether the number in buf[start:end] is what Google's format allows in a list of this kind:
 * BYTE, a simplified coordinate, an integer in 0..255; TIME, a raw time, an integer no smaller
 * than the stroke's previous one (*previous; fractions and huge ones go to the decoder). */
INLINE int in_format(const uint8_t *buf, Py_ssize_t start, Py_ssize_t end, int kind,
                     Py_ssize_t found, uint64_t *previous)
{
    if (kind == ANY_NUMBER)
        return 1;
    if (end - start > (kind == BYTE ? 3 : 18))
        return 0;
    uint64_t value = 0;
    for (Py_ssize_t p = start; p < end; p++) {
        if (!is_digit(buf[p]))
            return 0;
        value = value * 10 + (buf[p] - '0');
    }
    if (kind == BYTE)
        return value <= 255;
    if (found > 0 && value < *previous)
        return 0;
    *previous = value;
    return 1;
}

INLINE Py_ssize_t scan_list(const uint8_t *buf, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *count,
                            Shoelace *shoelace, int list, Py_ssize_t times[4], int kind)
{
    Py_ssize_t found = 0;
    uint64_t previous = 0;
    if (i >= n || buf[i++] != '[')
        return -1;
    for (;;) {
        Py_ssize_t start = i;
        double value;
        i = json_number(buf, i, n, shoelace != NULL ? &value : NULL);
        if (i < 0 || i >= n || !in_format(buf, start, i, kind, found, &previous))
            return -1;
        if (shoelace != NULL && shoelace_put(shoelace, list, found, value))
            return -1;
        if (times != NULL) {
            if (found == 0) {
                times[0] = start;
                times[1] = i;
            }
            times[2] = start;
            times[3] = i;
        }
        found++;
        uint8_t separator = buf[i++];
        if (separator == ']')
            break;
        if (separator != ',')
            return -1;
    }
    *count = found;
    return i;
}

/* Check the drawing opening at buf[i] (`lists` lists per stroke); index after it, or -1. */
static Py_ssize_t scan_drawing(Text t, Py_ssize_t i, int lists, Drawing *drawing,
                               Shoelace *shoelace)
{
    const uint8_t *buf = t.buf;
    Py_ssize_t n = t.n, first[4] = {0}, last[4] = {0};
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
            int kind = lists == 2 ? BYTE : ANY_NUMBER; /* raw coordinates: any number */
            if (list == 2) /* raw: the times */
                i = scan_list(buf, i, n, &count, NULL, list, strokes == 0 ? first : last, TIME);
            else if (strokes == 0)
                i = scan_list(buf, i, n, &count, shoelace, list, NULL, kind);
            else
                i = scan_list(buf, i, n, &count, NULL, list, NULL, kind);
            if (i < 0 || (length >= 0 && count != length))
                return -1;
            length = count;
        }
        if (i >= n || buf[i++] != ']')
            return -1;
        if (strokes == 0) {
            drawing->area = shoelace_area(shoelace);
            memcpy(last, first, sizeof last);
        }
        strokes++;
        points += length;
        if (strokes > INT32_MAX || points > INT32_MAX || i >= n)
            return -1;
        if (buf[i] == ']') {
            drawing->strokes = (int32_t)strokes;
            drawing->points = (int32_t)points;
            drawing->duration = 0;
            if (lists == 3) {
                double duration = number_value(buf, last[2], last[3]) -
                                  number_value(buf, first[0], first[1]);
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
static int scan(Text t, Py_ssize_t start, Py_ssize_t end, int lists, Column *columns,
                Shoelace *shoelace)
{
    static const int32_t zero = 0;
    for (int text = 0; text < 3; text++)
        if (column_put(&columns[WORD_ENDS + text], &zero, sizeof zero))
            return -1;
    Py_ssize_t i = start;
    while (i < end && i < t.n) {
        Metadata meta;
        Drawing drawing = {0, 0, 0, 0.0};
        uint8_t shaped = 0;
        Py_ssize_t line_end = -1, drawing_start = scan_metadata(t, i, &meta);
        if (drawing_start >= 0) {
            Py_ssize_t after = scan_drawing(t, drawing_start, lists, &drawing, shoelace);
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
            drawing = (Drawing){0, 0, 0, 0.0};
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
                     column_put(&columns[SHAPED], &shaped, 1) |
                     column_put(&columns[AREAS], &drawing.area, 8);
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
    Shoelace shoelace;
    memset(&shoelace, 0, sizeof shoelace);
    Text text = {view.buf, view.len};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = scan(text, start < 0 ? 0 : start, end, lists, columns, &shoelace);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    free(shoelace.xs.data);
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

/* a + b = *hi + *lo exactly (Knuth's two-sum). */
static void two_sum(double a, double b, double *hi, double *lo)
{
    double s = a + b, v = s - a;
    *hi = s;
    *lo = (a - (s - v)) + (b - v);
}

/* a * a = *hi + *lo exactly (Dekker's product with Veltkamp's split; the build turns off
 * fused multiply-adds, and |a| < 2^995 here, so nothing overflows). */
static void two_square(double a, double *hi, double *lo)
{
    double c = 134217729.0 * a, high = c - (c - a), low = a - high; /* 2^27 + 1 */
    *hi = a * a;
    *lo = ((high * high - *hi) + 2.0 * high * low) + low * low;
}

/* The sign of the exact sum of n doubles (Shewchuk's non-overlapping partials, as Python's
 * math.fsum keeps them: the largest partial decides). */
static int sum_sign(const double *terms, int n)
{
    double partials[16];
    int count = 0;
    for (int t = 0; t < n; t++) {
        double x = terms[t];
        int kept = 0;
        for (int p = 0; p < count; p++) {
            double y = partials[p], hi, lo;
            if (fabs(x) < fabs(y)) {
                double swap = x;
                x = y;
                y = swap;
            }
            two_sum(x, y, &hi, &lo);
            if (lo != 0.0)
                partials[kept++] = lo;
            x = hi;
        }
        partials[kept++] = x;
        count = kept;
    }
    for (int p = count - 1; p >= 0; p--)
        if (partials[p] != 0.0)
            return partials[p] > 0 ? 1 : -1;
    return 0;
}

/* The sign of a^2 + b^2 - m^2 for the midpoint m = r + d / 2 (d a power of two, exact). */
static int beyond_midpoint(double a, double b, double r, double d)
{
    double terms[8];
    two_square(a, &terms[0], &terms[1]);
    two_square(b, &terms[2], &terms[3]);
    two_square(r, &terms[4], &terms[5]);
    terms[4] = -terms[4];
    terms[5] = -terms[5];
    terms[6] = -(r * d);        /* m^2 = r^2 + r d + d^2 / 4, each term exact */
    terms[7] = -(d * d * 0.25);
    return sum_sign(terms, 8);
}

/* sqrt(x^2 + y^2) correctly rounded (to nearest, ties to even): the same double on every
 * machine, which no C library promises for hypot. A first guess from the rounded sum is
 * within an ulp; the exact sign of a^2 + b^2 minus the square of each neighbouring midpoint
 * then settles the rounding. Error bound (0.5 ulp) tested against exact rationals in
 * tests/test_render.py. */
static double hypot_exact(double x, double y)
{
    double a = fabs(x), b = fabs(y);
    if (isinf(a) || isinf(b))
        return INFINITY;
    if (isnan(a) || isnan(b))
        return NAN;
    if (a < b) {
        double swap = a;
        a = b;
        b = swap;
    }
    if (b == 0.0 || b < ldexp(a, -27)) /* b^2 / 2a below half an ulp of a: a is the result */
        return a;
    int exponent;
    frexp(a, &exponent); /* scale to a in [0.5, 1): no overflow, no underflow of b^2 */
    a = ldexp(a, -exponent);
    b = ldexp(b, -exponent);
    double r = sqrt(a * a + b * b);
    for (;;) {
        double up = nextafter(r, INFINITY), down = nextafter(r, 0.0);
        uint64_t bits;
        memcpy(&bits, &r, sizeof bits);
        int odd = (int)(bits & 1), above = beyond_midpoint(a, b, r, up - r);
        if (above > 0 || (above == 0 && odd)) {
            r = up;
            continue;
        }
        int below = beyond_midpoint(a, b, down, r - down);
        if (below < 0 || (below == 0 && odd)) {
            r = down;
            continue;
        }
        return ldexp(r, exponent);
    }
}

static PyObject *py_hypot_exact(PyObject *self, PyObject *args)
{
    (void)self;
    double x, y;
    if (!PyArg_ParseTuple(args, "dd:hypot_exact", &x, &y))
        return NULL;
    return PyFloat_FromDouble(hypot_exact(x, y));
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
        double chord = hypot_exact(abx, aby), best = -1.0, best_cross = -1.0;
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
                distance = hypot_exact(rx, ry);
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

/* into[j] += row[j]: the pointers never overlap, so the compiler may vectorise. */
static void add_row(int64_t *restrict into, const uint8_t *restrict row, Py_ssize_t width)
{
    for (Py_ssize_t j = 0; j < width; j++)
        into[j] += row[j];
}

/* sums[groups[i]] += rows[i], for rows of `width` bytes and int64 sums. */
static PyObject *group_sums(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer rows, groups, sums;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*y*w*n", &rows, &groups, &sums, &width))
        return NULL;
    Py_ssize_t n = groups.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t count = width > 0 ? sums.len / (width * (Py_ssize_t)sizeof(int64_t)) : 0;
    int bad = width <= 0 || rows.len != n * width ||
              sums.len != count * width * (Py_ssize_t)sizeof(int64_t);
    if (!bad) {
        const uint8_t *row = rows.buf;
        const int64_t *group = groups.buf;
        int64_t *total = sums.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n && !bad; i++, row += width) {
            if (group[i] < 0 || group[i] >= count) {
                bad = 1;
                break;
            }
            add_row(total + group[i] * width, row, width);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&rows);
    PyBuffer_Release(&groups);
    PyBuffer_Release(&sums);
    if (bad)
        return PyErr_Format(PyExc_ValueError, "group_sums: rows must be n x width bytes, groups "
                                              "n int64 in [0, count), sums count x width int64");
    Py_RETURN_NONE;
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
            arc[i] = arc[i - 1] + hypot_exact(px[i] - px[i - 1], py[i] - py[i - 1]);
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
     "scan_lines(buffer, start, end, lists) -> 15 bytes objects: per line start (int64), "
     "length (int32), strokes (int32), points (int32), duration (int64), recognized (uint8), "
     "key_id (uint64), in Google's shape (uint8), first stroke's signed area (float64); word, "
     "countrycode and timestamp as Arrow offsets (int32, n + 1) and then their bytes. Lines "
     "not in Google's shape have zeros."},
    {"hypot_exact", py_hypot_exact, METH_VARARGS,
     "hypot_exact(x, y) -> sqrt(x * x + y * y) correctly rounded, the same on every machine "
     "(the lengths that simplify and rdp_keep measure)."},
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
    {"group_sums", group_sums, METH_VARARGS,
     "group_sums(rows, groups, sums, width): sums[groups[i]] += rows[i] for n rows of width "
     "bytes, groups n int64, sums (count, width) int64 (C-contiguous)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pipeline.native._native",
    .m_doc = "Compiled kernels: see pipeline/native/_native.c.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    return PyModule_Create(&module);
}
