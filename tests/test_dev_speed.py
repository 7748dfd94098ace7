"""The benchmark's cold table (scaleprof.dev.counting_speed): what is run, in which order, and the ratios.

No timing is asserted here: the runs are replaced by fixed figures, so the table can be checked by hand.
"""

from __future__ import annotations

import json
import sys

from scaleprof.dev import counting_speed as cs


def test_cold_commands_are_what_a_user_runs():
    assert cs.cold_command("import-torch", "resnet50") == [sys.executable, "-c", "import torch"]
    ours = cs.cold_command("scaleprof", "resnet50")
    assert ours[-5:] == ["profile", "resnet50", "--input", "1x3x224x224", "--json"]
    peer = cs.cold_command("fvcore", "resnet50")[-1]
    assert "build('resnet50', device='cpu')" in peer and "FlopCountAnalysis" in peer and "scaleprof.dev" not in peer


def test_cold_rounds_alternate_the_tools_and_resume_from_the_log(tmp_path, monkeypatch):
    order = []
    fixed = {"import-torch": 2.0, "scaleprof": 2.5, "fvcore": 4.0, "thop": 3.0, "torch": 3.5}

    def fake(tool, case, timeout):
        order.append(tool)
        return {"status": "ok", "seconds": fixed[tool] + 0.1}

    monkeypatch.setattr(cs, "_run_cold", fake)
    log = tmp_path / "cold.jsonl"
    cold = cs.measure_cold(log, rounds=2)
    assert order == list(cs.COLD_TOOLS) * 2                       # round by round, never a tool's five in a row
    assert cold[("fvcore", "resnet50")] == [4.1, 4.1]
    assert len(log.read_text().splitlines()) == 10
    order.clear()
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:7]) + "\n" + lines[7][:5])     # killed in the middle of a line
    cs.measure_cold(log, rounds=2)
    assert order == ["fvcore", "thop", "torch"]                   # only what was not done, the cut line again
    assert json.loads(log.read_text().splitlines()[-1])["tool"] == "torch"
    order.clear()
    assert cs.measure_cold(log, rounds=2) == cold and order == []       # every record reads back


def test_cold_table_ratios():
    cold = {("import-torch", "resnet50"): [2.0, 2.2, 1.8], ("scaleprof", "resnet50"): [2.6, None, 2.4],
            ("fvcore", "resnet50"): [4.0], ("thop", "resnet50"): [None], ("torch", "resnet50"): [3.5]}
    md = cs.format_cold(cold)
    assert '| `python -c "import torch"` | 2.00 | 1.00x | 0.80x |' in md
    assert "| scaleprof | 2.50 | 1.25x | 1.00x |" in md                 # the median of the runs that finished
    assert "| fvcore | 4.00 | 2.00x | 1.60x |" in md
    assert "| thop | failed | | |" in md
    assert "**1.25x** (target: within 1.4x)" in md


def test_first_count_hf_and_targets_tables():
    firsts = {"resnet50": [{"status": "ok", "first_cpu_s": 0.3, "first_s": 0.4, "warm_cpu_s": 0.1, "warm_s": 0.1,
                            "sympy": False, "dynamo": False},
                           {"status": "ok", "first_cpu_s": 0.5, "first_s": 0.6, "warm_cpu_s": 0.1, "warm_s": 0.2,
                            "sympy": True, "dynamo": False}],
              "vit_b_16": [{"status": "failed", "reason": "boom"}]}
    assert cs.first_ratio(firsts["resnet50"]) == 4.0                    # the median of 3x and 5x
    md = cs.format_first(firsts)
    assert "| resnet50 | 0.400 (0.500) | 0.100 (0.150) | 4.0x | sympy |" in md
    assert "| vit_b_16 | failed: boom |" in md
    hfs = {"hf:t5": {"status": "ok", "bare_s": 1.0, "bare_cpu_s": 0.5, "scaleprof_s": 1.5, "scaleprof_cpu_s": 0.75,
                     "torch_s": 2.0, "torch_cpu_s": 1.0}}
    assert "| hf:t5 | 0.500 (1.000) | 0.750 (1.500) | 1.000 (2.000) | 1.50x |" in cs.format_hf(hfs)
    cold = {("import-torch", "resnet50"): [2.0], ("scaleprof", "resnet50"): [2.6]}
    t = cs.format_targets(cold, firsts, hfs)
    assert "| 1: `scaleprof profile resnet50 --json` / `import torch` (cold, wall) | 1.30x | 1.4x | yes |" in t
    assert "| 2: first / warm count, resnet50 (CPU) | 4.00x | 4x | yes |" in t
    assert "| 2: first / warm count, vit_b_16 (CPU) | failed | 4x |  |" in t
    assert "| 5: hf:t5 count / bare meta forward (CPU) | 1.50x | 1.2x | no |" in t
