"""bench.env.steady_allocator: timings of glibc malloc's steady state, not of its page faults."""

import os
import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="glibc's malloc only")

# A depthwise conv whose output (96x56x56 floats, 1.2 MB) is over glibc's first mmap threshold: with the
# default policy each call maps, touches and unmaps (or trims) its output's pages.
_PROBE = """
import resource, sys, torch
import torch.nn.functional as F
from scaleprof.bench.env import allocator_policy, steady_allocator
if sys.argv[1] == "steady":
    steady_allocator()
torch.set_num_threads(1)
x, w = torch.randn(1, 96, 56, 56), torch.randn(96, 1, 3, 3)
for _ in range(5):
    F.conv2d(x, w, padding=1, groups=96)
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    F.conv2d(x, w, padding=1, groups=96)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0, allocator_policy())
"""


def _faults(mode: str, **env) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}).stdout.split(maxsplit=1)
    return int(out[0]), out[1].strip()


@glibc
def test_steady_allocator_stops_the_page_faults_of_each_call():
    steady, policy = _faults("steady")
    as_is, _ = _faults("as-is")
    assert policy.startswith("glibc malloc")
    assert steady < 50          # none a call once the heap holds the block (a few from the interpreter)
    assert as_is > 50 * 100     # the default policy: hundreds a call (this probe read ~850)


@glibc
def test_as_is_keeps_the_process_policy_and_says_so():
    faults, policy = _faults("steady", SCALEPROF_MALLOC="as-is")
    assert policy == "None"
    assert faults > 50 * 100


@glibc
def test_environment_records_the_policy():
    from scaleprof.bench.env import allocator_policy, environment

    assert environment()["allocator"] == allocator_policy()
