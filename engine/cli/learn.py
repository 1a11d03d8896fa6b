"""``deepda train --init MODEL.pt --obs OBS.nc``: fine-tune a trained model on real observations."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from engine import io
from engine.cli.common import load_config, parse_period, progress_bar


def _checked_source(args: argparse.Namespace) -> str:
    """The checkpoint a fine-tune starts from, after the flags that go with --obs are checked."""
    if not args.obs:
        raise io.InputError("--period goes with --obs (fine-tuning on observations); add --obs OBS.nc or drop --period")
    if args.steps is not None:
        raise io.InputError("--steps counts model-world windows; with --obs the passes are [learn] passes")
    source = args.out if args.resume else args.init
    if not source:
        raise io.InputError("--obs fine-tunes a trained model: add --init MODEL.pt (e.g. assets/deepda_coarse.pt)")
    io.check_outputs_distinct({"--obs": args.obs, "--init": args.init}, {"--out": args.out})
    return source


def run_learn(args: argparse.Namespace) -> None:
    from engine.da.reanalysis import check_period
    from engine.train.checkpoint import load_checkpoint, save_checkpoint, update_ensemble_calibration
    from engine.train.from_observations import LearnState, ObservationLearner

    checkpoint = load_checkpoint(_checked_source(args))
    if args.resume and "learn_passes" not in checkpoint.training:
        raise io.InputError(
            f"{args.out} holds a finished fine-tune (or none); start a new one with --init and another --out"
        )
    if args.config:  # only [learn] and [obs_error] may change: the model and its world stay as trained
        overrides = load_config(args)
        checkpoint.config = dataclasses.replace(checkpoint.config, learn=overrides.learn, obs_error=overrides.obs_error)
    grid = io.load_grid(checkpoint.config.grid)
    first, last = check_period(args.obs, grid, parse_period(args.period) if args.period else None)
    spy = checkpoint.config.world.steps_per_year
    table, _ = io.open_observations(args.obs, grid=grid, period=f"{first}-{last}")
    learner = ObservationLearner(checkpoint, grid, table, first, (last - first + 1) * spy)
    state = LearnState()
    if args.resume:
        state = learner.restore(checkpoint.training, checkpoint.generator.state_dict())
    provenance = {
        **{k: v for k, v in checkpoint.provenance.items() if k not in ("learned_from_observations",)},
        "learned_from_observations": {"file": str(args.obs), "period": f"{first}-{last}", "command": args.command},
    }
    bar = progress_bar(checkpoint.config.learn.passes, "learn", unit="pass")
    bar.update(state.passes)

    def save(complete: bool) -> None:
        best = learner.generator
        latest = learner.training_state(state)
        best.load_state_dict(state.best_generator)
        record = {**provenance, "validation_rmse_obs_degC": state.best_rmse, "passes": state.passes}
        save_checkpoint(
            args.out, best, checkpoint.config, checkpoint.normalizer, grid, record, {} if complete else latest,
            checkpoint.climatology,
        )  # fmt: skip
        best.load_state_dict(latest["latest_generator"])
        if checkpoint.ensemble:
            update_ensemble_calibration(args.out, checkpoint.ensemble)

    def on_pass(row: dict[str, float]) -> None:
        save(complete=False)
        bar.update(1)
        bar.set_postfix({"misfit": f"{row['misfit']:.3f}", "val_rmse": f"{row['validation_rmse']:.4f}"}, refresh=True)

    try:
        state = learner.run(state, on_pass)
    except KeyboardInterrupt:
        bar.close()
        print(f"deepda: interrupted; fine-tune saved in {args.out}; continue with --resume", file=sys.stderr)
        raise SystemExit(130) from None
    bar.close()
    save(complete=True)
    start = state.log[0]["validation_rmse"]
    print(
        f"wrote {args.out}: {state.passes} passes, RMSE at the validation profiles {start:.4f} -> "
        f"{state.best_rmse:.4f} degC ({Path(args.obs).name}, {first}-{last})"
    )
