"""Measure, on the reference data, how long a reused model should train on a smaller dataset: the same epochs as
the group's searched model, or the same number of optimizer steps.

    .venv/bin/python bench/measure_reuse_epochs.py [--preset small] [--seeds 3]

For each reference family (`landmarkers.reference.REFERENCE_URIS`: texture, scene, document and colour pictures no
benchmark stream uses) a model is searched on the full dataset (`TrAutoML`, grouper ``none``, the preset's budget)
and on its 50 % subsample. The full dataset's model is then trained afresh on the subsample, as a reuse is, for the
preset's final epochs E and for E · N_full / N_half epochs (the steps its final training took on the full dataset),
``--seeds`` seeds each. Prints one JSON object: per family the validation accuracy of the subsample's own searched
model and of both reuses (mean over seeds), and the means over families.
"""
from __future__ import annotations

import argparse
import json
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
    from trautoml.models.train import train_and_evaluate
    from trautoml.presets import get_preset

    p = get_preset(args.preset)
    epochs = p.final_epochs or p.search_epochs
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
        ratio = len(full.y_train) / len(half.y_train)
        reuse = {"same_epochs": [], "same_steps": []}
        for seed in range(args.seeds):
            for key, e in (("same_epochs", epochs), ("same_steps", epochs * ratio)):
                reuse[key].append(train_and_evaluate(own["full"].spec, half, e, seed,
                                                     max_train=p.final_max_train).val_accuracy)
        out["families"][family] = {"n_train": [len(full.y_train), len(half.y_train)],
                                   "half_own_search_val": own["half"].val_accuracy,
                                   "full_own_search_val": own["full"].val_accuracy,
                                   **{f"half_reuse_{k}_val": sum(v) / len(v) for k, v in reuse.items()},
                                   "per_seed": reuse}
    fams = out["families"].values()
    for k in ("half_own_search_val", "half_reuse_same_epochs_val", "half_reuse_same_steps_val"):
        out[f"mean_{k}"] = sum(f[k] for f in fams) / len(out["families"])
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
