"""The training loop: real training on small real files and on Fashion-MNIST, no mocks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from te_sweep.core.config import TrialConfig, resolve
from te_sweep.core.data import load_device_data, train_batches
from te_sweep.core.metrics import METRIC_NAMES
from te_sweep.core.train import Trainer, make_cuda_deterministic, resolve_device, run_trial

TIME_KEYS = {"epoch_time_s", "te_time_s", "te_compile_s", "eval_time_s", "elapsed_s"}


def without_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in records]


def blocks_trial(npz: Path, **changes) -> TrialConfig:
    settings = dict(dataset=str(npz), max_epochs=3, target=0.99, window=100, lr=0.05, device="cpu")
    settings.update(changes)
    return TrialConfig(**settings)


def test_reaches_target_and_reports_every_metric(blocks_npz):
    reported = []
    result = run_trial(blocks_trial(blocks_npz, max_epochs=6, target=0.9), reported.append)
    assert result.status == "complete"
    assert result.epochs_to_target == len(reported) == result.epochs_run
    assert reported[-1]["train_acc"] >= 0.9
    assert all(r["train_acc"] < 0.9 for r in reported[:-1])
    assert result.seconds_to_target == pytest.approx(sum(r["epoch_time_s"] for r in reported))
    for i, record in enumerate(reported, start=1):
        assert tuple(record) == METRIC_NAMES
        assert record["epoch"] == i
        assert 0 <= record["te_time_s"] <= record["epoch_time_s"]
        assert 0 <= record["te_active_fraction"] <= 1
        assert record["lr"] == 0.05
    assert reported[-1]["te_mean"] is not None and reported[-1]["te_mean"] >= 0


def test_censored_when_the_target_is_out_of_reach(blocks_npz):
    result = run_trial(blocks_trial(blocks_npz, max_epochs=2, target=1.0, lr=1e-5), lambda r: None)
    assert result.status == "censored"
    assert result.epochs_to_target is None and result.seconds_to_target is None
    assert result.epochs_run == 2


def test_test_acc_target_metric(blocks_npz):
    result = run_trial(
        blocks_trial(blocks_npz, max_epochs=6, target=0.9, target_metric="test_acc"), lambda r: None
    )
    assert result.status == "complete"
    assert result.records[-1]["test_acc"] >= 0.9


def test_same_seed_same_result_and_seeds_differ(blocks_npz):
    def run(seed: int) -> list[dict]:
        return without_times(
            run_trial(
                blocks_trial(blocks_npz, max_epochs=2, seed=seed, pair_fraction=0.3), lambda r: None
            ).records
        )

    first = run(1)
    assert run(1) == first
    assert run(2) != first


def test_non_finite_loss_ends_the_trial_as_diverged(blocks_npz):
    result = run_trial(blocks_trial(blocks_npz, max_epochs=4, lr=1e12), lambda r: None)
    assert result.status == "diverged"
    assert result.epochs_run == 1
    assert result.records[0]["train_loss"] is None


def test_baseline_has_no_feedback_and_no_te_cost(blocks_npz):
    trainer = baseline_trainer(blocks_npz)
    assert trainer.feedback is None
    record = trainer.train_epoch()
    assert record["te_time_s"] == 0.0
    assert record["te_active_fraction"] == 0.0
    assert record["te_mean"] is None


def test_te_feedback_changes_training(blocks_npz):
    def run(scale: float) -> list[dict]:
        return without_times(
            run_trial(
                blocks_trial(blocks_npz, max_epochs=1, te_scale=scale, threshold=0.3),
                lambda r: None,
            ).records
        )

    with_te, baseline = run(5.0), run(0.0)
    assert with_te[0]["te_active_fraction"] > 0
    assert with_te[0]["train_loss"] != baseline[0]["train_loss"]


@pytest.mark.parametrize(
    "mode, threshold, te_scale", [("grad", 0.1, 1.0), ("paper", 0.5, 1.0), ("grad", 0.1, 0.0)]
)  # the last: a baseline
def test_resume_from_an_epoch_boundary_is_identical(blocks_npz, mode, threshold, te_scale):
    """Batches of 64 against a window of 100 samples: the TE ring buffers carry samples over
    the epoch boundary, so a resume that lost the feedback's state would differ (checked in
    grad mode, where the feedback is active after the first epoch)."""
    cfg = blocks_trial(
        blocks_npz,
        max_epochs=3,
        target=1.0,
        mode=mode,
        threshold=threshold,
        pair_fraction=0.5,
        lr=0.002,
        batch_size=64,
        te_scale=te_scale,
    )
    states = []
    full = run_trial(cfg, lambda r: None, on_epoch_end=lambda t: states.append(t.state_dict()))
    assert full.epochs_run == 3, "the trial must run past the resumed epoch"
    if mode == "grad" and te_scale:
        assert all(r["te_active_fraction"] > 0 for r in full.records[1:]), full.records
    resumed = run_trial(cfg, lambda r: None, trainer_state=states[0])
    assert resumed.status == full.status
    assert without_times(resumed.records) == without_times(full.records)


def test_lr_schedule_of_cifar_preset_steps_down(tmp_path):
    from conftest import write_blocks_npz

    npz = write_blocks_npz(tmp_path / "rgb.npz", n_train=40, n_test=20, size=32, channels=3)
    cfg = TrialConfig(
        dataset=str(npz), preset="cifar10", mode="paper", max_epochs=1, device="cpu", window=20
    )
    from te_sweep.core.config import resolve

    trainer = Trainer(
        resolve(cfg), load_device_data(str(npz), None, torch.device("cpu")), torch.device("cpu")
    )
    assert trainer.scheduler is not None and trainer.scheduler.step_size == 20
    assert trainer.optimizer.param_groups[0]["momentum"] == 0.9


@pytest.mark.parametrize("mode", ["grad", "paper"])
def test_real_fashion_mnist_learns(fashion_mnist, mode):
    result = run_trial(
        TrialConfig(
            dataset="fashion-mnist",
            subset=2000,
            max_epochs=1,
            device="cpu",
            mode=mode,
            lr=0.05,
            momentum=0.9,
        ),
        lambda r: None,
    )
    record = result.records[0]
    assert record["test_acc"] > 0.4, record  # 10 classes: chance is 0.1
    assert record["te_mean"] is not None


@pytest.mark.parametrize("preset, size", [("cifar10", 32), ("svhn", 32), ("stl10", 64)])
def test_single_fc_presets_train_with_paper_feedback(tmp_path, preset, size):
    """The single-FC networks: logits -> softmax pairs, W <- (I - T)^T W, end to end."""
    from conftest import write_blocks_npz

    npz = write_blocks_npz(tmp_path / "rgb.npz", n_train=64, n_test=16, size=size, channels=3)
    result = run_trial(
        TrialConfig(
            dataset=str(npz),
            preset=preset,
            mode="paper",
            max_epochs=1,
            device="cpu",
            window=16,
            batch_size=8,
            threshold=0.05,
            te_scale=50.0,
        ),
        lambda r: None,
    )
    record = result.records[0]
    assert result.status in ("complete", "censored")
    assert record["train_loss"] is not None and record["te_mean"] is not None
    assert record["te_time_s"] > 0


def baseline_trainer(npz: Path, **changes) -> Trainer:
    from te_sweep.core.config import resolve

    cfg = resolve(blocks_trial(npz, te_scale=0.0, **changes))
    return Trainer(
        cfg, load_device_data(cfg.dataset, None, torch.device("cpu")), torch.device("cpu")
    )


def test_train_loss_is_the_mean_over_the_epochs_batches(blocks_npz):
    """The loop replayed by hand on a second trainer of the same seed (same weights, dropout
    draws and batch order): its record's train_loss is the mean of the batch losses."""
    record = baseline_trainer(blocks_npz, batch_size=64).train_epoch()
    replay = baseline_trainer(blocks_npz, batch_size=64)
    replay.model.train()
    losses = []
    for x, y in train_batches(replay.data.train_x, replay.data.train_y, 64, replay.batch_generator):
        loss = F.cross_entropy(replay.model(x), y)
        replay.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        replay.optimizer.step()
        losses.append(loss.item())
    assert len(losses) == 10  # 600 images in batches of 64: nine full, one of 24
    assert record["train_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-5)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_the_lr_control_scales_only_the_last_layers_step(blocks_npz, scale):
    trainer = baseline_trainer(blocks_npz, lr=0.05, last_lr_scale=scale)
    rest, last = trainer.optimizer.param_groups
    assert rest["lr"] == 0.05 and last["lr"] == pytest.approx(0.05 * scale)
    assert {id(p) for p in last["params"]} == {id(p) for p in trainer.model.last_fc.parameters()}
    assert len(rest["params"]) + len(last["params"]) == len(list(trainer.model.parameters()))
    (one,) = baseline_trainer(blocks_npz, lr=0.05).optimizer.param_groups  # scale 1: one group
    assert one["lr"] == 0.05


@pytest.mark.parametrize("metric", ["train_acc", "test_acc"])
def test_the_start_value_is_measured_on_the_target_metrics_split(tmp_path, metric):
    from conftest import write_blocks_npz

    noisy = write_blocks_npz(tmp_path / "noisy.npz", flip=0.3)  # class shares differ by split
    # The name as parsed from a space file or the command line: an equal string, but not the
    # literal's object (a comparison by identity would take the wrong split).
    read_metric = json.loads(json.dumps(metric))
    assert read_metric == metric and read_metric is not metric
    trainer = baseline_trainer(noisy, target_metric=read_metric)
    on_train = trainer.evaluate(trainer.data.train_x, trainer.data.train_y)[1]
    on_test = trainer.evaluate(trainer.data.test_x, trainer.data.test_y)[1]
    assert on_train != on_test  # else this test could not tell the splits apart
    assert trainer.measure_start() == (on_train if metric == "train_acc" else on_test)


def test_a_cpu_trial_leaves_torchs_determinism_settings_alone(blocks_npz, monkeypatch):
    """make_cuda_deterministic() is for CUDA trials only: on the CPU it would switch torch's
    deterministic algorithms on for the whole worker process."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    torch.use_deterministic_algorithms(False)
    run_trial(blocks_trial(blocks_npz, max_epochs=1, te_scale=0.0), lambda r: None)
    assert not torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_make_cuda_deterministic_sets_torch_to_deterministic_warning_only(monkeypatch):
    """The CUDA settings as documented: cuDNN deterministic and not benchmarking, cuBLAS's
    fixed workspace, torch's deterministic algorithms on but warning, not failing, on an
    operation that has no deterministic CUDA version (a trial must not die of one)."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    try:
        make_cuda_deterministic()
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)


