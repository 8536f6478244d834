"""Memory and speed of ENAS's super-networks at the default sizes (issue 5: "fits in 4 GiB for 32x32 colour").

For each space (macro, cells) and input shape, in a fresh subprocess: import torch (baseline RSS), build the
super-network with ENAS's defaults, its SGD optimizer, and run ``--steps`` shared-weight steps (forward + backward +
SGD with momentum) on random data at the default batch size, each on a sampled child — the heaviest possible child
first (macro: every layer a 5x5 conv taking every skip; cells: every op a 5x5 separable conv, every node reading
node 0), then children from the controller. Reported per configuration:

- ``params``: super-network parameters (all ops of all choices);
- ``peak_rss_mib`` / ``delta_rss_mib``: the process's peak resident memory (``VmHWM`` of /proc/self/status;
  ``getrusage``'s ru_maxrss off Linux) and its growth over the baseline after ``import torch`` — parameters,
  gradients, momentum buffers, one child's activations, and the allocator's slack (tracemalloc does not see
  torch's allocations, so RSS is the measure);
- ``cuda_peak_mib``: ``torch.cuda.max_memory_allocated`` when the run used CUDA (``--device cuda``);
- ``mmacs``: multiply-accumulates of one image's forward pass through the heaviest child;
- ``step_seconds``: mean wall time of one shared step (after the first, the heaviest child's), at ``--threads``
  torch threads, and ``step_cpu_seconds`` its process CPU time (on a machine shared with other work the CPU time
  is the better estimate of the cost; with one thread it is what a quiet core would take);
  ``epoch_seconds_2000``: the wall time times the steps of one epoch over 2,000 images.

Usage: ``python bench/bench_enas_memory.py [--threads 2] [--steps 4] [--device cpu|cuda] [--json out.json]``.
`tests/test_backend_enas_memory.py` asserts the 4 GiB bound through `measure`.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

SHAPES = [(3, 32, 32), (1, 28, 28)]

_CHILD = r"""
import json, resource, sys, time
import torch
from torch import nn
def peak_kib():
    # VmHWM: the peak of this process's own memory map. ru_maxrss would also count the parent's RSS (Linux keeps
    # the pre-exec high-water mark of the forked copy), so it is only the fallback off Linux.
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
base = peak_kib()
space, shape, steps, threads, device, overrides = json.loads(sys.argv[1])
torch.set_num_threads(threads)
torch.manual_seed(0)
from search_backends.enas import ENAS
from search_backends.enas.backend import TRAIN_DEFAULTS
e = ENAS(space, **overrides)
net, ctl, structure = e.build(shape, 10)
net.to(device)
if space == "macro":
    heavy = {"layers": [{"op": "conv5", "skips": list(range(j - 1))} for j in range(1, e.layers + 1)]}
else:
    cell = [{"inputs": [0, 0], "ops": ["sep5", "sep5"]} for _ in range(e.nodes)]
    heavy = {"normal": cell, "reduction": cell}
macs = [0]
def hook(m, i, o):
    if isinstance(m, nn.Conv2d):
        macs[0] += o[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
    elif isinstance(m, nn.Linear):
        macs[0] += m.in_features * m.out_features
hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
with torch.no_grad():
    net(torch.rand(1, *shape, device=device), heavy)
for h in hooks:
    h.remove()
hp = TRAIN_DEFAULTS[space]
opt = torch.optim.SGD(net.parameters(), lr=hp["lr"], momentum=hp["momentum"], nesterov=True)
batch = hp["batch_size"]
x = torch.rand(batch, *shape, device=device)
y = torch.randint(0, 10, (batch,), device=device)
g = torch.Generator().manual_seed(0)
times, cpu = [], []
for s in range(steps):
    with torch.no_grad():
        child = heavy if s == 0 else ctl.sample(g).arch
    t, c = time.perf_counter(), time.process_time()
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(x, child), y).backward()
    opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    times.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)
peak = peak_kib()
def later(v):
    return sum(v[1:]) / (len(v) - 1) if len(v) > 1 else v[0]
step, step_cpu = later(times), later(cpu)
print(json.dumps({"space": space, "shape": shape, "params": sum(p.numel() for p in net.parameters()),
                  "structure": structure, "peak_rss_mib": peak / 1024, "delta_rss_mib": (peak - base) / 1024,
                  "cuda_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
                  "mmacs": macs[0] / 1e6, "step_seconds": step, "step_cpu_seconds": step_cpu,
                  "epoch_seconds_2000": step * -(-2000 // batch), "threads": threads, "batch": batch}))
"""


def measure(space: str, shape=(3, 32, 32), steps: int = 3, threads: int = 2, device: str = "cpu",
            overrides: dict | None = None, timeout: float = 600) -> dict:
    """Run one configuration in a fresh interpreter and return its measurements."""
    arg = json.dumps([space, list(shape), steps, threads, device, overrides or {}])
    out = subprocess.run([sys.executable, "-c", _CHILD, arg], capture_output=True, text=True, timeout=timeout,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    rows = []
    for space in ("macro", "cells"):
        for shape in SHAPES:
            r = measure(space, shape, args.steps, args.threads, args.device)
            rows.append(r)
            print(f"{space:5s} {tuple(shape)!s:12s} params {r['params']:>9,d}  peak RSS {r['peak_rss_mib']:7.1f} MiB "
                  f"(+{r['delta_rss_mib']:6.1f})  cuda {r['cuda_peak_mib'] or 0:7.1f} MiB  {r['mmacs']:6.1f} MMACs  "
                  f"step {r['step_seconds']:.3f} s (CPU {r['step_cpu_seconds']:.3f} s)  "
                  f"epoch/2000 {r['epoch_seconds_2000']:.1f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
