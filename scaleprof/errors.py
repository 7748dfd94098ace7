"""Errors that the CLI turns into a one-line reason and an exit code."""


class ScaleprofError(Exception):
    """Bad input or a failure: the CLI prints the message on one line and exits 2."""

    exit_code = 2


class RegressionFound(ScaleprofError):
    """A check found a regression: exit 1."""

    exit_code = 1
