"""Memory a run needs, estimated before it starts, so that an impossible request is refused
with the number instead of failing hours in (or asking the allocator for 2 TiB).

The estimates are lower bounds: the large arrays a stage holds at once, not the interpreter,
the libraries or the allocator's slack. A run refused here could never have fitted.
"""

from __future__ import annotations

import math

from engine.config import Config
from engine.errors import InputError

FLOAT32, FLOAT64 = 4, 8
WORLD_CHUNK = 365  # steps engine.io.write_world and the gridding hold at once
CHUNK_ARRAYS = 4  # eddy noise, its filtered copy, thetao, the write buffer (measured: about 6)
EOF_CAP = 2048 * 2**20  # engine.train.samples.TrainingSamples.eof_basis keeps its copy below this


def cells(shape: tuple[int, ...]) -> int:
    """Points of one 3-D field."""
    return math.prod(shape)


def world_bytes(shape: tuple[int, int, int], n_modes: int, n_steps: int) -> int:
    """A model-world run: its amplitudes (the whole run, float64: the shocks, their draw and
    the amplitudes themselves), its patterns, and one chunk of fields."""
    amplitudes = 3 * n_steps * n_modes * FLOAT64
    patterns = (n_modes + 4) * cells(shape) * FLOAT32  # modes, eddy std, warming, volcanic
    chunk = min(n_steps, WORLD_CHUNK) * cells(shape) * FLOAT32 * CHUNK_ARRAYS
    return amplitudes + patterns + chunk


def assimilate_bytes(config: Config, members: int, deepda: bool) -> int:
    """An assimilation: the members' background, analysis and perturbed observations, a
    year of gridded observations, the generator's activations for every member and the
    output's time block held until written (mean, anomaly, spread)."""
    from engine.io.fields import CHUNK_STEPS  # engine.io imports this module

    field = cells(config.grid.shape) * FLOAT32
    ensemble = 4 * members * field
    gridded = 4 * config.world.steps_per_year * field  # anomaly, mask, error, count
    network = members * field * (config.model.relu_channels + config.model.tanh_channels) if deepda else 0
    held = 3 * CHUNK_STEPS * field
    return ensemble + gridded + network + held


def train_bytes(config: Config) -> int:
    """Training: the control runs, the normaliser's years, the EOF copy, the windows and the
    activations kept for backpropagation."""
    spec, field = config.train, cells(config.grid.shape) * FLOAT32
    spy = config.world.steps_per_year
    n_steps = spec.control_years * spy
    worlds = 1 + len(spec.worlds)  # each training world's control run (sized like the first)
    world = worlds * world_bytes(config.grid.shape, config.world.n_modes, n_steps)
    normaliser = 4 * spy * field * worlds
    n_train = (spec.control_years - spec.validation_years) * spy
    eofs = min(n_train * 2 * field, EOF_CAP) if config.model.reduced_space else 0
    windows = 6 * spec.batch_size * spec.window * field  # truth, obs, mask, error, background, analysis
    backprop = max(spec.backprop_steps, spec.finetune_backprop_steps if spec.finetune_steps else 0)
    widths = config.model.relu_channels + config.model.tanh_channels
    activations = 2 * spec.batch_size * backprop * field * widths
    return world + normaliser + eofs + windows + activations


def size_text(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def machine_memory() -> int:
    """This machine's physical memory in bytes."""
    import psutil

    return int(psutil.virtual_memory().total)


def check_fits(need: int, what: str, fix: str, total: int | None = None) -> None:
    """An InputError, before anything starts, when ``need`` bytes exceed the machine's memory."""
    total = machine_memory() if total is None else total
    if need > total:
        raise InputError(
            f"{what} needs at least {size_text(need)} of memory and this machine has {size_text(total)}; {fix}"
        )


def release_freed() -> None:
    """Free reference cycles and hand freed heap pages back to the system (glibc's
    ``malloc_trim``): a loop over large chunks otherwise grows the heap by fragmentation
    (measured on the 1 degree regridding: 262 -> 369 MB over 35 years read, flat with this)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
