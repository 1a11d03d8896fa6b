"""One checkpoint file: weights + config + normaliser + grid + provenance (+ training state).

Everything inside is tensors, numbers, strings, lists and dicts, so the file loads with
``torch.load(..., weights_only=True)``: opening a checkpoint never runs code from it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.config import Config, ModelSpec, config_from_dict, config_to_dict
from engine.errors import InputError
from engine.grid import Grid
from engine.io import check_writable
from engine.nn import Discriminator, Generator
from engine.train.normalize import Normalizer

FORMAT = "deepda-checkpoint-1"


def build_generator(spec: ModelSpec, field_shape: tuple[int, int, int]) -> Generator:
    """The generator described by ``spec`` for a ``(depth, lat, lon)`` grid (an untrained
    reduced-space layer has an empty basis; training fits it)."""
    return Generator(
        spec.relu_channels, spec.tanh_channels, spec.n_stages, spec.kernels, obs_inputs=spec.obs_inputs,
        reduced_space=spec.reduced_space + spec.offset_patterns, field_shape=field_shape,
    )  # fmt: skip


def build_discriminator(spec: ModelSpec) -> Discriminator:
    """The discriminator described by ``spec``."""
    return Discriminator(spec.disc_channels, spec.n_stages)


def code_revision() -> str:
    """The git commit of the code (with '+dirty' for local changes), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if rev.returncode:
        return "unknown"
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


@dataclass
class Checkpoint:
    """What a checkpoint holds, ready to use."""

    generator: Generator
    config: Config
    normalizer: Normalizer
    ocean: np.ndarray  # bool (depth, lat, lon) the model was trained on
    provenance: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)  # optimiser states, step, RNG, log
    ensemble: dict[str, Any] = field(default_factory=dict)  # calibration, e.g. {"inflation": 1.7}
    # a model's own climatology as trained with ({"offset_harmonics": tensor, "source": str});
    # empty: the grid's (the synthetic worlds share it)
    climatology: dict[str, Any] = field(default_factory=dict)

    def check_grid(self, grid: Grid) -> None:
        """Raise InputError if ``grid`` is not the grid the model was trained on."""
        spec = self.config.grid
        if grid.shape != self.ocean.shape or grid.spec.resolution != spec.resolution:
            raise InputError(
                f"the model was trained on the {spec.name} grid {self.ocean.shape} at {spec.resolution} deg, "
                f"not {grid.spec.name} {grid.shape}; use --preset {spec.name} or a model trained for this grid"
            )


def initial_weights(path: str | Path, config: Config, grid: Grid) -> dict[str, torch.Tensor]:
    """The generator weights of checkpoint ``path`` to start a new training run from; an
    InputError unless it was trained with ``config``'s model (its number of offset
    patterns aside: see :func:`engine.train.schedule.adopt_weights`) on ``grid``."""
    ckpt = load_checkpoint(path)
    ckpt.check_grid(grid)
    if replace(ckpt.config.model, offset_patterns=config.model.offset_patterns) != config.model:
        raise InputError(
            f"--init {path} has another [model] than this run's config (only offset_patterns may differ); "
            "start from a checkpoint of the same model, or give its config with --config"
        )
    return ckpt.generator.state_dict()


