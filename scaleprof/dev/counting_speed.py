"""How fast scaleprof counts, against its peers (`make bench` -> reports/performance.md).

Each measurement runs in a fresh process and reports its own peak resident memory (VmHWM: on Linux a
child's ru_maxrss can carry its parent's pre-exec peak). Results are
appended to a JSON-lines file as they finish; a rerun skips what is already there.

    python -m scaleprof.dev.counting_speed --out reports          # all cases
    python -m scaleprof.dev.counting_speed --one scaleprof resnet50 # one case, JSON on stdout
    python -m scaleprof.dev.counting_speed --cold                   # only the cold table, on stdout
    python -m scaleprof.dev.counting_speed --quick                  # every section, fewer rounds, on stdout

Two views. Warm: the median of repeated counts in one process after a warm-up (the counter's own cost).
Cold: one count per fresh process, end to end, as a user runs it: ``scaleprof profile MODEL --json`` for
scaleprof, and for each peer a plain script that builds the same model on CPU and counts it once; beside
them ``python -c "import torch"``, the floor every one of them pays. Medians of COLD_ROUNDS processes per
tool, the tools alternated round by round so that a busy spell of the machine falls on all of them.
First count: in a fresh process, the first count of a model built on meta against the next ones (what a
script counting once pays over a warm loop). HuggingFace: scaleprof on an ``hf:`` config on meta against a
bare meta forward of the same model and torch's FlopCounterMode. Each case in its own process; each time
is CPU time (user+sys of the process: the machine is shared) beside wall time. A summary puts issue 16's
targets 1, 2 and 5 side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..bench.memory import maxrss_bytes  # VmHWM: a child's ru_maxrss can carry its parent's peak

MODELS = {"resnet50": ("resnet50", 224), "efficientnet_b7@600": ("efficientnet_b7", 600)}
TOOLS = ("bare-meta", "scaleprof", "bare-cpu", "scaleprof-cpu", "fvcore", "thop", "torch")
REPEATS = 3
COLD_CASES = ("resnet50",)
COLD_TOOLS = ("import-torch", "scaleprof", "fvcore", "thop", "torch")
COLD_ROUNDS = 5
FIRST_CASES = ("resnet50", "efficientnet_b0", "vit_b_16")
HF_CASES = (("hf:llama", "causal-lm"), ("hf:t5", "seq2seq-lm"))
TARGETS = {"cold": 1.4, "first": 4.0, "hf": 1.2}   # issue 16: targets 1, 2 and 5


# --- a 7-billion-parameter decoder-only transformer (LLaMA-7B shapes), for the meta-device case -----------

class _RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class _DecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.attn_norm, self.ffn_norm = _RMSNorm(dim), _RMSNorm(dim)
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(dim, dim, bias=False) for _ in range(4))
        self.w1, self.w3 = nn.Linear(dim, hidden, bias=False), nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        h = self.attn_norm(x)
        q, k, v = (w(h).view(b, t, self.heads, d // self.heads).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.wo(a)
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Decoder(nn.Module):
    """Decoder-only transformer: token embedding, pre-norm layers (causal SDPA, SwiGLU), untied head."""

    def __init__(self, vocab=32000, dim=4096, layers=32, heads=32, hidden=11008):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(_DecoderLayer(dim, heads, hidden) for _ in range(layers))
        self.norm = _RMSNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, tokens):
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


def decoder_7b_macs(seq: int, vocab=32000, dim=4096, layers=32, heads=32, hidden=11008) -> int:
    """Hand count: per layer 4 d² projections and 3 d·h FFN products per token, attention 2·T²·d; the head."""
    per_layer = seq * (4 * dim * dim + 3 * dim * hidden) + 2 * seq * seq * dim
    return layers * per_layer + seq * dim * vocab


# --- one measurement, in its own process -----------------------------------------------------------------------

def _median_time(fn) -> float:
    fn()  # warm-up: first-call costs (imports, tracing caches) are not the steady state
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_one(tool: str, case: str) -> dict:
    import warnings

    from .. import zoo
    from ..counting import profile

    warnings.simplefilter("ignore")
    if case == "decoder_7b":
        with torch.device("meta"):
            model = Decoder()
        shape, dtype = (1, 128), torch.int64
    else:
        name, res = MODELS[case]
        model = zoo.build(name, device="meta" if tool in ("bare-meta", "scaleprof") else "cpu").eval()
        shape, dtype = (1, 3, res, res), torch.float32
    dev = "meta" if tool in ("bare-meta", "scaleprof") else "cpu"
    x = torch.zeros(shape, dtype=dtype, device=dev) if dtype == torch.int64 else torch.randn(shape, device=dev)
    macs = None
    if tool in ("bare-meta", "bare-cpu"):
        def fn():
            with torch.no_grad():
                model(x)
    elif tool in ("scaleprof", "scaleprof-cpu"):
        def fn():
            nonlocal macs
            macs = profile(model, [x], device=dev, quiet=True).totals.macs
    elif tool == "fvcore":
        from fvcore.nn import FlopCountAnalysis

        def fn():
            nonlocal macs
            f = FlopCountAnalysis(model, (x,))
            f.unsupported_ops_warnings(False)
            f.uncalled_modules_warnings(False)
            macs = int(f.total())
    elif tool == "thop":
        import thop

        def fn():  # thop removes its hooks and buffers itself; this process is thrown away anyway
            nonlocal macs
            macs = int(thop.profile(model, inputs=(x,), verbose=False)[0])
    elif tool == "torch":
        from torch.utils.flop_counter import FlopCounterMode

        def fn():
            nonlocal macs
            with torch.no_grad(), FlopCounterMode(display=False) as fc:
                model(x)
            macs = fc.get_total_flops() // 2
    else:
        raise ValueError(tool)
    seconds = _median_time(fn)
    return {"tool": tool, "case": case, "seconds": seconds, "macs": macs,
            "peak_rss_bytes": maxrss_bytes()}


# --- cold: one count per fresh process, end to end ------------------------------------------------------------

def _cli() -> list[str]:
    """The installed ``scaleprof`` command beside this interpreter (how a user runs it), else its main()."""
    exe = Path(sys.executable).with_name("scaleprof")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from scaleprof.cli import main; sys.exit(main())"]


def cold_command(tool: str, case: str) -> list[str]:
    if tool == "import-torch":
        return [sys.executable, "-c", "import torch"]
    name, res = MODELS[case]
    if tool == "scaleprof":
        return [*_cli(), "profile", name, "--input", f"1x3x{res}x{res}", "--json"]
    # a peer's plain script: the model built on CPU (from the zoo: torchvision may be absent), counted once
    head = (f"import warnings; warnings.simplefilter('ignore')\nimport torch\nfrom scaleprof.zoo import build\n"
            f"model = build({name!r}, device='cpu').eval()\nx = torch.randn(1, 3, {res}, {res})\n")
    return [sys.executable, "-c", head + _PEER_COUNT[tool]]


_PEER_COUNT = {
    "fvcore": ("from fvcore.nn import FlopCountAnalysis\nf = FlopCountAnalysis(model, (x,))\n"
               "f.unsupported_ops_warnings(False)\nf.uncalled_modules_warnings(False)\nprint(int(f.total()))\n"),
    "thop": "import thop\nprint(int(thop.profile(model, inputs=(x,), verbose=False)[0]))\n",
    "torch": ("from torch.utils.flop_counter import FlopCounterMode\n"
              "with torch.no_grad(), FlopCounterMode(display=False) as fc:\n    model(x)\n"
              "print(fc.get_total_flops() // 2)\n"),
}


def _run_cold(tool: str, case: str, timeout: float) -> dict:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cold_command(tool, case), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"timed out after {timeout:.0f} s"}
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        return {"status": "failed", "reason": ((p.stderr.strip().splitlines() or ["no output"])[-1])[:200]}
    return {"status": "ok", "seconds": seconds}


def measure_cold(log: Path | None = None, rounds: int = COLD_ROUNDS, timeout: float = 600) -> dict:
    """{(tool, case): [seconds of each round]}; with ``log`` (JSON lines) a rerun keeps the rounds done."""
    runs: dict[tuple, dict] = {}
    if log is not None and log.exists():
        text = log.read_text()
        if text and not text.endswith("\n"):      # a line cut off by a kill: the next record starts afresh
            with log.open("a") as f:
                f.write("\n")
        for line in text.splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            runs[(r["tool"], r["case"], r["round"])] = r
    for rnd in range(rounds):
        for case in COLD_CASES:
            for tool in COLD_TOOLS:
                if (tool, case, rnd) in runs:
                    continue
                print(f"[cold {rnd + 1}/{rounds}] {tool} on {case}", file=sys.stderr, flush=True)
                r = {"tool": tool, "case": case, "round": rnd, **_run_cold(tool, case, timeout)}
                runs[(tool, case, rnd)] = r
                if log is not None:
                    with log.open("a") as f:
                        f.write(json.dumps(r) + "\n")
    out: dict[tuple, list] = {}
    for (tool, case, _), r in sorted(runs.items()):
        out.setdefault((tool, case), []).append(r.get("seconds") if r.get("status") == "ok" else None)
    return out


def format_cold(cold: dict) -> str:
    lines = ["### Cold: one count per fresh process", "",
             "What a user waits for: a fresh process, end to end (interpreter start, imports, building the model, "
             f"counting it once). scaleprof is `scaleprof profile MODEL --json`; each peer a plain script building "
             f"the same model on CPU and counting it. Median of {max(map(len, cold.values()), default=0)} "
             "processes each, alternated.", ""]
    for case in COLD_CASES:
        floor = _median_ok(cold.get(("import-torch", case)))
        ours = _median_ok(cold.get(("scaleprof", case)))
        lines += [f"{case}:", "", "| run | median s | vs `import torch` | vs scaleprof |", "|---|---|---|---|"]
        for tool in COLD_TOOLS:
            m = _median_ok(cold.get((tool, case)))
            label = "`python -c \"import torch\"`" if tool == "import-torch" else tool
            if m is None:
                lines.append(f"| {label} | failed | | |")
                continue
            lines.append(f"| {label} | {m:.2f} | {m / floor:.2f}x | {m / ours:.2f}x |" if floor and ours
                         else f"| {label} | {m:.2f} | | |")
        if floor and ours:
            lines += ["", f"scaleprof cold / `import torch`: **{ours / floor:.2f}x** (target: within 1.4x)."]
        lines.append("")
    return "\n".join(lines)


# --- the first count in a fresh process, and HF configs against a bare meta forward ------------------------

def _times(fn, repeats: int = REPEATS) -> tuple[float, float]:
    """(median wall s, median CPU s) of ``repeats`` calls after none: the caller warms up if it wants to."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def measure_first(case: str) -> dict:
    """The first count of ``case`` (built on meta) in this process, then the warm median."""
    import warnings

    from .. import zoo
    from ..counting import profile

    warnings.simplefilter("ignore")
    model = zoo.build(case, device="meta").eval()
    x = torch.empty(model.default_input, device="meta")
    first = _times(lambda: profile(model, [x], quiet=True), 1)
    warm = _times(lambda: profile(model, [x], quiet=True))
    return {"case": case, "first_s": first[0], "first_cpu_s": first[1], "warm_s": warm[0], "warm_cpu_s": warm[1],
            "sympy": "sympy" in sys.modules, "dynamo": "torch._dynamo" in sys.modules}


