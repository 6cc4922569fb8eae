"""What only a GPU can check: determinism on CUDA, the trial's device kept current, and the
timer on that device's stream. Skipped without CUDA (CI has none); BENCHMARKS.md section 5's
runbook runs this file on the first GPU machine."""

from __future__ import annotations

import pytest
import torch
from test_train import blocks_trial, without_times

from te_sweep.core.timing import DeviceTimer
from te_sweep.core.train import run_trial

CUDA = torch.cuda.is_available()
pytestmark = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")


@pytest.mark.parametrize("mode", ["grad", "paper"])
def test_same_seed_same_gpu_same_records(blocks_npz, mode):
    def run() -> list[dict]:
        cfg = blocks_trial(
            blocks_npz,
            device="cuda:0",
            max_epochs=2,
            mode=mode,
            seed=3,
            pair_fraction=0.5,
            te_estimator="effective",
        )
        return without_times(run_trial(cfg, lambda r: None).records)

    first = run()
    assert run() == first  # bit for bit: CUBLAS_WORKSPACE_CONFIG, cuDNN, deterministic ops


def test_a_trial_on_the_last_gpu_runs_and_times_there(blocks_npz):
    last = torch.cuda.device_count() - 1
    before = torch.cuda.current_device()
    result = run_trial(
        blocks_trial(blocks_npz, device=f"cuda:{last}", max_epochs=1), lambda r: None
    )
    assert result.device == torch.cuda.get_device_name(last)
    assert torch.cuda.current_device() == before  # the trial's device was current only inside
    record = result.records[-1]
    assert 0 < record["te_time_s"] <= record["epoch_time_s"]


def test_the_timer_times_its_own_devices_stream():
    """Work queued on the timer's device is timed even when another device is current."""
    count = torch.cuda.device_count()
    if count < 2:
        pytest.skip("needs two CUDA devices")
    device = torch.device("cuda", 1)
    a = torch.randn(4096, 4096, device=device)
    timer = DeviceTimer(device)
    with torch.cuda.device(0), timer.region():
        for _ in range(20):
            a = a @ a.T / 4096
    seconds = timer.read_and_reset()
    assert seconds > 1e-3  # twenty 4096^2 products, not an idle stream's few microseconds
