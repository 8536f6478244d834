"""ENAS's super-network fits in 4 GiB for 32x32 colour inputs at the default sizes (issue 5).

Measured, not estimated: `bench/bench_enas_memory.py` runs shared-weight steps (forward, backward, SGD with
momentum) at the default batch size in a fresh interpreter, the first on the heaviest child of the space, and
reports the process's peak resident memory (``VmHWM``; tracemalloc does not see torch's allocator). The bound
is asserted on the whole process (interpreter and torch libraries included), the stricter reading.
"""
import importlib.util
from pathlib import Path

import pytest

GIB = 1024  # MiB


def _bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "bench_enas_memory.py"
    spec = importlib.util.spec_from_file_location("bench_enas_memory", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("space", ["cells", pytest.param("macro", marks=pytest.mark.slow)])  # cells: the larger
def test_supernet_fits_in_4_gib_for_32x32_colour(space):
    r = _bench().measure(space, (3, 32, 32), steps=2, threads=1)
    assert r["shape"] == [3, 32, 32] and r["batch"] == 64 and r["params"] > 0
    assert 0 < r["delta_rss_mib"] <= r["peak_rss_mib"] < 4 * GIB
