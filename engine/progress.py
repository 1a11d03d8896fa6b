"""Progress across stages: one overall fraction, the time left, and how both read.

Pure helpers shared by the command line (plain lines or a tqdm bar) and the dashboard's
first start (one progress bar over truth, observations and analysis).
"""

from __future__ import annotations

import time
from collections.abc import Callable

MIN_ELAPSED_S = 3.0  # no estimate of the time left before this much work was seen


def format_duration(seconds: float) -> str:
    """'45 s', '6 min', '1 h 05 min': what a person reads at a glance."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60.0)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Eta:
    """The time left, from the rate of progress since the first fraction seen.

    The first fraction is the baseline, not zero: work found finished (a cache, a resumed
    run) does not make the rest look faster than it is.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.start: tuple[float, float] | None = None

    def left(self, fraction: float) -> float | None:
        """Seconds left at ``fraction`` (0-1) done; None until there is a rate to go by."""
        now = self.clock()
        if self.start is None:
            self.start = (now, fraction)
            return None
        t0, f0 = self.start
        if fraction >= 1.0:
            return 0.0
        if now - t0 < MIN_ELAPSED_S or fraction <= f0:
            return None
        return (now - t0) / (fraction - f0) * (1.0 - fraction)


class Stages:
    """Consecutive stages as one fraction, each stage weighted by its expected cost.

    ``weights`` maps each stage's name, in the order they run, to its expected cost (any
    unit, e.g. seconds): a stage reported at fraction ``f`` counts the stages before it as
    done plus ``f`` of its own weight. Reporting a later stage skips the earlier ones
    (found finished), so the one bar never goes back to 0 %.
    """

    def __init__(self, weights: dict[str, float]) -> None:
        total = sum(weights.values()) or 1.0
        self.names = list(weights)
        self.share = {name: w / total for name, w in weights.items()}
        self.best = 0.0

    def overall(self, stage: str, fraction: float) -> float:
        """The overall fraction (0-1, never decreasing) with ``stage`` at ``fraction``."""
        if stage not in self.share:
            raise KeyError(f"unknown stage {stage!r}; known: {', '.join(self.names)}")
        before = sum(self.share[n] for n in self.names[: self.names.index(stage)])
        value = before + self.share[stage] * min(max(fraction, 0.0), 1.0)
        self.best = max(self.best, min(value, 1.0))
        return self.best


def describe(fraction: float, seconds_left: float | None) -> str:
    """'43 % done, about 6 min left' (no time left before there is an estimate)."""
    text = f"{100 * fraction:.0f} % done"
    return f"{text}, about {format_duration(seconds_left)} left" if seconds_left is not None else text
