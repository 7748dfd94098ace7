"""Every `scaleprof ...` command in the README's shell blocks runs as written, from a fresh directory.

The commands are read from README.md itself, so a command added to the README is run here from then on.
They run in order in one directory (later ones read what earlier ones wrote: baseline.json, profile.json),
with `examples/` beside them as in a clone. Measurements are shortened: `--max-time` bounds each
measurement (the README says so), so a bench, compare or latency check runs with `--max-time 0.5` and bench
with `--no-memory` (the memory child is tested in test_bench*.py); that is the only change. What is too slow
for the default run is marked slow (run by `make test-slow`) or not run at all, each with its reason, below.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL_BLOCKS = ("```bash", "```sh", "```shell", "```console")

# Commands never run here, with the reason.
NOT_RUN = {
    "scaleprof scale --objective latency --threads 1":
        "times every one of the default grid's 168 architectures for 5 s: over a quarter of an hour",
    "scaleprof scale --executor ray --address auto --plot plots/":
        "needs a running Ray cluster (--address auto); tests/test_scaling.py runs Ray locally",
}
# Commands run only with `-m slow` (make test-slow), with the reason.
SLOW = {
    "scaleprof bench resnet50 --runtime eager,compile,onnxruntime --batch 1,8":
        "torch.compile of ResNet-50 takes minutes on 2 cores",
    "scaleprof bench resnet50 --batch 1,8,32 --train --log b.jsonl --resume":
        "ResNet-50 training steps at batch 32: minutes on 2 cores",
    "scaleprof bench resnet18 --runtime onnxruntime:basic,onnxruntime":
        "two dynamo exports of ResNet-18, about a minute on 2 cores",
    "scaleprof export efficientnet_b0 --out b0.onnx --dynamic-batch --opset 18":
        "the dynamo export of EfficientNet-B0 takes about a minute on 2 cores",
    "scaleprof bench efficientnet_b0 --runtime eager,onnxruntime,web --threads 1":
        "two exports of EfficientNet-B0 and a browser session, minutes on 2 cores",
    "scaleprof scale --family mobilenet_v2 --budget 0.6G --jobs 2 --log search.jsonl --resume":
        "a process pool counting a grid of MobileNetV2s, over a minute on 2 cores",
    # The rest run in well under a minute alone but add minutes to the suite (times on a busy 2-core machine):
    "scaleprof bench efficientnet_b0 --train": "a training step per phase and its warm-up: 2 min",
    "scaleprof bench efficientnet_b0 --roofline roofline.png": "the machine's peaks and the attribution: 1 min",
    "scaleprof bench efficientnet_b0 --by kind --roofline --json > bench.json": "as the roofline above: 1 min",
    "scaleprof bench efficientnet_b0 --by kind --threads 1": "time attribution per layer kind: 35 s",
    "scaleprof compare resnet18 resnet34": "two ResNets built and warmed up in turns: 45 s",
    "scaleprof zoo": "counts all 34 zoo models: 45 s",
    "scaleprof profile mobilenet_v2 --crosscheck": "fvcore, thop and torch's counter beside: 40 s",
    "scaleprof bench examples/cnn.py:build --runtime eager,onnxruntime,web --threads 1 --keep-onnx onnx/":
        "two ONNX exports and a browser session: 40 s (tests/test_export.py times the web runtime)",
}
# Where the documented exit code is not 0.
EXIT_CODE = {
    # no CUDA here: every row fails with its reason and bench exits 2 (the README says where there is no CUDA)
    "scaleprof bench resnet18 --device cuda --runtime eager,onnxruntime": None,
}


def readme_commands(text: str | None = None) -> list[str]:
    """The `scaleprof ...` lines of the README's shell blocks, in order, without their trailing comments."""
    out, in_block, pending = [], False, ""
    for line in (README.read_text() if text is None else text).splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_block = not in_block and stripped in SHELL_BLOCKS
            continue
        if in_block:
            if stripped.endswith("\\"):   # a continued line: the command goes on below
                pending += stripped[:-1]
                continue
            stripped, pending = pending + stripped, ""
            command = re.split(r"\s+#\s", stripped, maxsplit=1)[0].strip()
            if command.startswith("scaleprof "):
                out.append(command)
    return out


def shortened(command: str) -> str:
    """The command with its measurements bounded (see the module docstring); redirections kept last."""
    head, sep, redirect = command.partition(" > ")
    words = shlex.split(head)
    verb = words[1]
    extra = []
    if verb in ("bench", "compare") or (verb == "check" and ("--against" in words or "--latency" in words)):
        extra += ["--max-time", "0.5"]
    if verb == "bench" and "--micro" not in words:
        extra.append("--no-memory")
    if verb == "calibrate":   # a usable predictor from a short calibration (the predict commands below read it)
        extra += ["--max-time", "20"]
    return " ".join([head, *extra]) + (sep + redirect if sep else "")


