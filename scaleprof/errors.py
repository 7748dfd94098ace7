"""Errors that the CLI turns into a one-line reason and an exit code."""


class ScaleprofError(Exception):
    """Bad input or a failure: the CLI prints the message on one line and exits 2. (A check that finds a
    regression is a result, not an error: `check` returns exit code 1 itself.)"""

    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run that finished part of its work: ``partial`` is the result of that part (the CLI
    prints it, then exits 130)."""

    def __init__(self, partial):
        super().__init__("interrupted")
        self.partial = partial


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line: its type and the first line of its message (our own errors without the
    type), terminal colours removed, out-of-memory named as such; what every reason and stderr line uses."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(exc, ScaleprofError):
        return first[:limit]
    if isinstance(exc, MemoryError) or "out of memory" in first.lower():
        return f"out of memory: {type(exc).__name__}: {first}"[:limit]
    return f"{type(exc).__name__}: {first}"[:limit]
