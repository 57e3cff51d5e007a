"""Errors that reach the user.

Every error the toolkit raises on bad input is a ``SemifreddoError`` whose text is one line that
says what is wrong and, where it can, what to do. The command line prints it and exits with
``exit_code`` (2 for bad input, unless a subclass says otherwise). This module is imported by the
board-side code, so it uses the standard library only.
"""


class SemifreddoError(Exception):
    """Bad input or an unmet precondition, reported as one line."""

    exit_code = 2

    def __init__(self, message: str):
        # Keep messages to one line whatever the caller passes in.
        super().__init__(" ".join(str(message).split()))


class SpecError(SemifreddoError):
    """A model spec is malformed. The message starts with the offending field's path."""

    def __init__(self, field: str, problem: str, source: str | None = None):
        self.field = field
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {problem}")


class WeightSetError(SemifreddoError):
    """A weight-set file is corrupt, or made for another core or register map."""


class DoesNotFitError(SemifreddoError):
    """The IP is estimated to need more of a board's resources than it has (with margin)."""

    exit_code = 1


class ToolMissingError(SemifreddoError):
    """An external tool (Vitis HLS, Vivado, Yosys, ...) is not installed or not on PATH."""


class DataError(SemifreddoError):
    """A user's data set (an .npz or a folder of images) cannot be used as given."""
