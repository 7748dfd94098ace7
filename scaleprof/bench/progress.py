"""What bench says while it works: a ticker for the long silent steps, and what a run will cost.

torch.compile's first call, an ONNX export and an ONNX Runtime session can each take minutes with nothing
printed; `ticker` prints the elapsed time every few seconds while such a step runs. `RunPlan` estimates a
bench before it starts (rows × max-time, plus each runtime's setup guess and the memory subprocesses) and,
with --total-time, decides before each row whether it still fits: a row that does not is skipped, with the
reason, instead of running past the bound.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass, field

TICK_EVERY_S = 5.0
MEMORY_CHILD_GUESS_S = 5.0   # a fresh interpreter importing torch and loading the model, twice (run, baseline)


@contextlib.contextmanager
def ticker(what: str, *, enabled: bool = True, every: float = TICK_EVERY_S, clock=time.perf_counter):
    """While the block runs, a line on stderr every `every` seconds (``  compiling ...: 15 s``), and how long
    it took at the end when it ran long enough to tick. Disabled: nothing at all."""
    if not enabled:
        yield
        return
    stop = threading.Event()
    t0 = clock()

    def tick() -> None:
        while not stop.wait(every):
            print(f"  {what}: {clock() - t0:.0f} s", file=sys.stderr, flush=True)

    thread = threading.Thread(target=tick, name="scaleprof-ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        took = clock() - t0
        if took >= every:
            print(f"  {what}: done in {took:.0f} s", file=sys.stderr, flush=True)


@dataclass
class RunPlan:
    """A bench's cost, estimated up front, and the --total-time bound checked before each row.

    A row costs at most `max_time` of measurement, plus its runtime's setup (`Runtime.setup_guess_s`, replaced
    by the setup time a row of that runtime really took once one has run), plus the memory subprocesses."""

    max_time: float
    memory: bool
    total_time: float | None = None
    clock: object = time.perf_counter
    t_start: float = field(default=0.0)
    seen_setup: dict = field(default_factory=dict)

    def __post_init__(self):
        self.t_start = self.clock()

    def row_cost(self, rt=None, *, memory: bool | None = None) -> float:
        setup = 0.0 if rt is None else self.seen_setup.get(rt.label(), getattr(rt, "setup_guess_s", 0.0))
        child = MEMORY_CHILD_GUESS_S if (self.memory if memory is None else memory) else 0.0
        return self.max_time + setup + child

    def saw_setup(self, rt, seconds: float) -> None:
        self.seen_setup[rt.label()] = seconds

    def describe(self, rts, n_inference: int, n_train: int) -> str:
        """One line: how many rows, what they cost at most, and the bound if there is one."""
        per_rt = n_inference // max(1, len(rts))
        total = sum(self.row_cost(rt) for rt in rts) * per_rt + n_train * self.row_cost()
        guesses = [f"{rt.label()} setup ~{rt.setup_guess_s:g} s a row (a guess)" for rt in rts
                   if getattr(rt, "setup_guess_s", 0)]
        parts = [f"{n_inference + n_train} row(s) x up to {self.max_time:g} s"]
        parts += guesses
        if self.memory:
            parts.append(f"a memory subprocess per row (~{MEMORY_CHILD_GUESS_S:g} s)")
        line = f"bench: {', '.join(parts)}: about {_words(total)} in all"
        if self.total_time is not None:
            line += f"; --total-time {self.total_time:g} s skips the rows that no longer fit"
        return line

    def skip_reason(self, cost_s: float) -> str | None:
        """Why a row costing about `cost_s` seconds is skipped (None: it fits, or there is no bound)."""
        if self.total_time is None:
            return None
        used = self.clock() - self.t_start
        if used + cost_s <= self.total_time:
            return None
        return (f"skipped: --total-time {self.total_time:g} s: {used:.0f} s used, this row needs about "
                f"{cost_s:.0f} s more")


def _words(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
