"""One exception type for bad input, so the CLI can print one clear line and exit non-zero."""


class PipelineError(Exception):
    """Bad input or environment: the message names the file, line or parameter and what to do."""


class ParamError(PipelineError):
    """A value in params.yaml is missing, of the wrong type or out of range."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"params.yaml: {key}: {message}")
        self.key = key