def expected_code(command: str) -> int:
    if command in EXIT_CODE:
        import torch

        return 0 if torch.cuda.is_available() else 2
    return 0


def _params():
    out = []
    for i, command in enumerate(readme_commands()):
        marks = []
        if command in NOT_RUN:
            marks.append(pytest.mark.skip(reason=NOT_RUN[command]))
        elif command in SLOW:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(command, marks=marks, id=f"{i:02d}-{command[10:60]}"))
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A fresh directory with the clone's examples/ beside it and `scaleprof` on PATH (this checkout)."""
    d = tmp_path_factory.mktemp("readme")
    (d / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    bin_dir = d / ".bin"
    bin_dir.mkdir()
    shim = bin_dir / "scaleprof"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m scaleprof.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           # calibrate writes its predictor under the cache folder: this directory's, not the user's
           "XDG_CACHE_HOME": str(d / ".cache")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return d, env


def outputs(command: str) -> list[str]:
    """Files a command writes that later commands read: `> FILE` and `--save FILE`."""
    words = shlex.split(command)
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w in (">", "--save")]


def missing_inputs(command: str, d: Path) -> list[str]:
    """Files this command reads that an earlier README command writes, where they are not (yet) here:
    their writer was not run in this session (slow or not run)."""
    written = {f for c in readme_commands() for f in outputs(c)}
    head = command.partition(" > ")[0]
    return [w for w in shlex.split(head) if w in written and w not in outputs(command) and not (d / w).exists()]


def unmet_need(command: str) -> str | None:
    """What this machine lacks for the command (it would fail for that reason alone), or None."""
    if "--web" in shlex.split(command):
        from scaleprof.bench import webpage

        if webpage.find_ort_web() is None:
            return f"export --web needs onnxruntime-web: {webpage.INSTALL_HINT}"
    return None


@pytest.mark.parametrize("command", _params())
def test_readme_command_runs(command, workdir):
    d, env = workdir
    missing = missing_inputs(command, d)
    if missing:
        pytest.skip(f"reads {', '.join(missing)}, written by a README command not run in this session")
    if why := unmet_need(command):
        pytest.skip(why)
    run = subprocess.run(["bash", "-c", shortened(command)], cwd=d, env=env, capture_output=True, text=True,
                         timeout=600)
    want = expected_code(command)
    assert run.returncode == want, (f"{command!r} exited {run.returncode}, documented {want}:\n"
                                    f"{run.stderr[-2000:]}")
    if want == 2:  # a failure says why in one line
        assert run.stderr.strip().splitlines()[-1].startswith("scaleprof ")


def test_the_lists_name_only_commands_the_readme_has():
    commands = set(readme_commands())
    stale = [c for c in [*NOT_RUN, *SLOW, *EXIT_CODE] if c not in commands]
    assert not stale, f"listed here but no longer in the README: {stale}"


def test_commands_are_read_from_shell_blocks_only():
    text = ("intro `scaleprof zoo` in prose\n```bash\nscaleprof profile x   # a comment\nmake demo\n"
            "  scaleprof zoo --json > z.json\n```\n```python\nscaleprof.profile(m)\n```\n")
    assert readme_commands(text) == ["scaleprof profile x", "scaleprof zoo --json > z.json"]
    assert shortened("scaleprof bench m --by kind --json > b.json") == \
        "scaleprof bench m --by kind --json --max-time 0.5 --no-memory > b.json"
    assert shortened("scaleprof check m --against n") == "scaleprof check m --against n --max-time 0.5"
    assert shortened("scaleprof profile m") == "scaleprof profile m"
    assert shortened("scaleprof calibrate --threads 1") == "scaleprof calibrate --threads 1 --max-time 20"
    assert readme_commands("```bash\nscaleprof scale --alpha 1 \\\n  --sweep ''   # c\n```\n") == \
        ["scaleprof scale --alpha 1 --sweep ''"]


def test_a_command_reading_what_an_unrun_one_writes_is_skipped(tmp_path):
    assert outputs("scaleprof bench m --json > bench.json") == ["bench.json"]
    assert outputs("scaleprof check m --save cnn.json") == ["cnn.json"]
    assert missing_inputs("scaleprof report profile.json bench.json scale.json --out out/", tmp_path) == \
        ["profile.json", "bench.json", "scale.json"]
    (tmp_path / "bench.json").write_text("{}")
    assert "bench.json" not in missing_inputs("scaleprof report profile.json bench.json --out out/", tmp_path)
    assert missing_inputs("scaleprof check m --save cnn.json", tmp_path) == []


def test_the_readme_uses_the_shipped_examples():
    for command in readme_commands():
        for spec in re.findall(r"(\S+\.py):\w+", command):
            assert (ROOT / spec).is_file(), f"{command!r} names {spec}, which is not in the repository"
