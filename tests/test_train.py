"""Tests for archlab.train: loss, optimizers, schedules, EMA, clipping, precise BN, seeds, runs,
runtime, config validation and overrides, the ``archlab train`` CLI."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from archlab.arch.spec import ArchSpec
from archlab.cli import main
from archlab.train import trainer as train_mod
from archlab.train.config import (
    PRESETS,
    ConfigError,
    RunResult,
    TrainConfig,
    config_from_overrides,
    preset,
    validate_config,
)
from archlab.train.data import batches, load_dataset
from archlab.train.optim import Ema, RMSpropTF, lr_at, param_groups, smoothed_cross_entropy
from archlab.train.runtime import compile_pays, cpu_has_fast_bf16, resolve_runtime
from archlab.train.trainer import PRECISE_BN_SALT, Trainer, train

# a ~1.6 M-MAC version of the mini model: a run of a few hundred images takes about a second
TINY = ArchSpec(width_mult=0.25, depth_mult=0.5)
QUICK = TrainConfig(dataset="synthetic:200", epochs=0.5, batch_size=32, lr=0.05, threads=1)
TIMING = ("images_per_s", "wall_s")


@pytest.fixture(scope="module")
def small() -> object:
    return load_dataset("synthetic:200")


def run(data: object, spec: ArchSpec = TINY, **changes: object) -> RunResult:
    return train(spec, QUICK.replace(**changes), dataset=data, progress=False)


@pytest.fixture
def spy_step(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, torch.Tensor]]:
    """Record every parameter's gradient (by name) just before each optimizer step."""
    records: list[dict[str, torch.Tensor]] = []
    build = train_mod.build_optimizer

    def spying(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        opt = build(model, config)
        names = {id(p): n for n, p in model.named_parameters()}
        step = opt.step

        def recorded(*args: object, **kwargs: object) -> object:
            records.append(
                {
                    names[id(p)]: p.grad.detach().clone()
                    for g in opt.param_groups
                    for p in g["params"]
                    if p.grad is not None
                }
            )
            return step(*args, **kwargs)

        opt.step = recorded
        return opt

    monkeypatch.setattr(train_mod, "build_optimizer", spying)
    return records


def global_norm(grads: dict[str, torch.Tensor]) -> float:
    return torch.linalg.vector_norm(torch.stack([g.norm() for g in grads.values()])).item()


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


# --- loss -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.1, 0.5, 0.9])
def test_smoothed_cross_entropy_equals_torch_label_smoothing(eps: float) -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(16, 7, generator=g) * 3
    target = torch.randint(0, 7, (16,), generator=g)
    ours = smoothed_cross_entropy(logits, target, eps)
    torch.testing.assert_close(ours, F.cross_entropy(logits, target, label_smoothing=eps))


def test_smoothed_cross_entropy_spreads_eps_over_all_classes() -> None:
    # uniform logits: every class has log-probability -log K whatever the targets
    logits = torch.zeros(3, 4)
    loss = smoothed_cross_entropy(logits, torch.tensor([0, 1, 2]), 0.3)
    assert loss.item() == pytest.approx(math.log(4))
    # a confident right answer costs more under smoothing: the target is no longer one-hot
    sharp = torch.tensor([[10.0, 0.0, 0.0, 0.0]])
    y = torch.tensor([0])
    assert smoothed_cross_entropy(sharp, y, 0.1) > smoothed_cross_entropy(sharp, y, 0.0) + 0.5


# --- optimizers -----------------------------------------------------------------------------------


def test_rmsprop_tf_step_by_hand() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = RMSpropTF([p], lr=0.1, alpha=0.9, eps=1.0, momentum=0.5)
    for _ in range(2):
        p.grad = torch.tensor([3.0, 0.5])
        opt.step()
    g = torch.tensor([3.0, 0.5])
    ms1 = 0.9 * 1.0 + 0.1 * g**2  # TF starts the mean square at 1
    mom1 = 0.1 * g / (ms1 + 1.0).sqrt()  # eps inside the square root
    ms2 = 0.9 * ms1 + 0.1 * g**2
    mom2 = 0.5 * mom1 + 0.1 * g / (ms2 + 1.0).sqrt()
    torch.testing.assert_close(p.detach(), torch.tensor([1.0, -2.0]) - mom1 - mom2)


def test_weight_decay_skips_batchnorm_and_biases() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    decay, no_decay = param_groups(net, 1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [net[0].weight.shape]
    assert len(no_decay["params"]) == 3  # conv bias, BN weight, BN bias


# --- schedules ------------------------------------------------------------------------------------


def lrs(total: int = 100, per_epoch: int = 10, **changes: object) -> list[float]:
    cfg = TrainConfig(lr=0.045, **changes)
    return [lr_at(cfg, s, per_epoch, total) for s in range(total)]


def test_exp_is_a_staircase_of_094_every_2_epochs() -> None:
    curve = lrs(schedule="exp")
    assert curve[:20] == [pytest.approx(0.045)] * 20
    assert curve[20:40] == [pytest.approx(0.045 * 0.94)] * 20
    assert curve[99] == pytest.approx(0.045 * 0.94**4)


def test_cosine_falls_from_lr_through_half_to_zero() -> None:
    curve = lrs(schedule="cosine")
    assert curve[0] == pytest.approx(0.045)
    assert curve[50] == pytest.approx(0.0225)
    assert all(a > b for a, b in zip(curve, curve[1:], strict=False))
    assert 0 < curve[-1] < 1e-4


def test_onecycle_matches_torch_onecyclelr() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.045)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.045, total_steps=100)
    expected = []
    for _ in range(100):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs(schedule="onecycle") == pytest.approx(expected, rel=1e-9)


