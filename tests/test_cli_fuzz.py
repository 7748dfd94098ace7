"""Issue 12: every verb's arguments fuzzed (hypothesis). Whatever the arguments, the CLI exits 0, 1 or 2, never
shows a traceback, and ends every exit 2 with a one-line reason.

The flags come from the parser itself, so a flag added later is fuzzed too. Runs in process through
``scaleprof.cli.main(argv)`` with stdout and stderr captured. Valid runs are kept short: the models are tiny or
absent, and fast settings are appended after the fuzzed arguments (argparse keeps the last value, while a
fuzzed value that is invalid still fails as it is parsed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleprof.cli import build_parser, main

# values that are valid somewhere, and values that are hostile anywhere
VALUES = ["nan", "NaN", "inf", "-inf", "-1", "0", "1", "2", "0.5", "1e9", "1e308", "-0", "abc", "", " ", "1x4",
          "1x4:int64", "0x4", "1x4x", "x", "float16", "int64", "bool", "cpu", "meta", "cuda", "tpu", "eager",
          "compile", "onnxruntime:all", "1,2", "1,,2", "<=2x", "2x", "0.8G", "1:2:0.5", "1:1:0", "key=1", "=",
          "\u00e9\u2603", "--", "-", "/nonexistent/x.json", "{tmp}/none.json", "{tmp}/good.json", "{tmp}/garbage.json",
          "macs=0.01", "macs[conv]=x", "kind", "module", "layer", "sgd", "latency", "cost", "train", "proxy",
          "python:no_such_mod:f", "0:7", "best", "paper", "1,1,1", "\x00"]

SKIP = {"--help", "-h", "--debug", "--version",
        # would be slow on any valid input: the roofline measures the machine, micro-benchmarks time ops, and the
        # executors start processes; each has tests of its own
        "--roofline", "--micro", "--executor", "--jobs", "--address", "--plot"}

# per verb: the positionals to draw from, and fast settings appended after the fuzzed arguments
TINY = "{tmp}/tiny.py:net"
VERBS = {
    "profile": ([TINY, "mobilenet_v1_025", "no_such_model", "{tmp}/tiny.py:nope", ""], []),
    "zoo": ([], ["--no-cost"]),
    "bench": ([TINY, "no_such_model", "{tmp}/none.py:net"], ["--no-memory", "--max-time", "0.05"]),
    "compare": ([TINY, "{tmp}/good_bench.json", "no_such_model"], ["--max-time", "0.05"]),
    "report": (["{tmp}/good.json", "{tmp}/garbage.json", "{tmp}/none.json"], ["--out", "{tmp}/report"]),
    "check": ([TINY, "no_such_model"], ["--max-time", "0.05"]),
    "scale": ([], ["--family", "tests.test_scaling_models:tiny_net", "--alpha", "1.0", "--beta", "1.0", "--gamma",
                   "1.0", "--sweep", "", "--quiet", "--latency-time", "0.05", "--steps", "1"]),
}
POSITIONALS = {"profile": 1, "zoo": 0, "bench": 1, "compare": 2, "report": 1, "check": 1, "scale": 0}


def _flags(verb: str) -> list[tuple[str, bool]]:
    """(flag, takes a value) of every option of ``verb``, read from the parser."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for action in sub.choices[verb]._actions:
        if not action.option_strings:
            continue
        flag = max(action.option_strings, key=len)
        if flag not in SKIP:
            out.append((flag, action.nargs != 0))
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from scaleprof import profile

    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "tiny.py").write_text("import torch.nn as nn\n\n\ndef net(width=1.0):\n"
                                 "    return nn.Linear(4, max(1, int(2 * width)))\n")
    (tmp / "good.json").write_text(json.dumps(profile("mobilenet_v1_025").to_dict()))
    (tmp / "garbage.json").write_text("{not json")
    (tmp / "good_bench.json").write_text(json.dumps({"model": "m", "inputs": ["1x4"], "env": {}, "results": []}))
    return tmp


def _argv(draw, verb: str, tmp) -> list[str]:
    fill = lambda s: s.replace("{tmp}", str(tmp))   # noqa: E731
    choices, fast = VERBS[verb]
    argv = [verb] + [fill(draw(st.sampled_from(choices))) for _ in range(POSITIONALS[verb])]
    flags = _flags(verb)
    for flag, takes in draw(st.lists(st.sampled_from(flags), max_size=3)):
        argv.append(flag)
        if takes:
            argv.append(fill(draw(st.one_of(st.sampled_from(VALUES), st.text(max_size=6)))))
    if verb in ("profile", "bench", "check", "compare") and draw(st.booleans()):
        argv += ["--input", "1x4"]
    return argv + [fill(a) for a in fast]


@pytest.mark.parametrize("verb", list(VERBS))
def test_fuzzed_arguments_exit_0_1_or_2_with_one_line(verb, folder, monkeypatch):
    monkeypatch.chdir(folder)                      # --log abc, --save x: written in the test's folder
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)

    codes = []

    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(st.data())
    def fuzz(data):
        argv = _argv(data.draw, verb, folder)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        text = err.getvalue()
        codes.append(code)
        assert code in (0, 1, 2), (argv, code, text)
        assert "Traceback" not in text, (argv, text)
        if code == 2:
            last = text.strip().splitlines()[-1] if text.strip() else ""
            assert "error:" in last, (argv, text)

    fuzz()
    print(verb, sorted(codes))
    if any(takes for _, takes in _flags(verb)):
        assert 2 in codes     # hostile arguments are drawn, and refused
