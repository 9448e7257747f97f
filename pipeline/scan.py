"""Compiled scanner for Google's drawing lines (numba): validate strokes without decoding them.

Decoding a raw line with a JSON parser builds a Python object per coordinate (about a
thousand per drawing); this scanner walks the bytes once instead, checking the structure
strictly (drawing = strokes of k lists of numbers, the lists of a stroke equally long, the
line closed right after the drawing) and counting strokes and points. The metadata before the
drawing is read in Google's key order (plain strings, a 64-bit key_id) and its texts copied out
as Arrow buffers. Lines that do not take this shape (another key order, white space, escapes,
a damaged line) are flagged for the complete JSON parser.
"""

from __future__ import annotations

import numpy as np
from numba import njit

DRAWING_KEY = np.frombuffer(b',"drawing":', dtype=np.uint8)
#: 1 for a digit, 2 for the other characters of a JSON number, 0 for anything else.
NUMBER_CLASS = np.zeros(256, np.uint8)
NUMBER_CLASS[np.frombuffer(b"0123456789", np.uint8)] = 1
NUMBER_CLASS[np.frombuffer(b".-+eE", np.uint8)] = 2

_OPEN, _CLOSE, _COMMA, _BRACE, _NEWLINE = 91, 93, 44, 125, 10


@njit(cache=True, nogil=True, boundscheck=False)
def _value(buf, start, end):  # pragma: no cover - compiled
    """The number in buf[start:end] (already checked to hold only number characters)."""
    i = start
    negative = buf[i] == 45
    if negative:
        i += 1
    value = 0.0
    while i < end and 48 <= buf[i] <= 57:
        value = value * 10.0 + (buf[i] - 48)
        i += 1
    if i < end and buf[i] == 46:
        i += 1
        scale = 0.1
        while i < end and 48 <= buf[i] <= 57:
            value += (buf[i] - 48) * scale
            scale *= 0.1
            i += 1
    if i < end and (buf[i] == 101 or buf[i] == 69):
        i += 1
        exponent_negative = buf[i] == 45
        if buf[i] == 45 or buf[i] == 43:
            i += 1
        exponent = 0
        while i < end and 48 <= buf[i] <= 57:
            exponent = exponent * 10 + (buf[i] - 48)
            i += 1
        value *= 10.0 ** (-exponent if exponent_negative else exponent)
    return -value if negative else value


@njit(cache=True, nogil=True, boundscheck=False)
def _drawing(buf, i, n, lists):  # pragma: no cover - compiled
    """Check the drawing opening at buf[i]; (end, strokes, points, duration) or end = -1."""
    strokes = 0
    points = 0
    first_time = 0.0
    last_start = 0
    last_end = 0
    if i >= n or buf[i] != _OPEN:
        return -1, 0, 0, 0
    i += 1
    while True:
        if i >= n or buf[i] != _OPEN:
            return -1, 0, 0, 0
        i += 1
        length = -1
        for index in range(lists):
            if index > 0:
                if i >= n or buf[i] != _COMMA:
                    return -1, 0, 0, 0
                i += 1
            if i >= n or buf[i] != _OPEN:
                return -1, 0, 0, 0
            i += 1
            count = 0
            while True:
                start = i
                digits = 0
                while i < n:
                    kind = NUMBER_CLASS[buf[i]]
                    if kind == 0:
                        break
                    digits += kind & 1
                    i += 1
                if digits == 0 or i >= n:
                    return -1, 0, 0, 0
                if index == 2:  # raw: the times
                    if strokes == 0 and count == 0:
                        first_time = _value(buf, start, i)
                    last_start = start
                    last_end = i
                count += 1
                separator = buf[i]
                i += 1
                if separator == _CLOSE:
                    break
                if separator != _COMMA:
                    return -1, 0, 0, 0
            if length >= 0 and count != length:
                return -1, 0, 0, 0
            length = count
        if i >= n or buf[i] != _CLOSE:
            return -1, 0, 0, 0
        i += 1
        strokes += 1
        points += length
        if i >= n:
            return -1, 0, 0, 0
        separator = buf[i]
        i += 1
        if separator == _CLOSE:
            duration = 0
            if lists == 3:
                duration = np.int64(_value(buf, last_start, last_end) - first_time)
            return i, strokes, points, duration
        if separator != _COMMA:
            return -1, 0, 0, 0


_FIELDS = (b'{"word":"', b'","countrycode":"', b'","timestamp":"', b'","recognized":')
WORD_LEAD, COUNTRY_LEAD, TIME_LEAD, RECOGNIZED_LEAD = (np.frombuffer(f, np.uint8) for f in _FIELDS)
KEY_LEAD = np.frombuffer(b',"key_id":"', np.uint8)
TRUE, FALSE = np.frombuffer(b"true", np.uint8), np.frombuffer(b"false", np.uint8)


@njit(cache=True, nogil=True, boundscheck=False)
def _literal(buf, i, n, text):  # pragma: no cover - compiled
    """Index after `text` if buf[i:] starts with it, else -1."""
    if i + text.shape[0] > n:
        return -1
    for q in range(text.shape[0]):
        if buf[i + q] != text[q]:
            return -1
    return i + text.shape[0]


@njit(cache=True, nogil=True, boundscheck=False)
def _string(buf, i, n):  # pragma: no cover - compiled
    """Index of the closing quote of a plain string (no escapes, no control bytes), or -1."""
    while i < n:
        byte = buf[i]
        if byte == 34:
            return i
        if byte == 92 or byte < 32:
            return -1
        i += 1
    return -1


