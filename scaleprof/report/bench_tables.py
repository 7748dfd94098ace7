"""Bench, compare and micro-benchmark results as tables for people; `--json` prints `to_dict()` instead."""

from __future__ import annotations

from tabulate import tabulate

from ..bench.env import summary
from .tables import binary_bytes, ci_rel, sig


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2g}%"


def format_bench(result) -> str:
    d = result.to_dict()
    rows = []
    notes = []
    for r, det in zip(d["results"], d["details"], strict=True):
        if r["status"] != "ok":  # failed, or skipped (--total-time)
            rows.append([r["runtime"], r["device"], r["dtype"], r["batch_size"], r["status"], "", "", "", "", "",
                         "", ""])
            notes.append(f"{r['runtime']} on {r['device']} (batch {r['batch_size']}): {r['reason']}")
            continue
        rows.append([r["runtime"], r["device"], r["dtype"], r["batch_size"], sig(r["median_ms"]),
                     ci_rel(r["median_ms"], r["ci95_ms"]), sig(r["iqr_ms"]), sig(r["p90_ms"]),
                     f"{r['throughput']:.4g}" if r["throughput"] else "-", sig(r["cold_ms"]),
                     binary_bytes(r["peak_memory_bytes"]), _pct(r.get("mfu"))])
        if det.get("stop_reason") == "max_time" and r["ci95_ms"]:
            notes.append(f"{r['runtime']} on {r['device']} (batch {r['batch_size']}): stopped at the time limit "
                         f"with the CI at {ci_rel(r['median_ms'], r['ci95_ms'])} ({r['samples']} samples)")
        mem = det.get("memory") or {}
        if mem.get("reason"):
            notes.append(f"{r['runtime']} on {r['device']}: no memory figure: {mem['reason']}")
    head = ["runtime", "device", "dtype", "batch", "median ms", "95% CI", "IQR ms", "p90 ms", "samples/s",
            "cold ms", "peak mem", "MFU"]
    out = [f"{d['model']} on {', '.join(d['inputs'])}", "env: " + summary(d["env"]), "",
           tabulate(rows, headers=head, tablefmt="simple", disable_numparse=True)]
    if result.train:
        out += ["", "training step (forward, loss, backward, optimizer):"]
        trows = []
        for t in result.train:
            if t.status != "ok":
                trows.append([t.device, t.batch_size, t.status, "", "", "", "", "", "", "", "", "", ""])
                notes.append(f"training on {t.device} (batch {t.batch_size}): {t.reason}")
                continue
            ph = t.phases
            trows.append([t.device, t.batch_size, sig(t.median_ms), ci_rel(t.median_ms, t.ci95_ms),
                          *(sig(ph[p]["median_ms"]) for p in ("forward", "loss", "backward", "optimizer")),
                          binary_bytes(t.peak_memory_bytes),
                          binary_bytes((getattr(t, "memory", None) or {}).get("model_peak_bytes")),
                          binary_bytes((getattr(t, "memory_estimate", None) or {}).get("peak_bytes")),
                          _pct(getattr(t, "mfu", None)), _pct(getattr(t, "hfu", None))])
        out.append(tabulate(trows, headers=["device", "batch", "step ms", "95% CI", "forward", "loss", "backward",
                                            f"optimizer ({result.train[0].optimizer})", "peak mem",
                                            "model peak", "estimated", "MFU", "HFU"],
                            tablefmt="simple", disable_numparse=True))
    if result.attribution is not None:
        out += ["", format_attribution(result.attribution)]
    if result.roofline is not None:
        out += ["", format_roofline(result.roofline)]
    notes += d.get("notes", [])
    env = d["env"]
    if env.get("load") is not None and env["load"] + env["threads"] > env["cores"] + 0.5:
        # the hint only where it would change something: one thread is what it suggests
        hint = " (try --threads 1)" if env["threads"] > 1 else ""
        notes.append(f"the machine was busy (load {env['load']:.1f} on {env['cores']} cores) and {env['threads']} "
                     f"thread(s) were asked for: expect waits for cores in the timings{hint}")
    if notes:
        out += ["", *("note: " + n for n in notes)]
    return "\n".join(out)


