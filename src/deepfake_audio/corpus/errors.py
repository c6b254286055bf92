"""The one error of corpus building: its message says what to install or do."""


class CorpusError(Exception):
    """A source, tool or output folder makes the build impossible; the message says the fix."""
