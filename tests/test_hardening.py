"""Issue 12: the hardening cases, each failing on the code before its fix (hostile arguments, models and files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scaleprof.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def one_reason(err: str, needle: str = "") -> bool:
    lines = err.strip().splitlines()
    return bool(lines) and "Traceback" not in err and "error:" in lines[-1] and needle in lines[-1]


@pytest.fixture
def hostile(write_model):
    """Models that misbehave: print while built and run, call sys.exit, interrupt, edit their weights."""
    return write_model("""
        import sys
        import torch
        import torch.nn as nn

        class Chatty(nn.Module):
            def __init__(self):
                super().__init__()
                print("building chatty")
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                print("forward chatty")
                return self.fc(x)

        class Exits(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                sys.exit(0)

        class Interrupts(nn.Module):
            # batch 1 runs, batch 2 is Ctrl-C
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                if x.shape[0] == 2:
                    raise KeyboardInterrupt
                return self.fc(x)

        def good():
            return nn.Linear(4, 2)

        def chatty():
            return Chatty()

        def exits_in_forward():
            return Exits()

        def exits_in_build():
            sys.exit(0)

        def interrupts():
            return Interrupts()
    """, "hostile.py")


# --- item 2: sys.exit in user code is a failure, and the gate never passes without a verdict -------------

@pytest.mark.parametrize("fn", ["exits_in_build", "exits_in_forward"])
def test_sys_exit_in_the_model_is_exit_2(capsys, hostile, fn):
    code, out, err = run(capsys, "profile", f"{hostile}:{fn}", "--input", "1x4", "--json")
    assert code == 2 and out == "" and one_reason(err, "sys.exit(0)")


@pytest.mark.parametrize("fn", ["exits_in_build", "exits_in_forward"])
def test_check_with_sys_exit_in_the_model_is_an_error_verdict(capsys, hostile, tmp_path, fn):
    base = tmp_path / "b.json"
    assert run(capsys, "check", f"{hostile}:good", "--input", "1x4", "--save", str(base))[0] == 0
    code, out, err = run(capsys, "check", f"{hostile}:{fn}", "--input", "1x4", "--baseline", str(base), "--json")
    assert code == 2 and json.loads(out)["verdict"] == "error" and one_reason(err, "sys.exit")


# --- item 3: --json alone on stdout ------------------------------------------------------------------------

def test_json_is_alone_on_stdout_when_the_model_prints(capsys, hostile):
    code, out, err = run(capsys, "profile", f"{hostile}:chatty", "--input", "1x4", "--device", "cpu", "--json")
    assert code == 0 and json.loads(out)["totals"]["macs"] == 8
    assert "building chatty" in err and "forward chatty" in err and "forward chatty" not in out
    assert sys.stdout is not sys.stderr   # restored


def test_tables_still_go_to_stdout(capsys, hostile):
    code, out, err = run(capsys, "profile", f"{hostile}:chatty", "--input", "1x4")
    assert code == 0 and "linear" in out and "building chatty" in err and "building" not in out


# --- item 8: NaN, infinities and negatives -----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["bench", "resnet18", "--max-time", "nan"], ["bench", "resnet18", "--max-time", "inf"],
    ["bench", "resnet18", "--max-time", "-1"], ["bench", "resnet18", "--target-ci", "NaN"],
    ["compare", "a", "b", "--min-effect", "-0.5"], ["check", "resnet18", "--threshold", "nan"],
    ["scale", "--phi", "inf"], ["scale", "--lr", "nan"], ["scale", "--reward-w", "nan"],
    ["profile", "resnet18", "--width", "nan"], ["profile", "resnet18", "--depth", "-inf"],
    ["scale", "--jobs", "-2"], ["bench", "resnet18", "--threads", "-1"],
])
def test_non_finite_and_negative_numbers_are_refused(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and one_reason(err, "argument")


def test_signed_numbers_where_they_mean_something():
    # MnasNet's reward exponent is negative by design
    assert build_parser().parse_args(["scale", "--reward-w", "-0.07"]).reward_w == -0.07


# --- item 14: a closed pipe --------------------------------------------------------------------------------

class _ClosedPipe:
    def write(self, _):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_closed_pipe_ends_quietly_in_process(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main(["zoo", "--no-cost"])
    monkeypatch.undo()
    assert code == 0 and capsys.readouterr().err == ""


def test_closed_pipe_ends_quietly_in_a_shell():
    # `true` has gone before the CLI writes: the write meets EPIPE
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m scaleprof.cli zoo --no-cost | true"],
                          capture_output=True, text=True, cwd=REPO, timeout=60,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stderr == ""


# --- item 17: Ctrl-C ---------------------------------------------------------------------------------------

def test_ctrl_c_is_130_and_bench_prints_the_rows_it_finished(capsys, hostile):
    code, out, err = run(capsys, "bench", f"{hostile}:interrupts", "--input", "1x4", "--batch", "1,2",
                         "--no-memory", "--max-time", "0.2", "--json")
    assert code == 130 and "interrupted" in err.strip().splitlines()[-1]
    rows = json.loads(out)["results"]
    assert [(r["batch_size"], r["status"]) for r in rows] == [(1, "ok")]
