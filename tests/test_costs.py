"""The run-cost model (ensemble_core.costs) and the limits built on it (jobs.check_limits)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ensemble_core import costs
from ensemble_core.config import RunConfig
from ensemble_core.data import Dataset
from ensemble_core.jobs import JobPool, LimitError, Limits, check_limits
from ensemble_core.schedules import lr_schedule
from ensemble_core.shapes import parameter_count

ROOT = Path(__file__).resolve().parents[1]


def dataset(n: int, d: int = 1, n_val: int = 4) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.uniform(-4, 4, size=(n, d))
    y = x[:, 0] ** 3 + rng.normal(0, 3, size=n)
    return Dataset(name="toy", task="regression", feature_names=[f"x{i}" for i in range(d)], target_name="y",
                   x_train=x, y_train=y, x_val=x[:n_val], y_val=y[:n_val], x_test=x[:4], y_test=y[:4],
                   x_mean=x.mean(0), x_std=x.std(0), y_mean=float(y.mean()), y_std=float(y.std()))


def cfg(**kv: object) -> RunConfig:
    return RunConfig().replace(**kv)


SHAPE = costs.DataShape(n_train=1000, n_val=200, n_features=3, n_outputs=2)


# ------------------------------------------------------------------------------- steps
@pytest.mark.parametrize("kv, rows, steps", [
    ({"optim.batch_size": 8, "optim.epochs": 5000}, 10_000, 5000 * 1250),
    ({"optim.batch_size": 32, "optim.epochs": 100}, 1000, 100 * 32),  # ceil(1000 / 32) = 32, the last one short
    ({"optim.batch_size": 5000, "optim.epochs": 7}, 1000, 7),  # the batch is capped at the rows
    ({"optim.batch_size": 1, "optim.epochs": 3}, 17, 51),
    ({"strategy.kind": "bootstrap", "optim.batch_size": 10, "optim.epochs": 4}, 95, 40),  # resamples: same rows
    ({"strategy.kind": "snapshot", "optim.schedule": "cyclic", "strategy.snapshots": 5, "strategy.members": 2,
      "optim.batch_size": 16, "optim.epochs": 50}, 100, 50 * 7),  # epochs are the total over the cycles
])
def test_steps_closed_form(kv: dict, rows: int, steps: int) -> None:
    c = cfg(**kv)
    cost = costs.estimate(c, costs.DataShape(rows, 0, 1, 2))
    assert cost.steps == steps == c.optim.epochs * -(-rows // min(c.optim.batch_size, rows))
    if steps < 10**6:
        assert cost.steps == len(lr_schedule(c, rows))  # what the engine steps


def test_cost_parts_and_explanation() -> None:
    c = cfg(**{"strategy.members": 4, "model.width": 32})
    cost = costs.estimate(c, SHAPE)
    assert cost.parameters == parameter_count(3, 2, c.model)
    assert cost.peak_bytes == pytest.approx(
        cost.process_bytes + cost.data_bytes + cost.epoch_data_bytes + cost.parameter_bytes
        + max(cost.activation_bytes, cost.eval_bytes) + cost.snapshot_bytes + cost.history_bytes)
    assert cost.cpu_seconds > cost.steps * cost.step_seconds * 0.99
    text = cost.explain()
    assert "batch 32 on 1,000 rows is 32 steps per epoch; 100 epochs is 3,200 steps" in text
    assert "CPU-seconds" in text and "MB of memory at its peak" in text


# ------------------------------------------------------------------------------ memory
@pytest.mark.parametrize("key, values", [
    ("optim.batch_size", [1, 64, 1000]),
    ("model.width", [4, 32, 256, 1024]),
    ("model.hidden_layers", [0, 1, 3, 8]),
    ("strategy.members", [1, 5, 20]),
    ("optim.epochs", [1, 100, 5000]),
])
def test_memory_estimate_grows_with_every_size(key: str, values: list) -> None:
    # a smaller batch keeps more learning-rate history (40 bytes a step): allow that much the other way
    base = {"optim.epochs": 1, "model.width": 1024} if key == "optim.batch_size" else {}
    peaks = [costs.estimate(cfg(**{**base, key: v}), SHAPE).run_bytes for v in values]
    assert all(b >= a - 1e5 for a, b in zip(peaks, peaks[1:])) and peaks[-1] > 1.05 * peaks[0]
    rows = [costs.estimate(RunConfig(), costs.DataShape(n, 10, 3, 2)).peak_bytes for n in (10, 1000, 50_000)]
    assert rows == sorted(rows) and rows[0] < rows[-1]


def test_adversarial_costs_more_cpu() -> None:
    plain = costs.estimate(RunConfig(), SHAPE)
    adv = costs.estimate(cfg(**{"strategy.adversarial": True}), SHAPE)
    assert adv.cpu_seconds > 1.3 * plain.cpu_seconds and adv.steps == plain.steps


_CHILD = """
import json, sys, torch
torch.set_num_threads(1)
from ensemble_core.config import RunConfig
from ensemble_core.data import load_dataset
from ensemble_core.training import train
cfg = RunConfig.from_json(sys.argv[1])
train(cfg, load_dataset(cfg.data))
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]
print(json.dumps({"peak": int(hwm) * 1024}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
@pytest.mark.parametrize("kv", [
    {},  # the default run: the process itself dominates
    {"data.n": 2500, "data.val_fraction": 0.1, "data.test_fraction": 0.1, "optim.batch_size": 2000,
     "optim.epochs": 2, "strategy.members": 10, "model.hidden_layers": 1, "model.width": 512},  # activations
])
def test_memory_estimate_within_2x_of_a_real_run(kv: dict) -> None:
    from ensemble_core.data import load_dataset

    c = cfg(**kv)
    est = costs.estimate(c, costs.shape_of(c, load_dataset(c.data)))
    out = subprocess.run([sys.executable, "-c", _CHILD, c.to_json(indent=None)], capture_output=True, text=True,
                         check=True, cwd=ROOT, timeout=300)
    peak = json.loads(out.stdout.strip().splitlines()[-1])["peak"]
    assert 0.5 < est.peak_bytes / peak < 2.0, (est.explain_memory(), peak)
    if kv:  # the run's own part, beyond the bare process, is also within 2x
        assert 0.5 < est.run_bytes / (peak - costs.PROCESS_BYTES) < 2.0


# ------------------------------------------------------------------------------ limits
def test_steps_limit_names_the_runs_numbers() -> None:
    c = cfg(**{"optim.batch_size": 8, "optim.epochs": 5000, "strategy.members": 20, "model.hidden_layers": 0})
    with pytest.raises(LimitError) as err:
        check_limits(c, dataset(10_000))
    assert str(err.value) == (
        "This run is too long: batch 8 on 10,000 rows is 1,250 steps per epoch; 5,000 epochs is 6.25 M steps, "
        "over the classroom limit of 2 M steps. Raise the batch size or lower the epochs.")
    check_limits(c, dataset(10_000), Limits(max_steps=10**7, max_cpu_seconds=1e9))  # configurable


def test_memory_limit_names_the_runs_numbers() -> None:
    c = cfg(**{"optim.batch_size": 15_000, "optim.epochs": 7, "strategy.members": 20, "model.hidden_layers": 1,
               "model.width": 1024})
    with pytest.raises(LimitError) as err:
        check_limits(c, dataset(15_000))
    msg = str(err.value)
    assert msg.startswith("This run would need about ") and "GB of memory at its peak" in msg
    assert "activations of a step at batch 15,000" in msg and "over the classroom limit of 2 GB" in msg
    assert "lower the batch size" in msg
    assert costs.estimate(c, costs.shape_of(c, dataset(15_000))).peak_bytes > 4e9  # the old code measured 5.1 GB


def test_cpu_limit_names_the_runs_numbers() -> None:
    # under the old work limit (20 x 4 parameters x 3,000 epochs x 10,000 rows = 2.4e9) and the step limit
    c = cfg(**{"optim.batch_size": 16, "optim.epochs": 3000, "strategy.members": 20, "model.hidden_layers": 0})
    with pytest.raises(LimitError) as err:
        check_limits(c, dataset(10_000))
    msg = str(err.value)
    assert msg.startswith("This run would take too long: 1.88 M steps of 20 members × 4 parameters at batch 16 "
                          "take about ")
    assert "CPU-seconds, over the classroom limit of 120 CPU-seconds" in msg
    cost = check_limits(RunConfig(), dataset(20))  # the default run passes and says what it costs
    assert cost.steps == 100 and cost.cpu_seconds < 5


def test_old_limits_still_apply_first() -> None:
    with pytest.raises(LimitError, match="rows; the classroom limit is 100 rows"):
        check_limits(RunConfig(), dataset(500), Limits(max_rows=100))
    with pytest.raises(LimitError, match=r"limit is 1\.0e\+06"):
        check_limits(cfg(**{"optim.epochs": 5000}), dataset(500), Limits(max_work=1e6))


def test_pool_submit_applies_the_new_limits() -> None:
    pool = JobPool(1, train_fn=lambda *a, **k: None, heartbeat_timeout=None, torch_threads=0,
                   limits=Limits(max_memory_bytes=1e8))
    try:
        with pytest.raises(LimitError, match="over the classroom limit of 100 MB"):
            pool.submit(RunConfig(), dataset(20), owner="u")
        assert pool.jobs_of("u") == []
    finally:
        pool.shutdown()