def test_constant_is_constant() -> None:
    assert set(lrs(schedule="constant")) == {0.045}


def test_warmup_ramps_linearly_then_follows_schedule() -> None:
    plain = lrs(schedule="exp")
    warm = lrs(schedule="exp", warmup_epochs=2.0)  # 20 steps
    assert warm[:20] == pytest.approx([0.045 * (s + 1) / 20 for s in range(20)])
    assert warm[20:] == plain[20:]


def test_training_applies_the_schedule(small: object) -> None:
    result = run(small, schedule="exp", exp_every=1.0, exp_gamma=0.5, epochs=2, lr=0.04)
    assert [row["lr"] for row in result.history] == pytest.approx([0.04, 0.02])


# --- EMA, clipping, aux loss ----------------------------------------------------------------------


def test_ema_follows_tf_decay_ramp() -> None:
    net = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    ema = Ema(net, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update()  # decay min(0.9, 2/11): the ramp
    assert ema.model.weight.item() == pytest.approx(9 / 11)
    ema.update()  # decay min(0.9, 3/12)
    assert ema.model.weight.item() == pytest.approx(0.25 * 9 / 11 + 0.75)
    low = Ema(torch.nn.Linear(1, 1, bias=False), decay=0.1)
    with torch.no_grad():
        low.model.weight.zero_()
    low._src[0].data.fill_(1.0)
    low.update()  # decay min(0.1, 2/11) = 0.1
    assert low.model.weight.item() == pytest.approx(0.9)


def test_swa_is_the_mean_of_the_weights_from_its_first_step_on() -> None:
    net = torch.nn.Linear(1, 1, bias=False)
    swa = Ema(net, swa_from=3)
    for value in (5.0, 7.0, 1.0, 2.0, 6.0):  # the weights after updates 1..5
        with torch.no_grad():
            net.weight.fill_(value)
        swa.update()
    assert swa.model.weight.item() == pytest.approx((1.0 + 2.0 + 6.0) / 3)  # updates 3, 4, 5
    with pytest.raises(ValueError, match="exactly one"):
        Ema(net, 0.9, swa_from=1)


@pytest.fixture
def evaluated(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Trainer, torch.nn.Module]]:
    """Record (trainer, model) of every Trainer.predict call: what each evaluation scored."""
    seen: list[tuple[Trainer, torch.nn.Module]] = []
    predict = Trainer.predict

    def spy(self: Trainer, model: torch.nn.Module, x: torch.Tensor) -> object:
        seen.append((self, model))
        return predict(self, model, x)

    monkeypatch.setattr(Trainer, "predict", spy)
    return seen


