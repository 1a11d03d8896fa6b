"""Shared seeded fixtures: a tiny 16 x 8 x 4 grid derived from the real geography."""

from __future__ import annotations

import pytest

from engine.config import GridSpec, preset
from engine.grid import Grid, build_grid
from engine.io import load_geography

TINY_SPEC = GridSpec("tiny", 22.5, (10.0, 100.0, 500.0, 1500.0))


@pytest.fixture(scope="session")
def geography():
    return load_geography()


@pytest.fixture(scope="session")
def tiny_grid(geography) -> Grid:
    return build_grid(TINY_SPEC, geography)


@pytest.fixture(scope="session")
def coarse_grid(geography) -> Grid:
    return build_grid(preset("coarse").grid, geography)