def test_resolve_device_auto_is_cuda_when_there_is_one_and_names_are_kept():
    best = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("auto") == best
    assert resolve_device(json.loads('"auto"')) == best  # as read from a file: another object
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("meta") == torch.device("meta")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_cpu_evaluation_batches_follow_the_networks_largest_activation(tmp_path):
    """A 28 x 28 image set on the Fashion-MNIST network: 83 images per evaluation pass on the
    CPU (data.eval_batch_size), not the GPU's 500, which page-faulted (BENCHMARKS.md)."""
    from conftest import write_blocks_npz

    npz = write_blocks_npz(tmp_path / "28.npz", n_train=8, n_test=8, size=28)
    assert baseline_trainer(npz).eval_batch == 83


def test_evaluate_is_the_mean_loss_and_accuracy_computed_by_hand(blocks_npz):
    """(mean cross-entropy, share of argmax == label), against the model run by hand, on the
    whole split (several evaluation batches) and on a single image."""
    trainer = baseline_trainer(blocks_npz)
    trainer.train_epoch()  # a model that gets some images right and some wrong
    x, y = trainer.data.test_x, trainer.data.test_y
    trainer.model.eval()
    with torch.no_grad():
        logits = trainer.model(x)
    # Every labelling shifted by one class as well: some predictions then sit above their
    # label and some below, so only an exact match counts as correct.
    for labels in [(y + shift) % 4 for shift in range(4)]:
        for count in (x.shape[0], 1):
            loss, accuracy = trainer.evaluate(x[:count], labels[:count])
            expected = F.cross_entropy(logits[:count], labels[:count]).item()
            assert loss == pytest.approx(expected, rel=1e-5)
            hits = (logits[:count].argmax(dim=1) == labels[:count]).float().mean().item()
            assert accuracy == hits
    assert 0 < trainer.evaluate(x, y)[1] < 1


