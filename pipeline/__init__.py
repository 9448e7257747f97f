"""quickdraw-pipeline: a reproducible DVC pipeline over Google's Quick, Draw! dataset."""

__version__ = "0.1.0"
