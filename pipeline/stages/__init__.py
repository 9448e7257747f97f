"""The pipeline's stages, one module per dvc.yaml stage and named as the stage is:
each a thin layer (parameters in, files out) over the libraries beside this package."""