def test_one_batch_epoch_reports_that_batchs_loss_and_the_first_groups_lr(blocks_npz):
    """An epoch of a single batch: train_loss is that batch's loss (a mean over one step);
    the reported lr is the network's, not the LR control's scaled last layer."""
    record = baseline_trainer(blocks_npz, batch_size=1000, lr=0.05, last_lr_scale=3.0).train_epoch()
    replay = baseline_trainer(blocks_npz, batch_size=1000, lr=0.05, last_lr_scale=3.0)
    replay.model.train()  # the same seed: the same weights, dropout draws and batch
    ((x, y),) = train_batches(
        replay.data.train_x, replay.data.train_y, 1000, replay.batch_generator
    )
    expected = F.cross_entropy(replay.model(x), y).item()
    assert record["train_loss"] == pytest.approx(expected, rel=1e-5)
    assert record["lr"] == 0.05


# --- the evaluation schedule (other_split_every) ------------------------------------------------


def evaluated_epochs(records: list[dict], metric: str) -> list[int]:
    return [r["epoch"] for r in records if r[metric] is not None]


def test_the_other_split_is_evaluated_on_its_schedule_and_at_the_last_epoch(blocks_npz):
    """Censored at epoch 7 with other_split_every 3: the test split at 3, 6 and 7 (the last),
    null in between, its loss with it; the target's split every epoch."""
    result = run_trial(
        blocks_trial(blocks_npz, max_epochs=7, target=1.0, lr=1e-5, other_split_every=3),
        lambda r: None,
    )
    assert result.status == "censored"
    assert evaluated_epochs(result.records, "train_acc") == [1, 2, 3, 4, 5, 6, 7]
    assert evaluated_epochs(result.records, "test_acc") == [3, 6, 7]
    assert evaluated_epochs(result.records, "test_loss") == [3, 6, 7]