def measure_hf(spec: str, task: str) -> dict:
    """scaleprof, a bare forward and FlopCounterMode on the same ``hf:`` model on meta (warm medians)."""
    import warnings

    from torch.utils.flop_counter import FlopCounterMode

    from ..counting import profile
    from ..counting.profile import _make_inputs, _named_inputs
    from ..spec import resolve_target

    warnings.simplefilter("ignore")
    target = resolve_target(spec, knobs={"task": task})
    meta = torch.device("meta")
    args, kwargs = _make_inputs(target.feeds, meta, None), _named_inputs(target.feeds, meta, None) or {}

    def bare():
        with torch.no_grad():
            target.model(*args, **kwargs)

    def flop_counter():
        with torch.no_grad(), FlopCounterMode(display=False):
            target.model(*args, **kwargs)

    out = {"case": spec, "task": task}
    for name, fn in (("bare", bare), ("scaleprof", lambda: profile(target, quiet=True)), ("torch", flop_counter)):
        fn()
        out[f"{name}_s"], out[f"{name}_cpu_s"] = _times(fn, 2 * REPEATS + 1)
    return out


def _run_json(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, "-m", "scaleprof.dev.counting_speed", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"timed out after {timeout:.0f} s"}
    if p.returncode != 0:
        return {"status": "failed", "reason": ((p.stderr.strip().splitlines() or ["no output"])[-1])[:200]}
    return json.loads(p.stdout.strip().splitlines()[-1]) | {"status": "ok"}


