"""Simulation: the guard in two looks (a profile that may stop at its first look) against the guard in one.

    .venv/bin/python bench/sim_two_look.py [--draws 2000]

For the ``small`` and ``paper`` presets' B, T and first look (`trautoml.presets`), with paired differences
z_t ~ N(δ, Σ) (the test's model; `trautoml.grouping.bftest.two_look_test`): the Type-I error at α = 0.05 with
unequal covariances (the members' and the new dataset's, and a deviation shared by trial t), the power at the
preset's α for ‖δ‖ = 2 and 3 sd of the paired difference (one look on all T trials against two looks), and how
often a dataset of the group (H0) stops at the first look. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import numpy as np

    from trautoml.grouping.bftest import paired_test, two_look_test
    from trautoml.presets import get_preset

    rng = np.random.default_rng(args.seed)
    out: dict = {"draws": args.draws}
    for name in ("small", "paper"):
        p = get_preset(name)
        b, t, first = p.n_models, p.n_trials, p.n_trials_first
        # H0 with unequal covariances: a new dataset against the average of 2 members, trial deviations shared
        a = rng.normal(size=(b, b))
        l_new = np.linalg.cholesky(a @ a.T / b + 0.1 * np.eye(b)) * 0.01
        q, _ = np.linalg.qr(rng.normal(size=(b, b)))
        l_member = np.linalg.cholesky(q @ np.diag(np.linspace(0.5, 2.0, b) ** 2) @ q.T) * 0.02
        l_shared = np.linalg.cholesky(np.eye(b) * 0.006 ** 2 + 0.003 ** 2)
        rejected = stopped = 0
        for _ in range(args.draws):
            shared = rng.normal(size=(t, b)) @ l_shared.T
            x = 0.5 + shared + rng.normal(size=(t, b)) @ l_new.T
            ybar = np.mean([0.5 + shared + rng.normal(size=(t, b)) @ l_member.T for _ in range(2)], axis=0)
            r = two_look_test(x, ybar, first, 0.05)
            rejected += r.reject
            stopped += r.first_p > r.futility
        power = {}
        for dist in (2.0, 3.0):
            hits = np.zeros(2)
            for _ in range(args.draws):
                u = rng.normal(size=b)
                z = rng.normal(size=(t, b)) + dist * u / np.linalg.norm(u)
                zero = np.zeros((t, b))
                hits += [paired_test(z, zero, p.alpha).reject, two_look_test(z, zero, first, p.alpha).reject]
            power[str(dist)] = {"one_look": hits[0] / args.draws, "two_looks": hits[1] / args.draws}
        out[name] = {"B": b, "T": t, "first_look": first, "alpha": p.alpha,
                     "type_one_error_at_0.05": rejected / args.draws, "stopped_at_first_look_h0": stopped / args.draws,
                     "power": power}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
