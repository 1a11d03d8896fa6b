"""Twins: which worlds trained each model, which world gave the truth (issue 26).

A composition for the OSSE's outputs: a DeepDA checkpoint says what it was trained on
(:func:`engine.world.identity.training_worlds`), the Kalman filter knows the truth's
world, and every summary names both, so an identical twin is never read as a fraternal one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.config import WorldSpec
from engine.da.registry import BASELINES
from engine.train.checkpoint import load_checkpoint
from engine.world.identity import describe_world, training_worlds, twin_kind


@dataclass(frozen=True)
class ModelTruth:
    """The truth when it is a model's historical run (``deepda osse --truth``), not a synthetic world."""

    name: str
    description: str


Truth = WorldSpec | ModelTruth


def describe_truth(truth: Truth) -> str:
    return truth.description if isinstance(truth, ModelTruth) else describe_world(truth)


def twin_records(truth_world: Truth, methods: dict[str, str | Path]) -> dict[str, dict[str, str]]:
    """For each method, what it knows beyond the observations and, for DeepDA
    checkpoints, whether the truth is an identical or a fraternal twin of its training.

    Keys of each record: ``trained_on`` (world names joined by +), ``describe`` (a sentence).
    The Kalman filter is built in the truth's world (it knows its modes: the ceiling). A
    model's run as the truth is an identical twin of a checkpoint trained on that model's
    control run, and fraternal to every other.
    """
    out = {}
    for label, method in methods.items():
        if str(method) == "kf" and isinstance(truth_world, ModelTruth):
            raise ValueError("the Kalman filter needs the truth's world modes; a model's run has none")
        if str(method) == "kf":
            out[label] = {
                "trained_on": f"{truth_world.name} (its modes)",
                "describe": f"knows the modes of world {truth_world.name}, the truth's (the ceiling)",
            }
        elif str(method) not in BASELINES:
            ckpt = load_checkpoint(method)
            models = [run["model"] for run in ckpt.provenance.get("control", [])]
            if models:  # a CMIP model's control run: never the synthetic truth's own world
                same = isinstance(truth_world, ModelTruth) and truth_world.name in models
                kind = "identical" if same else "fraternal"
                out[label] = {
                    "trained_on": "+".join(models),
                    "describe": f"trained on the control run of {', '.join(models)}: {'an' if same else 'a'} {kind} twin",
                    "twin": kind,
                }
                continue
            worlds = training_worlds(ckpt.config.world, ckpt.provenance)
            kind = "fraternal" if isinstance(truth_world, ModelTruth) else twin_kind(truth_world, worlds)
            names = "+".join(w.name for w in worlds[:3]) + (f"+{len(worlds) - 3} more" if len(worlds) > 3 else "")
            text = "; ".join(describe_world(w) for w in worlds[:3])
            if len(worlds) > 3:  # a distribution of drawn worlds: named, not described one by one
                text += f"; and {len(worlds) - 3} more worlds ({', '.join(w.name for w in worlds[3:])})"
            out[label] = {
                "trained_on": names,
                "describe": f"trained on {text}: {'an' if kind == 'identical' else 'a'} {kind} twin",
                "twin": kind,
            }
    return out


def twin_attributes(truth_world: Truth, records: dict[str, dict[str, str]]) -> dict[str, str]:
    """metrics.nc attributes naming the truth and what each method was trained on."""
    attrs = {"truth_world": describe_truth(truth_world)}
    for label, record in records.items():
        attrs[f"{label}_trained_on"] = record["describe"]
    return attrs


def twin_markdown(truth_world: Truth, records: dict[str, dict[str, str]]) -> str:
    """The summary's section on the truth and the training worlds."""
    lines = [f"- truth: {describe_truth(truth_world)}"]
    lines += [f"- {label}: {record['describe']}" for label, record in records.items()]
    return "## Truth and training worlds\n\n" + "\n".join(lines) + "\n\n"