def measure_firsts(rounds: int = 3, timeout: float = 600) -> dict:
    """{case: [the record of each fresh process]}, the cases alternated round by round."""
    out: dict[str, list] = {c: [] for c in FIRST_CASES}
    for rnd in range(rounds):
        for case in FIRST_CASES:
            print(f"[first count {rnd + 1}/{rounds}] {case}", file=sys.stderr, flush=True)
            out[case].append(_run_json(["--first", case], timeout))
    return out


def measure_hfs(timeout: float = 600) -> dict:
    out = {}
    for spec, task in HF_CASES:
        print(f"[hf] {spec}", file=sys.stderr, flush=True)
        out[spec] = _run_json(["--hf", spec, task], timeout)
    return out


def _ok(records) -> list[dict]:
    return [r for r in records if r.get("status") == "ok"]


def first_ratio(records) -> float | None:
    """The median over fresh processes of first / warm CPU time."""
    ok = _ok(records)
    return statistics.median(r["first_cpu_s"] / r["warm_cpu_s"] for r in ok) if ok else None


def format_first(firsts: dict) -> str:
    lines = ["### First count in a fresh process", "",
             "A model built on meta and counted in a new process: the first count against the median of the next "
             f"{REPEATS} (CPU seconds; wall in brackets), the median over {len(next(iter(firsts.values()), []))} "
             "processes. What the first pays beyond the rest is torch's and scaleprof's first-time setup; "
             "`sympy`/`dynamo`: whether the process imported them (a count should not).", "",
             "| model | first s | warm s | first / warm | sympy, dynamo |", "|---|---|---|---|---|"]
    for case, records in firsts.items():
        ok = _ok(records)
        if not ok:
            reason = next((r.get("reason") for r in records), "not run")
            lines.append(f"| {case} | failed: {reason} | | | |")
            continue
        med = {k: statistics.median(r[k] for r in ok) for k in ("first_cpu_s", "first_s", "warm_cpu_s", "warm_s")}
        loaded = ", ".join(m for m in ("sympy", "dynamo") if any(r[m] for r in ok)) or "neither"
        lines.append(f"| {case} | {med['first_cpu_s']:.3f} ({med['first_s']:.3f}) | {med['warm_cpu_s']:.3f} "
                     f"({med['warm_s']:.3f}) | {first_ratio(records):.1f}x | {loaded} |")
    return "\n".join(lines + [""])


