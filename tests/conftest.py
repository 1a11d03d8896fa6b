"""Shared seeded fixtures: a tiny 16 x 8 x 4 grid derived from the real geography, the tiny
config every end-to-end test trains with, and its control world and training samples.

The samples and worlds are session-scoped: building them is most of a small test's time,
and nothing in them changes once built (the world caches its seeded amplitudes, the
samples their seeded validation windows), so a test cannot see another's leftovers.
"""

from __future__ import annotations

import os

# One thread per test process unless asked otherwise, set before torch is imported: the
# test fields are tiny, and on shared cores threads spinning on each other made a tiny
# convolution 15-25x slower (the tuning test ran past its 600 s timeout with two threads,
# 48 s with one). Subprocesses (the CLI, DDP) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine import io
from engine.config import Config, GridSpec, ModelSpec, NetworkSpec, TrainSpec, WorldSpec, preset
from engine.grid import Grid, build_grid
from engine.io import load_geography
from engine.world.synthetic import ModelWorld

if TYPE_CHECKING:  # torch is imported only by the tests that use the samples
    from engine.train.samples import TrainingSamples

TINY_SPEC = GridSpec("tiny", 22.5, (10.0, 100.0, 500.0, 1500.0))

TINY = Config(
    grid=TINY_SPEC,
    world=WorldSpec(n_modes=8),
    network=NetworkSpec(argo_floats_2007=300),  # a tenth of the fleet keeps tiny runs quick
    model=ModelSpec(
        relu_channels=4,
        tanh_channels=2,
        n_stages=2,
        kernels=((3, 3, 3),),
        disc_channels=4,
        reduced_space=8,
        offset_patterns=2,
    ),  # fmt: skip
    train=TrainSpec(
        control_years=3,
        validation_years=1,
        window=3,
        backprop_steps=2,
        steps=4,
        finetune_steps=2,
        finetune_backprop_steps=3,
        checkpoint_every=1,
        validate_every=2,
        adversarial_weight=0.1,  # the paper's GAN: the critic's path is trained and resumed too
    ),
)
SHORT_STEPS = 40  # length of the short tiny control run (tiny_world)


@pytest.fixture(scope="session")
def geography():
    return load_geography()


@pytest.fixture(scope="session")
def tiny_grid(geography) -> Grid:
    return build_grid(TINY_SPEC, geography)


@pytest.fixture(scope="session")
def coarse_grid(geography) -> Grid:
    return build_grid(preset("coarse").grid, geography)


@pytest.fixture(scope="session")
def tiny_config() -> Config:
    return TINY


@pytest.fixture(scope="session")
def tiny_config_file(tmp_path_factory) -> Path:
    """:data:`TINY` written as TOML, for the CLI."""
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    io.write_config(TINY, path)
    return path


@pytest.fixture(scope="session")
def tiny_control(tiny_grid) -> ModelWorld:
    """The control run :data:`TINY` trains on (``train.control_years`` years)."""
    n_steps = TINY.train.control_years * TINY.world.steps_per_year
    return ModelWorld(tiny_grid, TINY.world, run="control", n_steps=n_steps)


@pytest.fixture(scope="session")
def tiny_samples(tiny_grid, tiny_control) -> TrainingSamples:
    """:data:`TINY`'s training samples: its control run observed by its OSSE network."""
    from engine.observe.network import ObservingNetwork
    from engine.train.samples import TrainingSamples

    return TrainingSamples(TINY, tiny_grid, tiny_control, ObservingNetwork(tiny_grid, TINY.network))


@pytest.fixture(scope="session")
def tiny_world(tiny_grid) -> ModelWorld:
    """A short (:data:`SHORT_STEPS`) control run of :data:`TINY`'s 8-mode world.

    Not the first steps of :func:`tiny_control`: a run's first mode amplitudes depend on
    its length (the initial state is drawn after the shocks).
    """
    return ModelWorld(tiny_grid, TINY.world, run="control", n_steps=SHORT_STEPS)
