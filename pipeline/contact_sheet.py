"""A PNG contact sheet of sampled drawings, one row per country group, for places where a
picture travels better than HTML (a CI summary, a README). Same inputs, same bytes: no
timestamps or metadata in the PNG, and Pillow's own bundled font and zlib."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.reportkit.drawings import OTHER, SIDE, Drawings, country_name

SCALE = 2  # screen pixels per bitmap pixel
GAP = 4
MARGIN = 12
LABEL_WIDTH = 210
ROW_HEIGHT = SIDE * SCALE + GAP
LINE_HEIGHT = 18
PER_GROUP = 20


def pick(drawings: Drawings, group: int, count: int) -> np.ndarray:
    """Up to `count` drawings of a group, taking the categories in turn (sample order within)."""
    members = np.flatnonzero(drawings.group == group)
    categories = drawings.category[members]
    rank = np.zeros(len(members), np.int64)
    for category in np.unique(categories):
        where = categories == category
        rank[where] = np.arange(where.sum())
    order = np.lexsort((categories, rank))
    return members[order[:count]]


def _label(drawings: Drawings, group: int) -> str:
    name = drawings.groups[group]
    total = int((drawings.group == group).sum())
    if name == OTHER:
        return f"other countries ({total:,})"
    return f"{name} {country_name(name)}"[:22] + f" ({total:,})"


def render(
    drawings: Drawings,
    colours: Sequence[str],
    heading: Sequence[str],
    per_group: int = PER_GROUP,
) -> Image.Image:
    """The sheet: `heading` lines, then per country group a swatch, a label and its drawings."""
    font = ImageFont.load_default(size=13)
    width = 2 * MARGIN + LABEL_WIDTH + per_group * (SIDE * SCALE + GAP)
    top = MARGIN + LINE_HEIGHT * len(heading) + GAP
    height = top + ROW_HEIGHT * max(len(drawings.groups), 1) + MARGIN
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for line, text in enumerate(heading):
        draw.text((MARGIN, MARGIN + line * LINE_HEIGHT), text, fill="#222222", font=font)
    for group, colour in enumerate(colours):
        y = top + group * ROW_HEIGHT
        draw.rectangle((MARGIN, y + 20, MARGIN + 12, y + 32), fill=colour)
        draw.text((MARGIN + 18, y + 19), _label(drawings, group), fill="#222222", font=font)
        for slot, index in enumerate(pick(drawings, group, per_group)):
            paper = Image.fromarray(255 - drawings.bitmaps[index], mode="L")
            tile = paper.resize((SIDE * SCALE, SIDE * SCALE), Image.Resampling.NEAREST)
            x = MARGIN + LABEL_WIDTH + slot * (SIDE * SCALE + GAP)
            sheet.paste(tile, (x, y))
            draw.rectangle(
                (x - 1, y - 1, x + SIDE * SCALE, y + SIDE * SCALE), outline="#dddddd", width=1
            )
    return sheet


def png_bytes(image: Image.Image) -> bytes:
    """PNG without metadata (no time, no text chunks): identical bytes for identical pixels."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()