def test_swa_start_averages_the_last_part_of_training(small: object, evaluated: list) -> None:
    run(small, swa_start=0.5, ema_decay=None)
    trainer, model = evaluated[-1]
    assert model is trainer.ema.model  # the average is what is evaluated
    assert trainer.ema.swa_from == trainer.total_steps // 2 + 1
    assert trainer.ema.updates == trainer.total_steps
    # the averaged weights are not the last step's
    raw = dict(trainer.net.named_parameters())
    assert any(not torch.equal(p, raw[n]) for n, p in trainer.ema.model.named_parameters())


def test_ema_model_is_what_is_evaluated(small: object, evaluated: list) -> None:
    run(small, ema_decay=0.5)
    trainer, model = evaluated[-1]
    assert model is trainer.ema.model
    raw = dict(trainer.net.named_parameters())
    assert any(not torch.equal(p, raw[n]) for n, p in model.named_parameters())
    raw_buffers = dict(trainer.net.named_buffers())
    assert all(torch.equal(b, raw_buffers[n]) for n, b in model.named_buffers())


def test_clipping_bounds_global_grad_norm(small: object, spy_step: list) -> None:
    run(small, grad_clip=None)
    assert max(global_norm(g) for g in spy_step) > 0.05  # so the bound below means something
    spy_step.clear()
    run(small, grad_clip=0.05)
    assert spy_step and all(global_norm(g) <= 0.05 * (1 + 1e-4) for g in spy_step)


def test_aux_weight_changes_the_gradients(small: object, spy_step: list) -> None:
    run(small, epochs=0.2)
    first_with = spy_step[0]
    spy_step.clear()
    run(small, TINY.replace(aux_weight=0.0), epochs=0.2)
    first_without = spy_step[0]
    assert any(name.startswith("AuxLogits") for name in first_with)
    assert not any(name.startswith("AuxLogits") for name in first_without)
    stem = next(name for name in first_with if name.endswith("conv.weight"))
    assert not torch.allclose(first_with[stem], first_without[stem])


def test_precise_bn_recomputes_statistics_over_fixed_batches(small: object) -> None:
    cfg = QUICK.replace(precise_bn=2, precision="fp32", channels_last=False)
    rt = resolve_runtime(cfg)
    net = torch.nn.Sequential(torch.nn.Conv2d(small.in_chans, 4, 3), torch.nn.BatchNorm2d(4))
    trainer = Trainer(net, TINY, cfg, small, rt)
    bn = net[1]
    bn.running_mean.fill_(5.0)
    net.eval()
    stream = trainer.gen.get_state()
    trainer.precise_bn(net)
    # the cumulative average of the batch means of precise_bn fixed training batches
    gen = torch.Generator().manual_seed(cfg.seed ^ PRECISE_BN_SALT)
    n = len(small.train_y)
    order = batches(n, trainer.batch_size, shuffle=True, generator=gen, drop_last=True)
    with torch.no_grad():
        means = [
            net[0](rt.prepare(small.train_x[idx], small)).mean(dim=(0, 2, 3))
            for _, idx in zip(range(2), order, strict=False)
        ]
    torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0))
    assert bn.momentum == 0.1 and not net.training  # momentum and mode restored
    assert torch.equal(trainer.gen.get_state(), stream)  # training's data stream untouched
    first = bn.running_mean.clone()
    trainer.precise_bn(net)  # the same batches at every evaluation
    torch.testing.assert_close(bn.running_mean, first)


