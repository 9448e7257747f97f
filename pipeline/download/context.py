"""What every part of one `download_category` call shares: policies, stop and progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tqdm import tqdm

from pipeline.download.retry import RetryPolicy, _Stop

if TYPE_CHECKING:
    from pipeline.download.sliced import SlicePolicy


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
