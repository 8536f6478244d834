"""Measure, on the reference data, what a reused model reaches on a smaller dataset: for the same epochs (the one
training rule, `trautoml.decide.training_epochs`) and for the same steps, and how much skill it loses per unit of
ln(training images) under the shipped rule (the accuracy guard's size prior, `trautoml.decide.SIZE_SLOPE`).

    .venv/bin/python bench/measure_reuse.py [--preset small] [--seeds 3]

For each reference family (`landmarkers.reference.REFERENCE_URIS`: texture, scene, document and colour pictures no
benchmark stream uses), a model is searched on the full dataset and on its 50 % subsample (`TrAutoML`, grouper
``none``, the preset's budget). The full dataset's model is then trained afresh, as a reuse is, ``--seeds`` seeds
each: on the full dataset for the preset's final epochs E, and on the subsample for E epochs ("same epochs") and
for E · N_full / N_half epochs ("same steps"). Prints one JSON object: per family
the subsample's own searched model's validation accuracy, both reuses' (mean over seeds), and the size slope
(k_full − k_half) / ln(N_full / N_half) in validation skill above chance under the shipped rule; and the means over
families.
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
    from trautoml.decide import skill
    from trautoml.models.train import train_and_evaluate
    from trautoml.presets import get_preset

    p = get_preset(args.preset)
    epochs = p.final_epochs or p.search_epochs
    cap = p.final_max_train or float("inf")
    out: dict = {"preset": args.preset, "seeds": args.seeds, "epochs": epochs, "families": {}}
    for family, (full_uri, half_uri) in REFERENCE_URIS.items():
        full, half = load_dataset(full_uri), load_dataset(half_uri)
        own = {}
        for name, ds in (("full", full), ("half", half)):
            with tempfile.TemporaryDirectory() as ws:
                t = TrAutoML(ws, preset=args.preset, grouper="none", tracking=False, quiet=True, executor="serial")
                try:
                    own[name] = t.ingest(ds)
                finally:
                    t.close()
        spec = own["full"].spec
        steps = epochs * min(len(full.y_train), cap) / min(len(half.y_train), cap)
        val = {"full": [], "same_epochs": [], "same_steps": []}
        for seed in range(args.seeds):
            for key, ds, e in (("full", full, epochs), ("same_epochs", half, epochs), ("same_steps", half, steps)):
                val[key].append(train_and_evaluate(spec, ds, e, seed, max_train=p.final_max_train).val_accuracy)
        slopes = [(skill(f, full.num_classes) - skill(h, half.num_classes)) / math.log(len(full.y_train) /
                                                                                     len(half.y_train))
                  for f, h in zip(val["full"], val["same_epochs"])]  # the shipped rule
        out["families"][family] = {"n_train": [len(full.y_train), len(half.y_train)],
                                   "half_own_search_val": own["half"].val_accuracy,
                                   **{f"reuse_{k}_val": sum(v) / len(v) for k, v in val.items()},
                                   "size_slope": sum(slopes) / len(slopes), "per_seed": val}
    fams = list(out["families"].values())
    for k in ("half_own_search_val", "reuse_same_epochs_val", "reuse_same_steps_val", "size_slope"):
        out[f"mean_{k}"] = sum(f[k] for f in fams) / len(fams)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
