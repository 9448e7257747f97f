"""The download library: fetch one category's bitmaps and drawings, verified, resumable and atomic
(the stage, `pipeline/stages/download.py`, plans the categories and reports).

Every source (Google's bucket over HTTP(S), a mirror folder, a `file://` URL, the bundled demo
data) goes through one transport interface, `stat` + `open(offset)`, so streaming,
verification, resume, `limit` and the atomic rename are one code path, tested once. A large
file from an HTTP source that honours Range is fetched as several concurrent byte ranges
(slices) written into the one `.part`, while one hasher thread reads it back in order behind
them: a cloud endpoint caps each connection, not the link, and MD5 cannot be split.

One module a concern: `transport` (the sources), `retry` (policy, kinds of failure, stop),
`digest` (the hashes), `plan` (which bytes: `limit`), `stream` (one request a file), `sliced`
(concurrent ranges and their sidecar), `category` (one category's files and manifest).
"""

from pipeline.download.category import download_category
from pipeline.download.context import ONE_STREAM, SlicePolicy
from pipeline.download.retry import Interrupted, RetryPolicy
from pipeline.download.retry import _DiskFullError as DiskFull
from pipeline.download.transport import HttpTransport, LocalTransport, Transport, make_transport

__all__ = [
    "ONE_STREAM",
    "DiskFull",
    "HttpTransport",
    "Interrupted",
    "LocalTransport",
    "RetryPolicy",
    "SlicePolicy",
    "Transport",
    "download_category",
    "make_transport",
]