def hf_ratio(r: dict) -> float | None:
    return r["scaleprof_cpu_s"] / r["bare_cpu_s"] if r.get("status") == "ok" and r["bare_cpu_s"] else None


def format_hf(hfs: dict) -> str:
    lines = ["### HuggingFace configs on meta", "",
             "transformers' default config of each (Llama: 7B), 1x128 tokens, on meta: scaleprof's count against "
             "a bare forward of the same model and torch's FlopCounterMode around one (CPU seconds, wall in "
             f"brackets; warm medians of {2 * REPEATS + 1}).", "",
             "| config | bare forward s | scaleprof s | FlopCounterMode s | scaleprof / bare |", "|---|---|---|---|---|"]
    for spec, r in hfs.items():
        if r.get("status") != "ok":
            lines.append(f"| {spec} | failed: {r.get('reason', 'not run')} | | | |")
            continue
        cells = [f"{r[f'{t}_cpu_s']:.3f} ({r[f'{t}_s']:.3f})" for t in ("bare", "scaleprof", "torch")]
        lines.append(f"| {spec} | {' | '.join(cells)} | {hf_ratio(r):.2f}x |")
    return "\n".join(lines + [""])


def format_targets(cold: dict, firsts: dict, hfs: dict) -> str:
    """Issue 16's targets 1, 2 and 5, each measured figure beside its target."""
    rows = []
    for case in COLD_CASES:
        floor, ours = _median_ok(cold.get(("import-torch", case))), _median_ok(cold.get(("scaleprof", case)))
        got = ours / floor if floor and ours else None
        rows.append((f"1: `scaleprof profile {case} --json` / `import torch` (cold, wall)", got, TARGETS["cold"]))
    rows += [(f"2: first / warm count, {case} (CPU)", first_ratio(recs), TARGETS["first"])
             for case, recs in firsts.items()]
    rows += [(f"5: {spec} count / bare meta forward (CPU)", hf_ratio(r), TARGETS["hf"]) for spec, r in hfs.items()]
    lines = ["### Targets (issue 16)", "", "| target | measured | within | met |", "|---|---|---|---|"]
    for label, got, limit in rows:
        lines.append(f"| {label} | {'failed' if got is None else f'{got:.2f}x'} | {limit:g}x | "
                     f"{'' if got is None else 'yes' if got <= limit else 'no'} |")
    return "\n".join(lines + [""])


