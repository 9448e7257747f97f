"""What every part of one `download_category` call shares: policies, stop and progress."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from tqdm import tqdm

from pipeline.download.retry import RetryPolicy, _Stop


@dataclass(frozen=True)
class SlicePolicy:
    """When a whole file is fetched as concurrent byte ranges, and how many.

    Only HTTP sources that announce `Accept-Ranges: bytes` are sliced; a file below
    `threshold`, a `limit` download and a local source take one request. The file is cut into
    ranges of at most `max_slice` bytes (at least `connections` of them, none under
    `min_slice`). One connection starts alone, reading on from range to range as one stream
    would, with the hasher right behind it; after `probe` seconds, if the hasher waited for
    its bytes more than half that time and they came in small pieces (the link, not MD5 or
    a busy CPU, is the bottleneck), the other `connections - 1` start at ranges spread over
    the rest, each reading on (one request) until it meets a range another has; one that is
    done takes the first range left. On a fast link that keeps one stream's speed: ranges
    fetched all at once from the start left the hasher waiting for the first while the
    others arrived, 15% slower (benchmarks/bench_download.py). `probe=0` opens every
    connection at once.
    """

    connections: int = 8
    threshold: int = 16 << 20
    min_slice: int = 4 << 20
    max_slice: int = 8 << 20
    probe: float = 0.1

    def __post_init__(self) -> None:
        bad = self.connections < 1 or self.min_slice < 1 or self.max_slice < self.min_slice
        if bad or self.probe < 0:
            raise ValueError(f"invalid {self}")

    def ranges(self, size: int) -> list[tuple[int, int]]:
        """[start, end) of each slice of a `size`-byte file, in file order, 1 MiB aligned."""
        count = max(self.connections, -(-size // self.max_slice))
        count = max(1, min(count, size // self.min_slice))
        align = 1 << 20 if size >= count << 20 else 1
        bounds = [0, *(size * i // count // align * align for i in range(1, count)), size]
        return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


ONE_STREAM = SlicePolicy(connections=1, threshold=1 << 62)  # today's path: one request a file


@dataclass
class _Context:
    """What every part of one `download_category` call shares (it is thread-safe)."""

    retry: RetryPolicy
    slicing: SlicePolicy
    progress: bool
    on_bytes: Callable[[int], None] | None
    stop: _Stop

    def received(self, n: int) -> None:
        if self.on_bytes is not None and n:
            self.on_bytes(n)


def _bar(ctx: _Context, total: int, name: str, initial: int = 0) -> tqdm:
    return tqdm(
        total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
        desc=name, disable=not ctx.progress, leave=False,
    )  # fmt: skip
