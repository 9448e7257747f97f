"""Where every file lives: Google's bucket layout and this repository's data folders."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

RAW_DIR = Path("data/raw")
PROCESSED_DIR = Path("data/processed/drawings")
SAMPLE_PATH = Path("data/sample/sample.parquet")
MAP_PATH = Path(
    "data/report/map.parquet"
)  # the report's map as data (pipeline/reportkit/map_table.py)
PROFILE_DIR = Path("data/profile")  # profile.parquet, and categories/ (one file per category)
REPORTS_DIR = Path("reports")
DEMO_DIR = Path("data/demo")
GOOGLE_BASE_URL = "https://storage.googleapis.com/quickdraw_dataset/full"


def bitmap_object(category: str) -> str:
    """Object path of a category's 28x28 bitmaps, relative to the dataset's base URL."""
    return f"numpy_bitmap/{category}.npy"


#: File extension of each drawings format in Google's bucket.
EXTENSIONS = {"raw": "ndjson", "simplified": "ndjson", "binary": "bin"}


def drawings_object(drawings: str, category: str) -> str:
    """Object path of a category's drawings (raw, simplified or binary), relative to the base."""
    return f"{drawings}/{category}.{EXTENSIONS[drawings]}"


def manifest_object(category: str) -> str:
    """Where the download stage records a category, relative to the raw data folder."""
    return f"manifest/{category}.json"


def partition_dir(root: Path, category: str) -> Path:
    """Hive-style partition folder of one category, encoded the way pyarrow decodes it."""
    from urllib.parse import quote

    return root / f"category={quote(category, safe='')}"


PARTITION_FILE = "part-0.parquet"  # the one file of a category's partition


def partition_path(root: Path, category: str) -> Path:
    """The parquet file of one category in the processed store."""
    return partition_dir(root, category) / PARTITION_FILE


@cache
def google_categories() -> frozenset[str]:
    """The 345 category names of Google's dataset (names may contain spaces)."""
    text = resources.files("pipeline").joinpath("categories.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line)
