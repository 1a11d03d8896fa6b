"""Training: the CLI end to end on a tiny grid, exact resume after Ctrl-C, two-process DDP."""

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from engine import cli, io
from engine.config import TrainSpec
from engine.errors import InputError
from engine.observe.network import ObservingNetwork
from engine.train.checkpoint import load_checkpoint
from engine.train.samples import TrainingSamples
from engine.train.schedule import judged_generator, schedule, update_average
from engine.train.trainer import Trainer, TrainState, start_finetune, train
from tests.conftest import TINY


def test_cli_train_writes_a_loadable_checkpoint_and_a_loss_log(tmp_path, tiny_config_file, tiny_grid):
    out = tmp_path / "model.pt"
    assert cli.main(["train", "--config", str(tiny_config_file), "--out", str(out), "--steps", "3"]) == 0
    ckpt = load_checkpoint(out)
    ckpt.check_grid(tiny_grid)
    # --steps sets the one-step phase; the config's fine-tune windows follow it.
    assert ckpt.training["step"] == 3 + TINY.train.finetune_steps and "opt_g" not in ckpt.training
    assert ckpt.provenance["command"].endswith("--steps 3") and ckpt.provenance["complete"] is True
    assert np.isfinite(ckpt.provenance["validation_rmse_degC"])
    log = pd.read_csv(tmp_path / "model.log.csv")
    assert list(log["step"]) == [1, 2, 3, 4, 5]
    assert list(log["step"][log["val_rmse"].notna()]) == [2, 3, 4, 5]  # every 2nd and each phase's end
    assert (log[["g_mse", "d_loss"]] > 0).all().all()
    # The reduced-space layer's basis was fitted from the training years and saved with it.
    # The control EOFs come first, then the offset patterns, each by decreasing variance.
    variance, n = ckpt.generator.reduced.variance, TINY.model.reduced_space
    assert len(variance) == n + TINY.model.offset_patterns
    for part in (variance[:n], variance[n:]):
        assert torch.all(part[:-1] >= part[1:]) and part[-1] > 0
    assert ckpt.generator.reduced.patterns.abs().sum() > 0


