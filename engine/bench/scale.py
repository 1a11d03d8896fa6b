"""Bench cases of scaling out: coarse training windows a second in one process and in two
under ``torchrun`` (DistributedDataParallel, gloo on CPUs)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.bench.core import case
from engine.config import Config, preset

WINDOWS = 6  # timed from the end of the first (warm-up) to the end of the last


def ddp_bench_config(windows: int = WINDOWS, batch_size: int = 1) -> Config:
    """The coarse preset cut to what a timing needs: a short control run, ``windows``
    windows, no fine-tune, no checkpoint or validation before the end."""
    config = preset("coarse")
    spec = replace(
        config.train, control_years=6, validation_years=1, steps=windows, finetune_steps=0,
        validate_every=10 * windows, checkpoint_every=10 * windows, batch_size=batch_size,
    )  # fmt: skip
    return replace(config, train=spec)


def log_windows_per_second(log: Path, processes: int, batch_size: int = 1) -> float:
    """Windows (chains cycled through a window, all ranks together) a second between the
    first and the last row of a training log: the first window's warm-up is left out."""
    with open(log, newline="") as file:
        rows = list(csv.DictReader(file))
    seconds = float(rows[-1]["seconds"]) - float(rows[0]["seconds"])
    return (len(rows) - 1) * processes * batch_size / seconds


def _train(folder: Path, config_file: Path, processes: int, threads: int, label: str) -> Path:
    """``deepda train`` on ``config_file``, plain or under torchrun; the loss log's path."""
    out = folder / f"{label}.pt"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    launcher = [sys.executable, "-m", "engine.cli"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
        launcher += ["-m", "engine.cli"]
    command = [*launcher, "train", "--config", str(config_file), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800, check=False)
    if done.returncode:
        raise RuntimeError(f"{label}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return folder / f"{label}.log.csv"


@case("train_ddp")
def bench_train_ddp() -> dict[str, Any]:
    """Coarse training windows a second: one process with one thread, one process with two
    threads (the same window, or two chains a window as a batch: the work of two ranks),
    and two processes of one thread each under torchrun (gloo), with the speed-ups."""
    from engine.io import write_config

    runs = {  # label: (processes, threads, batch size)
        "1_process_1_thread": (1, 1, 1),
        "1_process_2_threads": (1, 2, 1),
        "1_process_2_threads_batch_2": (1, 2, 2),
        "torchrun_2_processes_1_thread": (2, 1, 1),
    }
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, (processes, threads, batch) in runs.items():
            config_file = folder / f"{label}.toml"
            write_config(ddp_bench_config(batch_size=batch), config_file)
            log = _train(folder, config_file, processes, threads, label)
            rates[label] = log_windows_per_second(log, processes, batch)
    ddp = rates["torchrun_2_processes_1_thread"]
    return {
        "description": f"coarse training, {WINDOWS} windows of {preset('coarse').train.window} steps "
        "(the first one's warm-up left out); a window = one chain cycled through it, all ranks together",
        "windows_per_second": {k: round(v, 3) for k, v in rates.items()},
        "speedup_2_processes_over_1_thread": round(ddp / rates["1_process_1_thread"], 2),
        "speedup_2_processes_over_2_threads": round(ddp / rates["1_process_2_threads"], 2),
        "speedup_2_processes_over_2_threads_batch_2": round(ddp / rates["1_process_2_threads_batch_2"], 2),
    }