@njit(cache=True, nogil=True, boundscheck=False)
def _metadata(buf, i, n, spans):  # pragma: no cover - compiled
    """Google's metadata in Google's key order; fills spans, returns (end, recognized, key_id).

    end is the offset of the drawing key, or -1 when the line has another shape.
    """
    leads = (WORD_LEAD, COUNTRY_LEAD, TIME_LEAD)
    for field in range(3):
        i = _literal(buf, i, n, leads[field])
        if i < 0:
            return -1, False, np.uint64(0)
        close = _string(buf, i, n)
        if close < 0:
            return -1, False, np.uint64(0)
        spans[2 * field] = i
        spans[2 * field + 1] = close
        i = close
    i = _literal(buf, i, n, RECOGNIZED_LEAD)
    if i < 0:
        return -1, False, np.uint64(0)
    recognized = True
    after = _literal(buf, i, n, TRUE)
    if after < 0:
        recognized = False
        after = _literal(buf, i, n, FALSE)
        if after < 0:
            return -1, False, np.uint64(0)
    i = _literal(buf, after, n, KEY_LEAD)
    if i < 0:
        return -1, False, np.uint64(0)
    key_id = np.uint64(0)
    digits = 0
    while i < n and 48 <= buf[i] <= 57 and digits < 19:  # 19 digits always fit in 64 bits
        key_id = key_id * np.uint64(10) + np.uint64(buf[i] - 48)
        digits += 1
        i += 1
    if digits == 0 or i >= n or buf[i] != 34:
        return -1, False, np.uint64(0)
    i += 1
    if _literal(buf, i, n, DRAWING_KEY) < 0:
        return -1, False, np.uint64(0)
    return i, recognized, key_id


@njit(cache=True, nogil=True, boundscheck=False)
def _grow(array, size):  # pragma: no cover - compiled
    """`array` with room for at least `size` items (doubling, keeping the contents)."""
    if size <= array.shape[0]:
        return array
    grown = np.empty(max(size, 2 * array.shape[0]), array.dtype)
    grown[: array.shape[0]] = array
    return grown


@njit(cache=True, nogil=True, boundscheck=False)
def scan_lines(buf, start, end, lists):  # pragma: no cover - compiled
    """Every line that begins in buf[start:end].

    Returns per line: start, length, [strokes, points, duration], recognized, key_id, whether
    it has Google's shape; and the word, countrycode and timestamp texts as Arrow-style
    offsets + bytes (empty for lines of another shape).
    """
    n = buf.shape[0]
    capacity = 1024
    starts = np.empty(capacity, np.int64)
    lengths = np.empty(capacity, np.int64)
    stats = np.zeros((capacity, 3), np.int64)
    recognized = np.zeros(capacity, np.bool_)
    key_ids = np.zeros(capacity, np.uint64)
    shaped = np.zeros(capacity, np.bool_)
    text_ends = np.zeros((3, capacity + 1), np.int32)
    texts = [np.empty(1 << 16, np.uint8) for _ in range(3)]
    used = np.zeros(3, np.int64)
    spans = np.zeros(6, np.int64)
    m = 0
    i = start
    while i < end and i < n:
        if m == capacity:
            capacity *= 2
            starts = _grow(starts, capacity)
            lengths = _grow(lengths, capacity)
            recognized = _grow(recognized, capacity)
            key_ids = _grow(key_ids, capacity)
            shaped = _grow(shaped, capacity)
            more_stats = np.zeros((capacity, 3), np.int64)
            more_stats[:m] = stats[:m]
            stats = more_stats
            more_ends = np.zeros((3, capacity + 1), np.int32)
            more_ends[:, : m + 1] = text_ends[:, : m + 1]
            text_ends = more_ends
        line_end = -1
        cut, flag, key_id = _metadata(buf, i, n, spans)
        if cut >= 0:
            after, strokes, points, duration = _drawing(buf, cut + DRAWING_KEY.shape[0], n, lists)
            closed = 0 < after < n and buf[after] == _BRACE
            if closed and (after + 1 == n or buf[after + 1] == _NEWLINE):
                line_end = after + 1
                shaped[m] = True
                stats[m, 0] = strokes
                stats[m, 1] = points
                stats[m, 2] = duration
                recognized[m] = flag
                key_ids[m] = key_id
                for field in range(3):
                    size = spans[2 * field + 1] - spans[2 * field]
                    texts[field] = _grow(texts[field], used[field] + size)
                    texts[field][used[field] : used[field] + size] = buf[
                        spans[2 * field] : spans[2 * field + 1]
                    ]
                    used[field] += size
        if line_end < 0:  # not Google's shape: the complete parser will look at it
            line_end = i
            while line_end < n and buf[line_end] != _NEWLINE:
                line_end += 1
        for field in range(3):
            text_ends[field, m + 1] = used[field]
        starts[m] = i
        lengths[m] = line_end - i
        m += 1
        i = line_end + 1
    return (
        starts[:m],
        lengths[:m],
        stats[:m],
        recognized[:m],
        key_ids[:m],
        shaped[:m],
        text_ends[:, : m + 1].copy(),
        texts[0][: used[0]].copy(),
        texts[1][: used[1]].copy(),
        texts[2][: used[2]].copy(),
    )
