"""Benchmark scripts that no default test would otherwise run keep working (their numbers are not checked here)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str) -> dict:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_gpu_bench_runs_its_whole_path_on_the_cpu_at_tiny_budgets():
    out = run_script("bench/bench_gpu.py", "--cpu-smoke")
    assert out["device"] == "cpu" and out["profile"]["B"] * out["profile"]["T"] == 15
    assert out["search"]["trainings"] >= 1 and 0 <= out["search"]["test_accuracy"] <= 1
    assert out["profile"]["peak_gpu_mib"] == 0.0


def test_join_rate_simulation_separates_far_datasets():
    out = run_script("bench/sim_join_rate.py", "--reps", "20", "--first-look", "6")
    for rates in out["map_and_join_rate"].values():
        assert rates["0.0"][1] >= 0.8 and rates["0.2"][1] <= 0.1   # a family member joins; 20 points away does not
    stops = out["map_and_join_rate"]["S + C̄/T, paired, first look 6"]
    assert stops["0.0"][2] >= 0.5 and stops["0.2"][2] == 0.0       # members stop early, strangers never


def test_gpu_bench_refuses_to_run_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    done = subprocess.run([sys.executable, "bench/bench_gpu.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "no CUDA device here" in done.stderr


def test_two_look_simulation_reports_size_power_and_stops_for_both_presets():
    # 4,000 draws cost ~1.5 s more than 200 (the four `two_look_level` calibrations dominate: ~9 s in all). Under H0
    # the Type-I error at α = 0.05 is binomial (sd 0.0034 at 4,000 draws) and a dataset stops at the first look with
    # probability 1 − futility = 0.8 (sd 0.0063): both within 4 sd (Type-I error in [0.036, 0.064], i.e. ±28 % of α;
    # stops in [0.775, 0.825]). Measured (seed 0): 0.048 and 0.053; 0.797 and 0.799.
    draws = 4000
    out = run_script("bench/sim_two_look.py", "--draws", str(draws))
    assert out["draws"] == draws
    for name in ("small", "paper"):
        r = out[name]
        assert r["first_look"] < r["T"]
        assert abs(r["type_one_error_at_0.05"] - 0.05) <= 4 * np.sqrt(0.05 * 0.95 / draws), r
        assert abs(r["stopped_at_first_look_h0"] - 0.8) <= 4 * np.sqrt(0.8 * 0.2 / draws), r
        assert r["power"]["3.0"]["two_looks"] >= r["power"]["2.0"]["two_looks"]
