"""The bundled demo data's generator (`python -m pipeline demo`), apart from the
pipeline's code."""
