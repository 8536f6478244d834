"""Measure the accuracy guard's size prior on the reference data: how much skill a reused model loses per unit of
ln(training images).

    .venv/bin/python bench/measure_size_prior.py [--preset small] [--seeds 3]

For each reference family (`landmarkers.reference.REFERENCE_URIS`: texture, scene, document and colour pictures no
benchmark stream uses), a model is searched on the full dataset (`TrAutoML`, grouper ``none``, the preset's
budget), then that model is trained afresh, as a reuse is, on the full dataset and on its 50 % subsample with
``--seeds`` seeds each (the preset's final training; on the subsample for the steps it took on the full dataset,
`trautoml.decide.reuse_epochs`). The slope is the drop in validation skill above chance,
(k_full − k_half) / ln(N_full / N_half). Prints one JSON object: each family's slope and the mean over families,
which `trautoml.decide.SIZE_SLOPE` records.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)

    from landmarkers.reference import REFERENCE_URIS
    from trautoml.api import TrAutoML
    from trautoml.data import load_dataset
    from trautoml.decide import reuse_epochs, skill
    from trautoml.models.train import train_and_evaluate
    from trautoml.presets import get_preset

    p = get_preset(args.preset)
    out: dict = {"preset": args.preset, "seeds": args.seeds, "families": {}}
    for family, (full_uri, half_uri) in REFERENCE_URIS.items():
        full, half = load_dataset(full_uri), load_dataset(half_uri)
        with tempfile.TemporaryDirectory() as ws:
            t = TrAutoML(ws, preset=args.preset, grouper="none", tracking=False, quiet=True, executor="serial")
            try:
                spec = t.ingest(full).spec
            finally:
                t.close()
        epochs = p.final_epochs or p.search_epochs
        cap = p.final_max_train or float("inf")
        half_epochs = reuse_epochs(epochs, min(len(full.y_train), cap), min(len(half.y_train), cap))
        drops = []
        for seed in range(args.seeds):
            k_full = skill(train_and_evaluate(spec, full, epochs, seed, max_train=p.final_max_train).val_accuracy,
                           full.num_classes)
            k_half = skill(train_and_evaluate(spec, half, half_epochs, seed, max_train=p.final_max_train).val_accuracy,
                           half.num_classes)
            drops.append((k_full - k_half) / math.log(len(full.y_train) / len(half.y_train)))
        out["families"][family] = {"slope": sum(drops) / len(drops), "per_seed": drops,
                                   "n_train": [len(full.y_train), len(half.y_train)]}
    out["size_slope"] = sum(f["slope"] for f in out["families"].values()) / len(out["families"])
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