def test_cli_train_refuses_to_overwrite_or_resume_nothing(tmp_path, tiny_config_file, capsys):
    out = tmp_path / "model.pt"
    assert cli.main(["train", "--config", str(tiny_config_file), "--out", str(out), "--resume"]) == 2
    assert "does not exist" in capsys.readouterr().err
    out.write_bytes(b"x")
    assert cli.main(["train", "--config", str(tiny_config_file), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_a_resumed_training_keeps_the_steps_it_was_started_with(tmp_path, tiny_config_file):
    # a fine-tune started with --steps 0 must not become the config's one-step phase on --resume
    import argparse

    from engine.cli.model import _training_config

    out = tmp_path / "model.pt"
    assert cli.main(["train", "--config", str(tiny_config_file), "--out", str(out), "--steps", "1"]) == 0
    args = argparse.Namespace(config=str(tiny_config_file), preset=None, out=str(out), resume=True, steps=None,
                              worlds=None, control=None)  # fmt: skip
    assert TINY.train.steps != 1 and _training_config(args).train.steps == 1
    assert _training_config(argparse.Namespace(**{**vars(args), "steps": 3})).train.steps == 3


def test_cli_train_init_starts_from_a_checkpoint_and_keeps_it_unless_beaten(tmp_path, tiny_config_file, capsys):
    first = tmp_path / "first.pt"
    assert cli.main(["train", "--config", str(tiny_config_file), "--out", str(first), "--steps", "1"]) == 0
    start = load_checkpoint(first)
    # --steps 0 and the config's fine-tune: the fine-tune goes on from the given weights
    second = tmp_path / "second.pt"
    argv = ["train", "--config", str(tiny_config_file), "--out", str(second), "--init", str(first), "--steps", "0"]
    assert cli.main(argv) == 0
    tuned = load_checkpoint(second)
    assert tuned.training["step"] == TINY.train.finetune_steps and tuned.provenance["init"] == str(first)
    # the start is validated first on the same held-out windows, so the result is never worse
    assert tuned.provenance["validation_rmse_degC"] <= start.provenance["validation_rmse_degC"] + 1e-6
    a, b = start.generator.state_dict(), tuned.generator.state_dict()
    torch.testing.assert_close(a["reduced.patterns"], b["reduced.patterns"])  # the basis came with the weights
    # another model: one clear line, no output written
    other = tmp_path / "other.toml"
    io.write_config(replace(TINY, model=replace(TINY.model, relu_channels=6)), other)
    bad = tmp_path / "bad.pt"
    assert cli.main(["train", "--config", str(other), "--out", str(bad), "--init", str(first)]) == 2
    assert "--init" in capsys.readouterr().err and not bad.exists()
    assert cli.main([*argv, "--resume"]) == 2
    assert "only one" in capsys.readouterr().err


def test_init_weights_are_kept_when_training_does_not_beat_them(tmp_path, tiny_grid, tiny_samples):
    samples = tiny_samples
    first = train(TINY, tiny_grid, samples, str(tmp_path / "first.pt"))
    init = first.best_generator
    # no windows at all: the start is the result, with its own validation error
    config = replace(TINY, train=replace(TINY.train, steps=0, finetune_steps=0))
    kept = train(config, tiny_grid, samples, str(tmp_path / "kept.pt"), init=init)
    assert kept.best_val_rmse == pytest.approx(first.best_val_rmse, rel=1e-5)
    saved = load_checkpoint(tmp_path / "kept.pt").generator.state_dict()
    assert all(torch.equal(saved[k], init[k]) for k in init)
    # with offset patterns added, the start's EOFs and learned shares come first
    grown = replace(config, model=replace(config.model, offset_patterns=4))
    train(grown, tiny_grid, samples, str(tmp_path / "grown.pt"), init=init)
    saved = load_checkpoint(tmp_path / "grown.pt").generator.state_dict()
    n = TINY.model.reduced_space + TINY.model.offset_patterns
    assert saved["reduced.patterns"].shape[0] == n + 2
    for name in ("reduced.patterns", "reduced.variance", "reduced.log_background_share"):
        assert torch.equal(saved[name][:n], init[name])
    assert saved["reduced.patterns"][n:].abs().sum() > 0  # the offset patterns were fitted


@pytest.mark.parametrize(("ema_decay", "batch_size"), [(0.0, 1), (0.5, 1), (0.0, 2)])
def test_interrupted_training_resumes_exactly(tmp_path, tiny_grid, tiny_samples, ema_decay, batch_size):
    config = replace(TINY, train=replace(TINY.train, ema_decay=ema_decay, batch_size=batch_size))
    straight = train(config, tiny_grid, tiny_samples, str(tmp_path / "straight.pt"))

    def stop_after_two(row):
        if row["step"] == 2:
            raise KeyboardInterrupt

    out = str(tmp_path / "resumed.pt")
    with pytest.raises(KeyboardInterrupt):
        train(config, tiny_grid, tiny_samples, out, progress=stop_after_two)
    saved = load_checkpoint(out).training
    assert saved["step"] == 2 and "opt_g" in saved and saved["opt_g"]["state"]  # optimiser moments kept
    assert bool(saved["average"]) == (ema_decay > 0)  # the moving average is resumed too
    resumed = train(config, tiny_grid, tiny_samples, out, resume=True)
    assert resumed.step == straight.step == TINY.train.steps + TINY.train.finetune_steps
    assert [r["step"] for r in resumed.log] == [1, 2, 3, 4, 5, 6]  # through the fine-tune boundary
    for a, b in zip(resumed.log, straight.log, strict=True):
        assert a["g_mse"] == pytest.approx(b["g_mse"], rel=1e-5)
    a, b = load_checkpoint(out).generator.state_dict(), load_checkpoint(tmp_path / "straight.pt").generator.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_moving_average_of_the_weights_is_what_validation_judges():
    gen = torch.nn.Linear(2, 1)
    average: dict = {}
    with torch.no_grad():
        gen.weight.fill_(1.0)
        update_average(average, gen, 0.75)  # starts from the weights
        gen.weight.fill_(3.0)
        update_average(average, gen, 0.75)
    torch.testing.assert_close(average["weight"], torch.full((1, 2), 0.75 * 1.0 + 0.25 * 3.0))
    averaged = torch.nn.Linear(2, 1)
    assert judged_generator(gen, None, average) is gen  # no average: the training weights
    judged = judged_generator(gen, averaged, average)
    assert judged is averaged and torch.equal(judged.weight, average["weight"]) and gen.weight[0, 0] == 3.0


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_two_process_gloo_ddp_training_logs_and_saves_once(tmp_path, tiny_config_file):
    out = tmp_path / "ddp.pt"
    result = _torchrun(
        "-m", "engine.cli", "train", "--config", str(tiny_config_file), "--out", str(out), "--steps", "2"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ckpt = load_checkpoint(out)
    total = 2 + TINY.train.finetune_steps
    assert ckpt.provenance["world_size"] == 2 and ckpt.training["step"] == total
    assert list(pd.read_csv(tmp_path / "ddp.log.csv")["step"]) == list(range(1, total + 1))  # one row a window
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.log.csv", "ddp.pt"]
    progress = [line.split(" window")[0] for line in result.stderr.splitlines() if line.startswith("train: ")]
    assert progress and len(progress) == len(set(progress))  # each line once, not once a rank
    assert result.stdout.count("wrote ") == 1


def test_two_process_ranks_train_on_their_own_windows_in_step_and_resume_exactly(tmp_path):
    result = _torchrun("tests/ddp_worker.py", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for run in ("straight", "resumed"):  # DDP's averaged gradients keep the ranks' weights equal
        assert all(torch.equal(r0[run][k], r1[run][k]) for k in r0[run])
        losses = [[{k: v for k, v in row.items() if k != "seconds"} for row in r[f"{run}_log"]] for r in (r0, r1)]
        assert losses[0] == losses[1]  # the losses' mean over the ranks, on each
    assert r0["chain_starts"] != r1["chain_starts"]  # the data is split: each rank its own chains
    for a, b in zip(r0["resumed_log"], r0["straight_log"], strict=True):  # every rank resumed its own draws
        assert a["g_mse"] == pytest.approx(b["g_mse"], rel=1e-5)
    assert all(torch.allclose(r0["resumed"][k], r0["straight"][k], atol=1e-6) for k in r0["straight"])


def test_schedule_decays_each_phase_and_lengthens_backpropagation_in_the_fine_tune():
    spec = TrainSpec(steps=10, finetune_steps=4, learning_rate=1e-3, finetune_learning_rate=1e-4,
                     discriminator_learning_rate=2e-4, learning_rate_floor=0.1, backprop_steps=1,
                     finetune_backprop_steps=8)  # fmt: skip
    assert schedule(0, spec) == pytest.approx((1e-3, 2e-4, 1))
    assert schedule(5, spec) == pytest.approx((1e-3 * 0.55, 2e-4 * 0.55, 1))  # half way down the cosine
    assert schedule(10, spec) == pytest.approx((1e-4, 2e-4, 8))  # the fine-tune starts afresh
    assert schedule(12, spec) == pytest.approx((1e-4 * 0.55, 2e-4 * 0.55, 8))
    assert schedule(14, spec).generator_learning_rate == pytest.approx(1e-5)


def test_fine_tune_starts_from_the_best_generator_with_fresh_moments():
    gen = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(gen.parameters())
    gen(torch.ones(1, 2)).sum().backward()
    opt.step()
    best = {name: torch.full_like(t, 7.0) for name, t in gen.state_dict().items()}
    state = TrainState(
        step=10, best_val_rmse=0.1, bad_validations=3, best_generator=best, average={"weight": best["weight"]}
    )
    start_finetune(gen, opt, opt, state)
    assert torch.equal(gen.weight, best["weight"]) and not opt.state and not state.average
    assert state.bad_validations == 0 and state.best_val_rmse == 0.1  # the fine-tune must beat the best so far


@pytest.mark.parametrize(("stop", "updates"), [(4, 8), (5, 1)])
def test_optimiser_updates_per_window_follow_the_phase(tmp_path, tiny_grid, tiny_samples, stop, updates):
    """4 one-step windows of 3 steps cut every 2 give 8 updates; the fine-tune's first
    window, one cut of 3 steps, gives 1 on fresh moments."""

    def interrupt(row):
        if row["step"] == stop:
            raise KeyboardInterrupt

    out = str(tmp_path / "model.pt")
    with pytest.raises(KeyboardInterrupt):
        train(TINY, tiny_grid, tiny_samples, out, progress=interrupt)
    moments = load_checkpoint(out).training["opt_g"]["state"]
    assert {int(m["step"]) for m in moments.values()} == {updates}


def test_large_scale_offset_is_a_smooth_ocean_field_decaying_with_depth(coarse_grid):
    from engine.world.patterns import large_scale_offset, surface_area_weights

    rng = np.random.default_rng(0)
    means, offsets = [], []
    for _ in range(200):
        offset = large_scale_offset(coarse_grid, rng, 0.25, (200.0, 2000.0))
        offsets.append(offset)
        means.append((surface_area_weights(coarse_grid) * offset[0]).sum())
    assert np.std(means) == pytest.approx(0.25, rel=0.15)
    offset = offsets[int(np.argmax(np.abs(means)))]
    assert np.all(offset[coarse_grid.ocean == 0] == 0)
    # same sign everywhere at the surface (a large-scale offset, not noise) and weaker at depth
    surface = offset[0][coarse_grid.ocean[0] > 0]
    assert np.all(np.sign(surface) == np.sign(surface.mean()))
    column = np.abs(offset).sum(axis=(1, 2))
    assert np.all(np.diff(column) <= 1e-9)


def test_offset_windows_observe_the_offset_truth_and_may_start_from_it(tiny_grid, tiny_control):
    from dataclasses import replace

    config = replace(TINY, train=replace(TINY.train, offset_share=1.0))
    world = tiny_control
    samples = TrainingSamples(config, tiny_grid, world, ObservingNetwork(tiny_grid, config.network))
    offset = 1.5 * tiny_grid.ocean.astype("f4")
    shifted = samples.window(10, 3, 2010, np.random.default_rng(1), offset=offset, background=offset)
    plain = samples.window(10, 3, 2010, np.random.default_rng(1))
    encoded = torch.from_numpy(samples.normalizer.encode(offset))
    assert torch.allclose(shifted.truth - plain.truth, encoded.expand_as(plain.truth), atol=1e-5)
    assert torch.equal(shifted.background, encoded[None, None]) and float(plain.background.abs().max()) == 0.0
    # the observations follow the shifted truth: the offset is not lost between truth and obs
    seen = shifted.obs_mask > 0
    assert torch.equal(seen, plain.obs_mask > 0)
    misfit = (shifted.obs - shifted.truth)[seen].mean()
    moved = (shifted.obs - plain.obs)[seen].mean()
    assert abs(float(misfit)) < 0.1 * float(encoded[seen[0, 0, 0].numpy()].mean())
    assert float(moved) == pytest.approx(float(encoded[seen[0, 0, 0].numpy()].mean()), rel=0.2)
    # a share of the random windows starts from a background that knows its offset
    rng = np.random.default_rng(5)
    started = sum(float(samples.training_window(rng, 3).background.abs().max()) > 0 for _ in range(16))
    assert 2 <= started <= 14
    never = TrainingSamples(
        replace(config, train=replace(config.train, offset_share=0.0)), tiny_grid, world, samples.network
    )
    assert all(float(never.training_window(rng, 3).background.abs().max()) == 0 for _ in range(4))


def test_new_chains_start_in_the_configured_network_years(tiny_grid, tiny_samples):
    """Chains start in a network year drawn from train.network_years, every year of it."""
    rng = np.random.default_rng(0)
    default = tiny_samples
    assert {default.new_chain(rng).first_year for _ in range(400)} == set(range(1981, 2021))
    config = replace(TINY, train=replace(TINY.train, network_years=(1985, 1987)))
    early = TrainingSamples(config, tiny_grid, default.world, default.network)
    assert {early.new_chain(rng).first_year for _ in range(60)} == {1985, 1986, 1987}
    assert "network years 1985-1987" in early.description


def test_chains_continue_the_cycle_where_they_stopped(tiny_samples):
    """A chain's next window is the next steps of the control run, observed by the
    network of the chain's era (advancing with its years), starting from the analysis
    the chain left; at the end of the training years a new chain starts."""
    from dataclasses import replace

    from engine.train.trainer import next_chains

    samples = tiny_samples
    rng = np.random.default_rng(3)
    chain = samples.new_chain(rng)
    chain = replace(chain, start=60, next_step=60, first_year=2005)
    first = samples.chain_window(chain, 3, rng)
    analysis = torch.randn_like(first.background)
    later = chain.advanced(3, analysis)
    assert later.next_step == 63 and torch.equal(later.background, analysis)
    second = samples.chain_window(later, 3, rng)
    assert torch.equal(second.background, analysis)
    truth = samples.normalizer.encode(samples.world.anomaly(60, 66) + chain.offset.numpy()[None])
    both = torch.cat([first.truth, second.truth])[:, 0, 0].numpy()
    np.testing.assert_allclose(both, truth, atol=1e-5)
    # step 73 is in the chain's second year: the network of 2006 observed it
    year_two = samples.chain_window(replace(later, next_step=73), 1, np.random.default_rng(0))
    direct = samples.window(73, 1, 2006, np.random.default_rng(0), chain.offset.numpy())
    assert torch.equal(year_two.obs_mask, direct.obs_mask) and torch.equal(year_two.obs, direct.obs)
    # a chain that would run past the training years is replaced by a new one
    spec = replace(TINY.train, chain_years=1e9)
    ended = replace(later, next_step=samples.n_train - 1)
    picked = [next_chains([ended], samples, spec, rng)[0][1] for _ in range(3)]
    assert all(c is not ended and c.next_step == c.start for c in picked)
    assert next_chains([later], samples, spec, rng) == [(0, later)]
    # a batch is that many different chains
    batch = next_chains([later, ended, None, later], samples, replace(spec, batch_size=3), rng)
    assert len(batch) == 3 and len({k for k, _ in batch}) == 3


def test_a_batch_of_chains_trains_as_the_mean_of_its_windows(tiny_samples, tiny_grid):
    """Chains side by side in one window give each chain the analyses it would get alone,
    and one gradient step on the mean of their losses."""
    from engine.train.samples import stack_windows

    config = replace(TINY, train=replace(TINY.train, adversarial_weight=0.0))
    samples = tiny_samples
    rng = np.random.default_rng(5)
    windows = [samples.training_window(rng, 3) for _ in range(2)]
    windows[1].background = torch.randn_like(windows[1].background) * 0.3  # chains at different states
    start = Trainer(config, tiny_grid, samples, "unused.pt").gen.state_dict()

    def one_window(window):
        trainer = Trainer(config, tiny_grid, samples, "unused.pt")
        trainer.gen.load_state_dict(start)
        trainer.opt_g = torch.optim.SGD(trainer.gen.parameters(), lr=0.1)  # the mean of steps is SGD's
        row, last = trainer.cycle_window(window, 0.0, 3)
        return row, last, trainer.gen.state_dict()

    batch = stack_windows(windows)
    assert batch.truth.shape[:2] == (3, 2) and batch.background.shape[0] == 2
    row, last, weights = one_window(batch)
    alone = [one_window(w) for w in windows]
    assert row["g_mse"] == pytest.approx(np.mean([a[0]["g_mse"] for a in alone]), rel=1e-5)
    torch.testing.assert_close(last, torch.cat([a[1] for a in alone]), atol=1e-5, rtol=1e-4)
    # SGD: the batch's step is the mean of the two single-window steps
    for name, value in weights.items():
        if value.is_floating_point():
            mean = (alone[0][2][name] + alone[1][2][name]) / 2
            torch.testing.assert_close(value, mean, atol=1e-5, rtol=1e-4)


def test_mse_in_degc_weighs_each_level_by_its_variance(tiny_samples):
    from engine.train.trainer import mse_weights

    samples = tiny_samples
    ocean, scale = samples.ocean, samples.scale
    assert torch.equal(mse_weights(ocean, scale, "network"), ocean)
    weights = mse_weights(ocean, scale, "degC")
    assert float(weights.sum()) == pytest.approx(float(ocean.sum()), rel=1e-5)  # mean 1 over the ocean
    assert float(weights[ocean == 0].abs().sum()) == 0.0
    levels = [(weights[0, 0, k][ocean[0, 0, k] > 0]).unique() for k in range(ocean.shape[2])]
    assert all(len(v) == 1 for v in levels)  # one weight per level
    ratio = float(levels[0][0] / levels[-1][0])
    assert ratio == pytest.approx(float(scale.flatten()[0] / scale.flatten()[-1]) ** 2, rel=1e-5)
    # a uniform 0.1 degC error: the degC loss is its MSE (0.01) over the mean variance
    from engine.nn.losses import masked_mse

    error = (0.1 / scale).expand_as(ocean) * ocean  # in network units
    mean_variance = float((ocean * scale**2).sum() / ocean.sum())
    assert float(masked_mse(error, torch.zeros_like(error), weights)) * mean_variance == pytest.approx(0.01, rel=1e-5)


def test_without_adversarial_weight_the_critic_is_not_trained(tiny_samples, tiny_grid):
    from dataclasses import replace

    config = replace(TINY, train=replace(TINY.train, adversarial_weight=0.0))
    samples = tiny_samples
    window = samples.training_window(np.random.default_rng(0), 3)
    trainer = Trainer(config, tiny_grid, samples, "unused.pt")
    before = {k: v.clone() for k, v in trainer.disc.state_dict().items()}
    weights = [p.detach().clone() for p in trainer.gen.parameters()]
    row, last = trainer.cycle_window(window, 0.0, 2)
    assert np.isnan(row["d_loss"]) and np.isnan(row["g_adv"]) and row["g_mse"] > 0
    assert all(torch.equal(v, trainer.disc.state_dict()[k]) for k, v in before.items()) and not trainer.opt_d.state
    assert any(not torch.equal(a, b) for a, b in zip(weights, trainer.gen.parameters(), strict=True))
    assert last.shape == window.background.shape


class _Zero(torch.nn.Module):
    """A generator whose analysis is always climatology (zero anomaly)."""

    def forward(self, background, obs, obs_mask, ocean, obs_error):
        return torch.zeros_like(background)


def test_trainer_validates_the_volume_weighted_rmse_of_its_cycled_analyses(tiny_grid, tiny_samples):
    samples = tiny_samples
    trainer = Trainer(TINY, tiny_grid, samples, "unused.pt")
    # climatology's error is the truth itself: by hand, each scored step's volume-weighted
    # mean square in degC, averaged over the steps after the first third of each window
    volume = tiny_grid.volume * tiny_grid.ocean
    squares = []
    for window in samples.validation_windows():
        truth = window.truth[:, 0, 0].numpy() * samples.normalizer.scale[:, None, None]
        for t in range(window.length // 3, window.length):
            squares.append((volume * truth[t] ** 2).sum() / volume.sum())
    assert trainer.validate(_Zero()) == pytest.approx(np.sqrt(np.mean(squares)), rel=1e-5)
    assert trainer.validate(trainer.gen) < trainer.validate(_Zero())  # the reduced-space layer starts skilful


def test_trainer_windows_save_and_restore_to_go_on_exactly(tmp_path, tiny_grid, tiny_samples):
    samples = tiny_samples
    out = str(tmp_path / "run.pt")
    trainer = Trainer(TINY, tiny_grid, samples, out)
    row = trainer.train_window()
    assert trainer.state.step == 1 and set(row) == {"g_mse", "g_adv", "d_loss"} and row["g_mse"] > 0
    (chain,) = [c for c in trainer.state.chains if c is not None]  # batch size 1: one chain went on
    assert chain.next_step == chain.start + TINY.train.window
    trainer.save(complete=False)
    resumed = Trainer(TINY, tiny_grid, samples, out)
    resumed.restore()
    assert resumed.state.step == 1 and [c is None for c in resumed.state.chains] == [
        c is None for c in trainer.state.chains
    ]
    (again,) = [c for c in resumed.state.chains if c is not None]
    assert (again.start, again.next_step) == (chain.start, chain.next_step)
    assert torch.equal(again.background, chain.background) and torch.equal(again.offset, chain.offset)
    assert resumed.rng.bit_generator.state == trainer.rng.bit_generator.state
    assert trainer.train_window() == resumed.train_window()  # the same next window, the same losses
    weights, restored = trainer.gen.state_dict(), resumed.gen.state_dict()
    assert all(torch.equal(weights[k], restored[k]) for k in weights)
    trainer.save(complete=True)  # the best generator only: nothing to go on from
    with pytest.raises(InputError, match="finished run"):
        Trainer(TINY, tiny_grid, samples, out).restore()


def test_trainer_started_from_given_weights_keeps_them_as_the_best_so_far(tiny_grid, tiny_samples):
    samples = tiny_samples
    given = Trainer(TINY, tiny_grid, samples, "unused.pt")
    given.train_window()
    init = {k: v.clone() for k, v in given.gen.state_dict().items()}
    trainer = Trainer(TINY, tiny_grid, samples, "unused.pt")
    trainer.start_from(init)
    assert trainer.state.best_val_rmse == pytest.approx(given.validate(given.gen))
    assert all(torch.equal(trainer.state.best_generator[k], init[k]) for k in init)
    assert all(torch.equal(trainer.gen.state_dict()[k], init[k]) for k in init)