def format_attribution(a) -> str:
    rows = []
    for r in a.rows:
        name = [r.name if r.name else "(root)"] + ([r.kind or "-"] if a.by == "module" else [])
        rows.append([*name, f"{r.time_ms:.4g}", f"{100 * r.time_share:.1f}%",
                     f"{100 * r.macs_share:.1f}%" if r.macs_share is not None else "-",
                     f"{r.gflops:.3g}" if r.gflops else "-", f"{r.gbps:.3g}" if r.gbps else "-"])
    head = [a.by] + (["kind"] if a.by == "module" else []) + ["ms", "time", "MACs", "GFLOP/s", "GB/s"]
    title = (f"time by {a.by} on {a.device} (torch.profiler, {a.iterations} runs; op time {a.op_ms:.4g} ms of "
             f"{a.wall_ms:.4g} ms profiled wall per run)")
    if not a.counted:
        title += f"\n(no MACs: {a.note})"
    return title + "\n" + tabulate(rows, headers=head, tablefmt="simple", disable_numparse=True)


def format_roofline(roof) -> str:
    pk = roof.peaks
    rows = [[p.kind, f"{p.intensity:.3g}" if p.intensity else "-", f"{p.gflops:.3g}" if p.gflops else "-",
             f"{p.roof_gflops:.3g}" if p.roof_gflops else "-",
             f"{100 * p.efficiency:.0f}%" if p.efficiency is not None else "-", p.bound or "-"]
            for p in roof.points]
    head = (f"roofline on {pk.device}: peak {pk.gflops:.1f} GFLOP/s (matmul {pk.matmul_n}), {pk.gbps:.1f} GB/s "
            f"(copy), ridge at {pk.ridge:.1f} FLOP/byte" + (f"; plot: {roof.plot}" if roof.plot else ""))
    table = tabulate(rows, headers=["kind", "FLOP/byte", "GFLOP/s", "roof", "of roof", "bound"], tablefmt="simple",
                     disable_numparse=True)
    tail = ""
    if any(p.efficiency and p.efficiency > 1 for p in roof.points):
        tail = ("\n(above 100%: that kind's working set fits in cache, which is faster than the memory roof "
                "measured with a copy larger than the caches)")
    return head + "\n" + table + tail


def format_micro(m) -> str:
    wide = m.to_dict()["wide_ci_threshold"]  # from the result: report imports no bench timer (layering)
    rows = [[r.name, r.config, sig(r.median_ms), ci_rel(r.median_ms, r.ci95_ms) + (" wide CI" if r.wide_ci else ""),
             f"{r.gmacs_per_s:.3g}" if r.gmacs_per_s else "-", f"{r.gbps:.3g}"] for r in m.rows]
    out = (f"micro-benchmark {m.suite} on {m.device} ({m.dtype}): {m.rounds} shuffled interleaved rounds "
           f"({m.stop_reason})\n"
           + tabulate(rows, headers=["op", "config", "median ms", "95% CI", "GMAC/s", "GB/s"], tablefmt="simple",
                      disable_numparse=True))
    if any(r.wide_ci for r in m.rows):
        out += (f"\nnote: wide CI: the 95% CI's half-width is over {100 * wide:g}% of the median; read no ratio "
                "from those rows (a longer --max-time, or a quieter machine)")
    return out


def format_compare(c) -> str:
    rows = [[s.label, sig(s.median_ms), ci_rel(s.median_ms, s.ci95_ms), s.samples, sig(s.cold_ms)] for s in (c.a, c.b)]
    table = tabulate(rows, headers=["model", "median ms", "95% CI", "samples", "cold ms"], tablefmt="simple",
                     disable_numparse=True)
    lines = [f"{c.runtime} on {c.device} ({c.dtype}), inputs {', '.join(c.inputs)}", table, "", c.sentence(),
             f"rule: {c.rule}"]
    return "\n".join(lines)


def format_saved_compare(d: dict) -> str:
    rows = [[r["runtime"], r["device"], r["dtype"], r["batch_size"], sig(r["a_median_ms"]), sig(r["b_median_ms"]),
             f"{r['ratio']:.3f}" if r["ratio"] else "-",
             "{:.3f}-{:.3f}".format(*r["ratio_ci95"]) if r.get("ratio_ci95") else "-",
             f"{r['p_value']:.2g}" if r["p_value"] is not None else "-", r.get("verdict", "")]
            for r in d["rows"]]
    out = (f"B = {d.get('b_model') or 'B'} against A = {d.get('a_model') or 'A'} (saved results)\n"
           + tabulate(rows, headers=["runtime", "device", "dtype", "batch", "A ms", "B ms", "B/A", "95% CI", "p",
                                     "verdict"], tablefmt="simple", disable_numparse=True))
    if d.get("rule"):
        out += f"\nrule: {d['rule']}"
    if not d["same_environment"]:
        out += "\nwarning: the two results come from different environments: " + "; ".join(d["env_differences"])
    return out