def _median_ok(values) -> float | None:
    ok = [v for v in values or () if v is not None]
    return statistics.median(ok) if ok else None


def _baseline_rss() -> int:
    """Peak RSS of a process that imports everything and builds nothing: what every case pays anyway."""
    code = ("import torch, scaleprof, scaleprof.zoo, scaleprof.counting;"
            "from scaleprof.dev.counting_speed import maxrss_bytes; print(maxrss_bytes())")
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def _run_child(tool: str, case: str, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "scaleprof.dev.counting_speed", "--one", tool, case]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"tool": tool, "case": case, "status": "failed", "reason": f"timed out after {timeout:.0f} s"}
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return {"tool": tool, "case": case, "status": "failed", "reason": last[:200]}
    return json.loads(p.stdout.strip().splitlines()[-1]) | {"status": "ok"}


def run_selfbench(out_dir: str | Path = "reports", timeout: float = 600) -> str:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = out / ".counting_speed.jsonl"
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a line cut off by a kill: that case runs again
                continue
            done[(r["tool"], r["case"])] = r
    plan = [(t, c) for c in MODELS for t in TOOLS] + [("scaleprof", "decoder_7b")]
    for i, (tool, case) in enumerate(plan, 1):
        if (tool, case) in done:
            continue
        print(f"[counting speed {i}/{len(plan)}] {tool} on {case}", file=sys.stderr, flush=True)
        r = _run_child(tool, case, timeout)
        done[(tool, case)] = r
        with log.open("a") as f:
            f.write(json.dumps(r) + "\n")
    cold = measure_cold(out / ".counting_cold.jsonl", timeout=timeout)
    firsts, hfs = measure_firsts(timeout=timeout), measure_hfs(timeout=timeout)
    return "\n".join([format_markdown(done, _baseline_rss()), format_targets(cold, firsts, hfs), format_cold(cold),
                      format_first(firsts), format_hf(hfs)])


