"""Twins: which worlds trained each model, which world gave the truth (issue 26).

A composition for the OSSE's outputs: a DeepDA checkpoint says what it was trained on
(:func:`engine.world.identity.training_worlds`), the Kalman filter knows the truth's
world, and every summary names both, so an identical twin is never read as a fraternal one.
"""

from __future__ import annotations

from pathlib import Path

from engine.config import WorldSpec
from engine.da.registry import BASELINES
from engine.train.checkpoint import load_checkpoint
from engine.world.identity import describe_world, training_worlds, twin_kind


def twin_records(truth_world: WorldSpec, methods: dict[str, str | Path]) -> dict[str, dict[str, str]]:
    """For each method, what it knows beyond the observations and, for DeepDA
    checkpoints, whether the truth is an identical or a fraternal twin of its training.

    Keys of each record: ``trained_on`` (world names joined by +), ``describe`` (a sentence).
    The Kalman filter is built in the truth's world (it knows its modes: the ceiling).
    """
    out = {}
    for label, method in methods.items():
        if str(method) == "kf":
            out[label] = {
                "trained_on": f"{truth_world.name} (its modes)",
                "describe": f"knows the modes of world {truth_world.name}, the truth's (the ceiling)",
            }
        elif str(method) not in BASELINES:
            ckpt = load_checkpoint(method)
            models = [run["model"] for run in ckpt.provenance.get("control", [])]
            if models:  # a CMIP model's control run: never the synthetic truth's own world
                out[label] = {
                    "trained_on": "+".join(models),
                    "describe": f"trained on the control run of {', '.join(models)}: a fraternal twin",
                    "twin": "fraternal",
                }
                continue
            worlds = training_worlds(ckpt.config.world, ckpt.provenance)
            kind = twin_kind(truth_world, worlds)
            names = "+".join(w.name for w in worlds)
            text = "; ".join(describe_world(w) for w in worlds)
            out[label] = {
                "trained_on": names,
                "describe": f"trained on {text}: {'an' if kind == 'identical' else 'a'} {kind} twin",
                "twin": kind,
            }
    return out


def twin_attributes(truth_world: WorldSpec, records: dict[str, dict[str, str]]) -> dict[str, str]:
    """metrics.nc attributes naming the truth and what each method was trained on."""
    attrs = {"truth_world": describe_world(truth_world)}
    for label, record in records.items():
        attrs[f"{label}_trained_on"] = record["describe"]
    return attrs


def twin_markdown(truth_world: WorldSpec, records: dict[str, dict[str, str]]) -> str:
    """The summary's section on the truth and the training worlds."""
    lines = [f"- truth: {describe_world(truth_world)}"]
    lines += [f"- {label}: {record['describe']}" for label, record in records.items()]
    return "## Truth and training worlds\n\n" + "\n".join(lines) + "\n\n"
