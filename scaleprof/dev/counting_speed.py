"""How fast scaleprof counts, against its peers (`make bench` -> reports/performance.md).

Each measurement runs in a fresh process and reports its own peak resident memory (VmHWM: on Linux a
child's ru_maxrss can carry its parent's pre-exec peak). Results are
appended to a JSON-lines file as they finish; a rerun skips what is already there.

    python -m scaleprof.dev.counting_speed --out reports          # all cases
    python -m scaleprof.dev.counting_speed --one scaleprof resnet50 # one case, JSON on stdout
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
    return format_markdown(done, _baseline_rss())


def format_markdown(done: dict, base_rss: int) -> str:
    lines = ["## Counting speed", "",
             "Median of 3 timed runs after one warm-up, each tool in a fresh process; peak memory is the "
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
    p.add_argument("--out", default="reports")
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return 0
    md = run_selfbench(args.out)
    (Path(args.out) / "counting-speed.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
