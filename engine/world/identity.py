"""What a synthetic world is called and how it was built, for OSSE summaries and checkpoints.

Fraternal twins (trained on one world, judged on another) are only honest when every
output says which worlds trained the model and which one gave the truth; these helpers
make that text, and decide whether two worlds are the same world (an identical twin).
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from typing import Any

from engine.config import WorldSpec

# Settings that say where a run sits in time, not how its world is built: two specs that
# differ only in these are the same world.
TIME_ONLY = ("historical_start_year", "historical_end_year", "control_start_year")


def describe_world(spec: WorldSpec) -> str:
    """One line: the world's name and what sets it apart (seed, modes, spectra, ENSO, eddies, warming)."""
    return (
        f"world {spec.name} (seed {spec.seed}, {spec.n_modes} modes, lengths {spec.min_length_km:g}-"
        f"{spec.max_length_km:g} km, memories {spec.min_memory_days:g} d-{spec.max_memory_years:g} y, "
        f"depth scales {spec.min_efold_m:g}-{spec.max_efold_m:g} m, ENSO {spec.enso_period_years:g} y "
        f"{spec.enso_nino34_std:g} degC, eddy share {spec.eddy_variance_fraction:g}, warming "
        f"{spec.surface_warming_per_decade:g} degC/decade e-folding {spec.warming_efold_m:g} m)"
    )


def same_world(a: WorldSpec, b: WorldSpec) -> bool:
    """True when ``a`` and ``b`` build the same world (names and run years aside)."""
    keep = {name: getattr(a, name) for name in (*TIME_ONLY, "name")}
    return replace(b, **keep) == a


def worlds_to_text(specs: list[WorldSpec]) -> str:
    """The specs as JSON text (checkpoint provenance holds plain strings)."""
    return json.dumps([asdict(s) for s in specs])


def worlds_from_text(text: str) -> list[WorldSpec]:
    """The specs written by :func:`worlds_to_text`; unknown keys (a newer version's) are dropped."""
    known = {f.name for f in fields(WorldSpec)}
    return [WorldSpec(**{k: v for k, v in item.items() if k in known}) for item in json.loads(text)]


def training_worlds(config_world: WorldSpec, provenance: dict[str, Any]) -> list[WorldSpec]:
    """The worlds a checkpoint was trained on: its provenance's list, else (checkpoints
    from before several worlds) the world of its own config."""
    text = provenance.get("training_worlds")
    return worlds_from_text(str(text)) if text else [config_world]


def twin_kind(truth: WorldSpec, trained: list[WorldSpec]) -> str:
    """'identical' when the truth's world is one the model was trained on, else 'fraternal'."""
    return "identical" if any(same_world(truth, w) for w in trained) else "fraternal"
