"""Search cost in a run's record: cumulative cost in proposal order, the cost to reach the best trial,
GPU seconds when any trial had a GPU, and the best-so-far plot's cost panel."""
import pytest

from nas.search.cost import cost_key, cost_points, cost_summary, cumulative_costs
from nas.search.plots import plot_best_so_far


def record(index, status="TERMINATED", val=None, cpu=0.0, gpu=0.0, params=10):
    return {"index": index, "status": status, "val_accuracy": val, "cpu_s": cpu, "gpu_s": gpu, "params": params}


RECORDS = [record(2, val=0.7, cpu=30.0), record(0, val=0.5, cpu=10.0), record(1, "ERROR", cpu=5.0),
           record(3, val=0.6, cpu=20.0), record(4, "RUNNING", cpu=None)]


def test_cumulative_cost_follows_the_proposal_order_and_counts_every_trial():
    assert cost_key(RECORDS) == "cpu_s"
    assert cumulative_costs(RECORDS) == [10.0, 15.0, 45.0, 65.0, 65.0]
    done, curve = cost_points(RECORDS)
    assert done == [(10.0, 0.5), (45.0, 0.7), (65.0, 0.6)]
    assert curve == [(10.0, 0.5), (15.0, 0.5), (45.0, 0.7), (65.0, 0.7), (65.0, 0.7)]


def test_summary_states_the_totals_and_the_cost_to_reach_the_best_trial():
    summary = cost_summary(RECORDS)
    assert summary == {"unit": "CPU seconds", "metric": "cpu_s", "cpu_s": 65.0, "gpu_s": 0.0,
                       "to_best_s": 45.0, "best_trial": 3}
    gpu = [record(0, val=0.9, cpu=50.0, gpu=2.5), record(1, val=0.8, cpu=40.0, gpu=1.5)]
    assert cost_summary(gpu)["unit"] == "GPU seconds" and cost_summary(gpu)["to_best_s"] == pytest.approx(2.5)
    assert cost_summary([record(0, "ERROR", cpu=1.0)])["to_best_s"] is None


def test_best_so_far_plot_has_a_cost_panel(tmp_path):
    from PIL import Image

    path = plot_best_so_far(RECORDS, tmp_path / "best.png", title="t")
    width, height = Image.open(path).size
    assert width > 1.5 * height  # two panels side by side