def test_a_trial_ending_at_its_target_evaluates_the_other_split_there(blocks_npz):
    result = run_trial(
        blocks_trial(blocks_npz, max_epochs=8, target=0.9, other_split_every=4), lambda r: None
    )
    assert result.status == "complete" and result.epochs_run not in (4, 8)
    assert evaluated_epochs(result.records, "test_acc") == [
        e for e in range(1, result.epochs_run + 1) if e % 4 == 0 or e == result.epochs_run
    ]


def test_with_test_acc_as_target_the_training_split_is_the_scheduled_one(blocks_npz):
    result = run_trial(
        blocks_trial(
            blocks_npz,
            max_epochs=5,
            target=1.0,
            lr=1e-5,
            target_metric="test_acc",
            other_split_every=2,
        ),
        lambda r: None,
    )
    assert evaluated_epochs(result.records, "test_acc") == [1, 2, 3, 4, 5]
    assert evaluated_epochs(result.records, "train_acc") == [2, 4, 5]


def test_the_schedule_changes_no_trained_number(blocks_npz):
    """Evaluation draws no random numbers and changes no weight: evaluating the other split
    every epoch or at the end trains the same model, to the same values."""

    def run(every: int) -> list[dict]:
        return without_times(
            run_trial(
                blocks_trial(
                    blocks_npz, max_epochs=3, target=1.0, lr=0.005, other_split_every=every
                ),
                lambda r: None,
            ).records
        )

    each, last = run(1), run(5)
    assert evaluated_epochs(each, "test_acc") == [1, 2, 3]
    assert evaluated_epochs(last, "test_acc") == [3]
    assert [r["train_acc"] for r in each] == [r["train_acc"] for r in last]
    assert [r["train_loss"] for r in each] == [r["train_loss"] for r in last]
    assert each[-1] == last[-1]


def test_a_resumed_trial_keeps_the_start_value_it_measured(blocks_npz):
    """The start value is measured once, before the first epoch; a trial resumed from a
    checkpoint keeps it, so its first-epoch crossing is placed the same way."""
    cfg = resolve(blocks_trial(blocks_npz, max_epochs=3))
    data = load_device_data(cfg.dataset, cfg.subset, torch.device("cpu"))
    first = Trainer(cfg, data, torch.device("cpu"))
    measured = first.measure_start()
    first.train_epoch()
    resumed = Trainer(cfg, data, torch.device("cpu"))
    resumed.load_state_dict(first.state_dict())
    assert resumed.start_value == measured is not None


def test_a_first_epoch_crossing_is_placed_from_the_start_value(blocks_npz):
    """A target reached in the first epoch: the outcome interpolates from the untrained
    model's value (outcome.fractional_epochs), not the whole epoch."""
    cfg = blocks_trial(blocks_npz, max_epochs=3, target=0.4)
    result = run_trial(cfg, lambda r: None)
    assert result.epochs_to_target == 1
    trainer = Trainer(
        resolve(cfg), load_device_data(cfg.dataset, None, torch.device("cpu")), torch.device("cpu")
    )
    start, reached = trainer.measure_start(), result.records[0]["train_acc"]
    assert start < 0.4 <= reached
    assert result.epochs_to_target_frac == pytest.approx((0.4 - start) / (reached - start))