def run_quick(timeout: float = 600) -> str:
    """Every view but the warm peer table, with the fewest rounds: to see the benchmark work (not a figure)."""
    cold = measure_cold(rounds=1, timeout=timeout)
    firsts, hfs = measure_firsts(rounds=1, timeout=timeout), measure_hfs(timeout=timeout)
    return "\n".join(["(quick run: one round each)", "", format_targets(cold, firsts, hfs), format_cold(cold),
                      format_first(firsts), format_hf(hfs)])


def format_markdown(done: dict, base_rss: int) -> str:
    lines = ["## Counting speed", "",
             "Warm: median of 3 timed runs after one warm-up, each tool in a fresh process; peak memory is the "
             "process's peak RSS minus that of a process that only imports torch and scaleprof "
             f"({base_rss / 2**20:.0f} MiB). scaleprof counts on meta tensors (no weights, no arithmetic); the "
             "peers need real tensors. MACs as each tool reports them (torch's FLOPs halved).", ""]
    for case in MODELS:
        lines += [f"### {case}", "", "| tool | seconds | vs scaleprof | extra peak memory | MACs reported |",
                  "|---|---|---|---|---|"]
        ours = done.get(("scaleprof", case), {}).get("seconds")
        for tool in TOOLS:
            r = done.get((tool, case), {})
            if r.get("status") != "ok":
                lines.append(f"| {tool} | failed: {r.get('reason', 'not run')} | | | |")
                continue
            ratio = f"{r['seconds'] / ours:.2f}x" if ours else ""
            mem = f"{max(0, r['peak_rss_bytes'] - base_rss) / 2**20:.0f} MiB"
            lines.append(f"| {tool} | {r['seconds']:.3f} | {ratio} | {mem} | "
                         f"{'' if r['macs'] is None else format(r['macs'], ',')} |")
        bare = done.get(("bare-meta", case), {}).get("seconds")
        if ours and bare:
            lines += ["", f"scaleprof / bare meta forward: **{ours / bare:.2f}x** (target: within 1.5x)."]
        peers = [done.get((t, case), {}).get("seconds") for t in ("fvcore", "thop", "torch")]
        peers = [p for p in peers if p]
        if ours and peers:
            lines.append(f"Fastest peer / scaleprof: **{min(peers) / ours:.1f}x** "
                         f"(geometric mean over peers {math.exp(statistics.mean(math.log(p / ours) for p in peers)):.1f}x).")
        lines.append("")
    r = done.get(("scaleprof", "decoder_7b"), {})
    lines += ["### 7-billion-parameter decoder (LLaMA-7B shapes, 128 tokens) on meta", ""]
    if r.get("status") == "ok":
        lines.append(f"scaleprof: {r['seconds']:.2f} s, extra peak memory "
                     f"{max(0, r['peak_rss_bytes'] - base_rss) / 2**20:.0f} MiB, {r['macs']:,} MACs "
                     f"(hand count {decoder_7b_macs(128):,}). Targets: under 10 s and 2 GB. No peer can load "
                     "it: its weights alone are 27 GB in float32.")
    else:
        lines.append(f"failed: {r.get('reason', 'not run')}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--one", nargs=2, metavar=("TOOL", "CASE"))
    p.add_argument("--cold", action="store_true", help="only the cold table (no log kept), on stdout")
    p.add_argument("--first", metavar="MODEL", help="one first-count case, JSON on stdout")
    p.add_argument("--hf", nargs=2, metavar=("SPEC", "TASK"), help="one HuggingFace case, JSON on stdout")
    p.add_argument("--quick", action="store_true", help="every section but the warm table, one round, on stdout")
    p.add_argument("--out", default="reports")
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return 0
    if args.first or args.hf:
        print(json.dumps(measure_first(args.first) if args.first else measure_hf(*args.hf)))
        return 0
    if args.quick:
        print(run_quick())
        return 0
    if args.cold:
        cold = measure_cold()
        print(json.dumps({f"{t} {c}": v for (t, c), v in cold.items()}), file=sys.stderr)
        print(format_cold(cold))
        return 0
    md = run_selfbench(args.out)
    (Path(args.out) / "counting-speed.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
