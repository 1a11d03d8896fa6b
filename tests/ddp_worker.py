"""One rank of the two-process training test (tests/test_train.py), launched by torchrun:
a straight run, then the same run stopped after its second window and resumed, on the
tiny fixtures; each rank saves what it ended with to ``OUT/rank{r}.pt``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from engine.grid import build_grid
from engine.io import load_geography
from engine.observe.network import ObservingNetwork
from engine.train.distributed import init_distributed, unwrap
from engine.train.samples import TrainingSamples
from engine.train.trainer import Trainer
from engine.world.synthetic import ModelWorld
from tests.conftest import TINY, TINY_SPEC


class Stop(Exception):
    """A kill after a checkpoint: nothing saved on the way out."""


def main(out: Path) -> None:
    rank = init_distributed()
    grid = build_grid(TINY_SPEC, load_geography())
    control = ModelWorld(grid, TINY.world, run="control", n_steps=TINY.train.control_years * TINY.world.steps_per_year)
    samples = TrainingSamples(TINY, grid, control, ObservingNetwork(grid, TINY.network))
    straight = Trainer(TINY, grid, samples, str(out / "straight.pt"))
    straight.run()
    first = Trainer(TINY, grid, samples, str(out / "resumed.pt"))
    chain_starts = []

    def record_and_stop(row: dict[str, float]) -> None:
        chain_starts.append([c.start if c else -1 for c in first.state.chains])
        if row["step"] == 2:
            raise Stop

    try:
        first.run(record_and_stop)
    except Stop:
        pass
    resumed = Trainer(TINY, grid, samples, str(out / "resumed.pt"))
    resumed.restore()
    resumed.run()
    torch.save(
        {
            "straight": unwrap(straight.gen).state_dict(),
            "resumed": unwrap(resumed.gen).state_dict(),
            "straight_log": straight.state.log,
            "resumed_log": resumed.state.log,
            "chain_starts": chain_starts,
        },
        out / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
