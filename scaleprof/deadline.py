"""A wall-clock limit on a run (``--timeout SECONDS``): when it passes, `TimedOut` is raised in the main
thread, naming the phase the run was in (build, count, measure, ...).

The phase is read from the stack at that moment (the innermost scaleprof module on it), so no room has to
report where it is. `TimedOut` derives from BaseException, like KeyboardInterrupt: the ``except Exception``
that turns a failed row or candidate into a recorded failure must not swallow the limit of the whole run.
Child processes are ended by their owners on the way out (subprocess.run kills its child; the scale
executor's pool terminates its workers).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading

# the innermost of these on the stack names the phase (more specific prefixes first)
_PHASES = (
    ("scaleprof.spec", "build"), ("scaleprof.zoo", "build"), ("scaleprof.shapes", "build"),
    ("scaleprof.layers", "build"), ("scaleprof.counting", "count"), ("scaleprof.bench.memory", "measure memory"),
    ("scaleprof.bench.train", "measure training"), ("scaleprof.bench", "measure"), ("scaleprof.predict", "predict"),
    ("scaleprof.scaling", "search"), ("scaleprof.gate", "check"), ("scaleprof.report", "report"),
)


class TimedOut(BaseException):
    """The run passed its --timeout; the CLI prints the message on one line and exits 2."""

    exit_code = 2


def phase_of(frame) -> str:
    """The phase the innermost scaleprof frame at or above ``frame`` belongs to ("run" when none does)."""
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        for prefix, phase in _PHASES:
            if name == prefix or name.startswith(prefix + "."):
                return phase
        frame = frame.f_back
    return "run"


@contextlib.contextmanager
def deadline(seconds: float | None, what: str = "the run"):
    """Raise TimedOut if the body runs longer than ``seconds`` (None or 0: no limit). Works on the main
    thread of a Unix process (SIGALRM); elsewhere the body runs without a limit."""
    usable = (seconds and math.isfinite(seconds) and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expired(signum, frame):
        raise TimedOut(f"{what} timed out after {seconds:g} s (--timeout) while in phase {phase_of(frame)!r}")

    import time

    old = signal.signal(signal.SIGALRM, expired)
    outer, _ = signal.getitimer(signal.ITIMER_REAL)    # an alarm someone else set (a test runner's)
    t0 = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer:   # theirs again, less the time this took (at once if it passed meanwhile)
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - t0), 1e-3))
