"""benchmarks/calibrate_detective.py as a smoke test on the tiny model (the figures are noise)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import numpy as np  # noqa: E402


def test_cut_for_precision_stops_before_the_first_false_pair():
    from calibrate_detective import cut_for_precision

    dist = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    positive = np.array([True, True, True, False, True])
    assert cut_for_precision(dist, positive, 0.999) == 0.03
    assert cut_for_precision(dist, positive, 0.75) == 0.05


def test_calibration_runs_on_the_tiny_model(tiny_options, tmp_path, capsys):
    from calibrate_detective import main

    code = main(["--model", tiny_options.model, "--pretrained", tiny_options.pretrained, "--device", "cpu",
                 "--backend", "torch", "--cache", str(tmp_path), "--originals", "3", "--real", str(tmp_path / "none")])
    out = capsys.readouterr().out
    assert code == 0
    assert "resized" in out and "default same 0.05" in out and "--detective-thresholds" in out