def test_precise_bn_changes_the_evaluation_only(small: object) -> None:
    plain, precise = run(small, seed=5), run(small, seed=5, precise_bn=2)
    assert precise.status == "complete"
    assert [r["train_loss"] for r in precise.history] == [r["train_loss"] for r in plain.history]
    assert precise.final["test_nll"] != plain.final["test_nll"]


# --- whole runs -----------------------------------------------------------------------------------


def test_learns_synthetic_well_above_chance() -> None:
    data = load_dataset("synthetic:1000")
    spec = TINY.replace(aux_head="none")
    cfg = QUICK.replace(epochs=3, lr=0.1, schedule="onecycle")
    epochs = []
    result = train(spec, cfg, dataset=data, progress=False, on_epoch=epochs.append)
    assert result.status == "complete", result.error
    assert result.final["test_top1"] > 50  # chance is 10
    assert epochs == result.history and [r["epoch"] for r in epochs] == [1.0, 2.0, 3.0]
    assert result.macs > 0 and result.params > 0
    assert len(result.final["reliability"]["bin_count"]) == 15
    assert sum(result.final["reliability"]["bin_count"]) == len(data.test_y)
    for key in ("train_loss", "train_top1", "test_top5", "test_nll", "test_ece", "lr", "wall_s"):
        assert key in result.history[-1]
    assert result.final["images_per_s"] > 0 and result.final["train_time_s"] > 0


def test_history_has_val_and_aux_metrics() -> None:
    data = load_dataset("synthetic:300", val_size=50)
    result = train(TINY, QUICK, dataset=data, progress=False)
    row = result.history[-1]
    assert {"val_top1", "val_top5", "val_nll", "val_ece", "aux_top1"} <= set(row)
    assert {"val_top1", "aux_top1", "test_top1"} <= set(result.final)


def test_same_seed_gives_identical_history(small: object) -> None:
    a, b = run(small, seed=3), run(small, seed=3)
    assert without_timing(a.history) == without_timing(b.history)
    assert a.final["reliability"] == b.final["reliability"]


def test_different_seeds_differ(small: object) -> None:
    a, b = run(small, seed=1), run(small, seed=2)
    assert a.history[0]["train_loss"] != b.history[0]["train_loss"]


def test_run_leaves_global_torch_state_alone(small: object) -> None:
    threads = torch.get_num_threads()
    rng = torch.get_rng_state()
    run(small, threads=1 if threads > 1 else 2)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), rng)


def test_absurd_lr_diverges_without_exception(small: object) -> None:
    result = run(small, lr=1e6, schedule="constant", epochs=2)
    assert result.status == "diverged"
    assert "epoch" in result.error and "step" in result.error
    assert "test_top1" not in result.final


def test_fractional_epochs_and_tiny_train_sets(small: object) -> None:
    # 200 images at batch 32: 6 full batches an epoch; 1.5 epochs = 9 steps
    result = run(small, epochs=1.5)
    assert [row["epoch"] for row in result.history] == [1.0, 1.5]
    tiny = load_dataset("synthetic:200", train_subset=20)
    assert train(TINY, QUICK, dataset=tiny, progress=False).status == "complete"


def test_progress_lines_when_not_a_tty(small: object, capsys: pytest.CaptureFixture) -> None:
    train(TINY, QUICK.replace(epochs=1), dataset=small)
    assert capsys.readouterr().err.count("epoch 1/1") == 1
    train(TINY, QUICK, dataset=small, progress=False)
    assert capsys.readouterr().err == ""


