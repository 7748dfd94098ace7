"""Benchmark results: rows that follow the `bench --json` contract, and the result that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field

# The contract's row keys, in order (docs: design.md, `bench --json`); `samples_ms` only when asked.
ROW_KEYS = ("runtime", "device", "dtype", "batch_size", "median_ms", "mean_ms", "min_ms", "iqr_ms", "p90_ms",
            "p99_ms", "ci95_ms", "samples", "throughput", "cold_ms", "peak_memory_bytes", "mfu", "status", "reason")


def _fill(row, summary, samples_ms: list[float]) -> None:
    """What every row takes from its samples' summary: median, CI, sample count, throughput, the samples."""
    row.median_ms = summary.median
    row.ci95_ms = list(summary.ci95) if summary.ci95 is not None else None
    row.samples = summary.n
    row.throughput = row.batch_size / (summary.median * 1e-3) if summary.median > 0 else None
    row.samples_ms = list(samples_ms)


@dataclass
class RunResult:
    """One (runtime, device, dtype, batch size) measurement. Times in ms; throughput in samples/s."""

    runtime: str
    device: str
    dtype: str
    batch_size: int
    status: str = "ok"                 # ok | failed
    reason: str | None = None
    median_ms: float | None = None
    mean_ms: float | None = None
    min_ms: float | None = None
    iqr_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    ci95_ms: list[float] | None = None
    samples: int = 0                    # how many samples (blocks) the statistics rest on
    throughput: float | None = None     # batch_size / median, samples per second
    cold_ms: float | None = None        # setup (export, session) + first call (compilation)
    peak_memory_bytes: int | None = None
    mfu: float | None = None            # counted FLOPs per second over the device's peak (bench/mfu.py)
    samples_ms: list[float] | None = field(default=None, repr=False)
    details: dict = field(default_factory=dict, repr=False)  # stop reason, blocks, memory breakdown, ...

    def to_dict(self, samples: bool = False) -> dict:
        d = {k: getattr(self, k) for k in ROW_KEYS}
        if samples:
            d["samples_ms"] = self.samples_ms
        return d

    def fill(self, summary, samples_ms: list[float]) -> None:
        _fill(self, summary, samples_ms)
        self.mean_ms = summary.mean
        self.min_ms = summary.min
        self.iqr_ms = summary.iqr
        self.p90_ms = summary.p90
        self.p99_ms = summary.p99


@dataclass
class TrainResult:
    """Training-step time per phase (forward, loss, backward, optimizer) and in total."""

    runtime: str
    device: str
    dtype: str
    batch_size: int
    optimizer: str
    status: str = "ok"
    reason: str | None = None
    loss: str | None = None
    median_ms: float | None = None
    ci95_ms: list[float] | None = None
    samples: int = 0
    throughput: float | None = None
    cold_ms: float | None = None
    phases: dict | None = None          # {phase: {median_ms, ci95_ms, share}}
    peak_memory_bytes: int | None = None
    memory: dict | None = None
    memory_estimate: dict | None = None  # counting.memory's estimate (peak_bytes and its parts), not run
    mfu: float | None = None             # the step's forward + backward model FLOPs per second over the peak
    hfu: float | None = None             # the same with checkpointed recomputation counted (hardware FLOPs)
    stop_reason: str | None = None
    samples_ms: list[float] | None = field(default=None, repr=False)

    def fill(self, summary, samples_ms: list[float]) -> None:
        """Median, CI, samples and throughput from the summary of the total step times."""
        _fill(self, summary, samples_ms)

    def to_dict(self, samples: bool = False) -> dict:
        d = {k: getattr(self, k) for k in ("runtime", "device", "dtype", "batch_size", "optimizer", "loss",
                                          "median_ms", "ci95_ms", "samples", "throughput", "cold_ms", "phases",
                                          "peak_memory_bytes", "memory", "stop_reason", "status", "reason",
                                          "mfu", "hfu", "memory_estimate")}
        if samples:
            d["samples_ms"] = self.samples_ms
        return d


@dataclass
class BenchResult:
    model: str
    inputs: list[str]
    env: dict
    results: list[RunResult]
    settings: dict = field(default_factory=dict)
    train: list[TrainResult] | None = None
    attribution: object | None = None   # attribution.Attribution
    roofline: object | None = None      # roofline.Roofline
    include_samples: bool = False
    notes: list[str] = field(default_factory=list)  # parts that could not be done, one line each

    def ok(self) -> bool:
        return any(r.status == "ok" for r in self.results) or any(t.status == "ok" for t in self.train or [])

    def to_dict(self) -> dict:
        d = {"model": self.model, "inputs": self.inputs, "env": self.env,
             "results": [r.to_dict(self.include_samples) for r in self.results],
             "details": [{"runtime": r.runtime, "device": r.device, "batch_size": r.batch_size, **r.details}
                         for r in self.results],
             "settings": self.settings, "notes": self.notes}
        if self.train is not None:
            d["train"] = [t.to_dict(self.include_samples) for t in self.train]
        if self.attribution is not None:
            d["attribution"] = self.attribution.to_dict()
        if self.roofline is not None:
            d["roofline"] = self.roofline.to_dict()
        return d

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.results])