def save_checkpoint(
    path: str | Path,
    generator: Generator,
    config: Config,
    normalizer: Normalizer,
    grid: Grid,
    provenance: dict[str, Any],
    training: dict[str, Any] | None = None,
    climatology: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (a crash mid-write never corrupts the previous one)."""
    file = check_writable(path)
    payload = {
        "format": FORMAT,
        "generator": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "config": config_to_dict(config),
        "normalizer": normalizer.to_dict(),
        "ocean": torch.from_numpy(grid.ocean.astype(np.uint8)),
        "provenance": {"created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **provenance},
        "training": training or {},
        **({"climatology": dict(climatology)} if climatology else {}),
    }
    _write_payload(file, payload)


def _write_payload(file: Path, payload: dict[str, Any]) -> None:
    """torch.save to a hidden sibling, then rename: a crash never leaves a half-written file."""
    tmp = file.with_name(f".{file.name}.part")
    torch.save(payload, tmp)
    os.replace(tmp, file)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint with ``weights_only=True``; a bad file gives one clear InputError."""
    file = Path(path)
    if not file.exists():
        raise InputError(f"checkpoint {file} does not exist; give a file written by 'deepda train'")
    try:
        payload = torch.load(file, map_location=device, weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise InputError(
            f"checkpoint {file} cannot be read ({reason}); it is corrupt or not a DeepDA checkpoint"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"checkpoint {file} is not a {FORMAT} file; give a file written by 'deepda train'")
    _check_sections(file, payload)
    try:
        config = config_from_dict(_with_legacy_defaults(payload["config"]))
    except InputError as err:
        raise InputError(f"checkpoint {file} holds an invalid config ({err}); the file is damaged or foreign") from None
    generator = build_generator(config.model, config.grid.shape).to(device)
    try:
        generator.load_state_dict(payload["generator"])
    except RuntimeError:
        raise InputError(f"checkpoint {file}: weights do not match its model config; the file is corrupt") from None
    try:
        normalizer = Normalizer.from_dict(payload["normalizer"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"checkpoint {file}: its normalizer has no per-level scale; the file is damaged") from None
    generator.eval()
    return Checkpoint(
        generator=generator,
        config=config,
        normalizer=normalizer,
        ocean=payload["ocean"].cpu().numpy().astype(bool),
        provenance=dict(payload["provenance"]),
        training=dict(payload.get("training", {})),
        ensemble=dict(payload.get("ensemble", {})),
        climatology=dict(payload.get("climatology", {})),
    )


REQUIRED = {"generator": dict, "config": dict, "normalizer": dict, "ocean": torch.Tensor, "provenance": dict}
OPTIONAL = {"training": dict, "ensemble": dict, "climatology": dict}


def _check_sections(file: Path, payload: dict[str, Any]) -> None:
    """An InputError naming the first section that is missing, unknown or of the wrong kind."""
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise InputError(f"checkpoint {file} lacks its {', '.join(missing)}; the file is damaged, write it again")
    unknown = sorted(set(payload) - {"format", *REQUIRED, *OPTIONAL})
    if unknown:
        raise InputError(
            f"checkpoint {file} has unknown section(s) {', '.join(map(str, unknown))}; "
            "it was written by another program or a newer DeepDA"
        )
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key in payload and not isinstance(payload[key], kind):
            raise InputError(f"checkpoint {file}: its {key} is not a {kind.__name__}; the file is damaged")


def _with_legacy_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """Fill settings that older checkpoints predate with the values they were trained with
    (today's defaults would describe another network)."""
    model = dict(config.get("model", {}))
    model.setdefault("obs_inputs", ["obs"])  # before the innovation and error inputs
    model.setdefault("reduced_space", 0)  # before the reduced-space layer
    model.setdefault("offset_patterns", 0)  # before the offset patterns in it
    train = dict(config.get("train", {}))
    train.setdefault("offset_share", 0.0)  # before the large-scale offset windows
    train.setdefault("finetune_steps", 0)  # before the fine-tune phase
    return {**config, "model": model, "train": train}


def update_ensemble_calibration(path: str | Path, calibration: dict[str, Any], out: str | Path | None = None) -> None:
    """Store an ensemble calibration (see :mod:`engine.da.calibrate`) in a checkpoint: ``out``
    (a copy of ``path`` with it), or ``path`` itself. Written atomically, all else untouched."""
    file = Path(path)
    load_checkpoint(file)  # one clear error for a missing or foreign file
    payload = torch.load(file, map_location="cpu", weights_only=True)
    payload["ensemble"] = dict(calibration)
    _write_payload(Path(out) if out is not None else file, payload)