def test_progress_bar_when_a_tty(
    small: object, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    train(TINY, QUICK.replace(epochs=1), dataset=small)
    err = capsys.readouterr().err
    assert "train inception_mini seed 0" in err and "epoch 1/1" not in err


def test_fp32_nchw_path_runs(small: object) -> None:
    result = run(small, precision="fp32", channels_last=False)
    assert result.status == "complete" and "test_top1" in result.final


# --- runtime --------------------------------------------------------------------------------------


def test_precision_and_memory_format_resolution() -> None:
    assert resolve_runtime(TrainConfig(device="cpu", precision="fp32")).amp_dtype is None
    bf16 = resolve_runtime(TrainConfig(device="cpu", precision="bf16", channels_last=False))
    assert bf16.amp_dtype == torch.bfloat16 and not bf16.channels_last
    auto = resolve_runtime(TrainConfig(device="cpu"))
    assert auto.device.type == "cpu" and auto.channels_last
    assert (auto.amp_dtype == torch.bfloat16) == cpu_has_fast_bf16()


def test_compile_pays_only_when_the_saving_beats_the_compile_time() -> None:
    # a third of the eager time is saved at 1.5x: 0.1 s x 1000 steps saves 33 s < 70 s
    assert not compile_pays(0.1, 1000)
    assert compile_pays(0.1, 3000)


# --- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"optimizer": "adam"}, "optimizer"),
        ({"schedule": "step"}, "schedule"),
        ({"device": "tpu"}, "device"),
        ({"precision": "fp16"}, "precision"),
        ({"compile": "yes"}, "compile"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": float("nan")}, "epochs"),
        ({"lr": -0.1}, "lr"),
        ({"lr": 0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"ema_decay": 0.0}, "ema_decay"),
        ({"momentum": 1.0}, "momentum"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
        ({"threads": 0}, "threads"),
        ({"nesterov": "yes"}, "nesterov"),
        ({"split_seed": -1}, "split_seed"),
        ({"split_seed": 1.5}, "split_seed"),
        ({"swa_start": 1.0}, "swa_start"),
        ({"swa_start": -0.1}, "swa_start"),
        ({"swa_start": 0.5, "ema_decay": 0.99}, "swa_start"),
    ],
)
def test_validate_config_names_key_value_and_allowed(changes: dict, key: str) -> None:
    value = next(iter(changes.values()))
    with pytest.raises(ConfigError, match=rf"^{key}={value!r}.*allowed") as info:
        validate_config(TrainConfig(**changes))
    assert "\n" not in str(info.value)


def test_validate_config_accepts_defaults_and_paper_recipe() -> None:
    validate_config(TrainConfig())
    validate_config(
        TrainConfig(optimizer="rmsprop", lr=0.045, schedule="exp", grad_clip=2.0, ema_decay=0.9999)
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_validate_config_refuses_missing_cuda() -> None:
    with pytest.raises(ConfigError, match="device='cuda'"):
        validate_config(TrainConfig(device="cuda"))


def test_config_from_overrides_converts_by_field_type() -> None:
    cfg = config_from_overrides(
        TrainConfig(),
        ["lr=0.045", "batch_size=64", "nesterov=false", "grad_clip=none", "ema_decay=0.999"],
    )
    assert (cfg.lr, cfg.batch_size, cfg.nesterov, cfg.grad_clip) == (0.045, 64, False, None)
    assert cfg.ema_decay == 0.999 and config_from_overrides(cfg, ["schedule=exp"]).schedule == "exp"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nope=1", "unknown recipe key 'nope'"),
        ("lr", "must look like key=value"),
        ("batch_size=1.5", "batch_size='1.5' is invalid: allowed: an integer"),
        ("nesterov=maybe", "nesterov='maybe' is invalid"),
        ("lr=fast", "lr='fast' is invalid: allowed: a number"),
    ],
)
def test_config_from_overrides_errors(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_overrides(TrainConfig(), [item])


# --- CLI ------------------------------------------------------------------------------------------

CLI_QUICK = ["train", "--dataset", "synthetic:200", "--epochs", "0.5", "--recipe", "threads=1"]
CLI_QUICK += ["--set", "width_mult=0.25"]


def test_cli_train_writes_json(tmp_path: object, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run.json"
    extra = ["--set", "depth_mult=0.5", "--recipe", "batch_size=32", "--seed", "4", "--quiet"]
    assert main([*CLI_QUICK, *extra, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["status"] == "complete" and doc["config"]["seed"] == 4
    assert doc["spec"]["width_mult"] == 0.25 and doc["config"]["batch_size"] == 32
    assert "test_top1" in doc["final"] and len(doc["history"]) == 1
    printed = capsys.readouterr().out
    assert "1 MAC = 1 multiply-add" in printed and "status     complete" in printed
    assert list(tmp_path.iterdir()) == [out]  # no temp file left behind


@pytest.mark.parametrize(
    "extra",
    [
        ["--set", "conv5x5=7x7"],
        ["--set", "nokey"],
        ["--recipe", "optimizer=adam"],
        ["--recipe", "nope=1"],
        ["--dataset", "no-such-data"],
    ],
)
def test_cli_train_bad_input_exits_2_with_one_line(
    extra: list[str], capsys: pytest.CaptureFixture
) -> None:
    assert main([*CLI_QUICK, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("archlab: error: ") and err.count("\n") == 1


def test_cli_train_returns_1_when_diverged(capsys: pytest.CaptureFixture) -> None:
    argv = [*CLI_QUICK, "--quiet", "--recipe", "lr=1e6", "--recipe", "schedule=constant"]
    assert main([*argv, "--set", "depth_mult=0.5", "--epochs", "2"]) == 1
    assert "status     diverged" in capsys.readouterr().out


@pytest.mark.usefixtures("real_fashion_mnist")
def test_short_run_on_real_fashion_mnist_beats_70_percent() -> None:
    """A short run on the real data learns: the whole pipeline, not just synthetic patterns."""
    config = TrainConfig(
        dataset="fashion-mnist", train_subset=6000, epochs=1, batch_size=64, lr=0.1, seed=0
    )
    result = train(ArchSpec(width_mult=0.5), config, progress=False)
    assert result.status == "complete"
    assert result.final["test_top1"] > 70.0, result.final


def test_kept_predictions_are_the_final_evaluation() -> None:
    data = load_dataset("synthetic:300", val_size=50)
    result = train(TINY, QUICK, dataset=data, progress=False, keep_predictions=True)
    pred = result.predictions
    assert pred is not None and set(pred) == {"val_pred", "val_y", "test_pred", "test_y"}
    for split in ("val", "test"):
        hits = (pred[f"{split}_pred"] == pred[f"{split}_y"]).mean()
        assert 100 * hits == pytest.approx(result.final[f"{split}_top1"], abs=1e-6)
    assert "predictions" not in result.to_dict()
    assert train(TINY, QUICK, dataset=data, progress=False).predictions is None


def test_split_seed_fixes_the_images_whatever_the_run_seed() -> None:
    """split_seed picks the train/val images; None leaves them to the run's seed, as before."""
    from archlab.train.trainer import load_data

    base = TrainConfig(dataset="synthetic:400", train_subset=200, val_size=50)

    def images(cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
        data = load_data(cfg)
        return data.train_x, data.val_x

    fixed = [images(base.replace(seed=s, split_seed=7)) for s in (0, 1)]
    assert all(torch.equal(a, b) for a, b in zip(*fixed, strict=True))
    same_as_seed_7 = images(base.replace(seed=7))
    assert all(torch.equal(a, b) for a, b in zip(fixed[0], same_as_seed_7, strict=True))
    free = [images(base.replace(seed=s)) for s in (0, 1)]
    assert not torch.equal(free[0][1], free[1][1])  # the run's seed moves the split


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_valid_recipe(name: str) -> None:
    validate_config(preset(name))


def test_study_fixed_trains_every_seed_on_the_same_images() -> None:
    cfg = preset("study-fixed")
    assert cfg.split_seed == 0 and cfg.train_subset == 30000
    assert preset("study").replace(lr=0.05, split_seed=0) == cfg
