"""Bench cases of raw compute: the generator's FLOP rate against the machine's matmul rate."""

from __future__ import annotations

from typing import Any

from engine.bench.core import _median_seconds, case
from engine.config import preset


def _matmul_gflops(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds = _median_seconds(lambda: a @ b, 5)
    return 2 * 2048**3 / seconds / 1e9


def _generator_case(name: str, channels_last: bool) -> dict[str, Any]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from engine.train.checkpoint import build_generator

    config = preset(name)
    gen = build_generator(config.model, config.grid.shape).eval()
    shape = (1, 1, *config.grid.shape)
    x = torch.randn(shape)
    mask = (torch.rand(shape) < 0.1).float()
    ocean = torch.ones(shape)
    if channels_last:  # the convolutions' weights only: the reduced-space layer's 4-D EOFs have no such layout
        for layer in gen.modules():
            if isinstance(layer, torch.nn.Conv3d | torch.nn.ConvTranspose3d):
                layer.to(memory_format=torch.channels_last_3d)
        x, mask, ocean = (t.contiguous(memory_format=torch.channels_last_3d) for t in (x, mask, ocean))
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            gen(x, x * mask, mask, ocean, mask)
        flops = counter.get_total_flops()
        repeats = 5 if name == "coarse" else 2
        seconds = _median_seconds(lambda: gen(x, x * mask, mask, ocean, mask), repeats)
    return {
        "seconds": round(seconds, 4),
        "gflop": round(flops / 1e9, 3),
        "gflops_per_s": round(flops / seconds / 1e9, 2),
    }


@case("generator")
def bench_generator() -> dict[str, Any]:
    """Generator inference per step on each preset: time, FLOPs, achieved GFLOP/s vs matmul."""
    import torch

    threads = torch.get_num_threads()
    ceiling = _matmul_gflops(threads)
    result: dict[str, Any] = {"threads": threads, "matmul_gflops_per_s": round(ceiling, 1)}
    for name in ("coarse", "medium", "paper"):
        plain = _generator_case(name, channels_last=False)
        fast = _generator_case(name, channels_last=True)
        best = min(plain, fast, key=lambda r: r["seconds"])
        result[name] = {
            "default_layout": plain,
            "channels_last_3d": fast,
            "fraction_of_matmul_ceiling": round(best["gflops_per_s"] / ceiling, 3),
        }
    return result
