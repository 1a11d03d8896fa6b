"""OSSE observing networks: where and when the ocean was observed, and sampling a world there.

An :class:`ObservingNetwork` (a grid plus a :class:`~engine.config.NetworkSpec`) gives,
for any step of any year, the *positions* of that step's measurements: a profile table
without temperatures. The platforms and their histories live in ``engine.observe.platforms``.
Positions depend only on (seed, platform, year, step), so the same step always gives the
same observations, whichever order steps are asked in.

:func:`observe` samples a world's absolute temperature at the positions (the climatology
trilinearly interpolated to the position, plus the anomaly of the cell holding it) and adds
Gaussian platform (instrument) error and, with an ``ObsErrorSpec``, the representativeness
error shared by the profiles of a cell and step, giving the profile table of
``engine.observe.profiles``.
The training path asks :meth:`ObservingNetwork.positions` for one step of a random
network year and :meth:`ObservingNetwork.sample` for the control world's truth there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import cftime
import numpy as np
import pandas as pd

from engine.config import NetworkSpec, ObsErrorSpec
from engine.grid import Grid, corner_weights, nearest_cell, step_day_of_year
from engine.observe.platforms import ArgoFleet, Casts, CtdCruises, Moorings, SatelliteSst, XbtLines
from engine.observe.profiles import COLUMNS, PLATFORMS, as_table
from engine.observe.representativeness import representativeness_error, shared_error_fields

PLATFORM_CODE = {name: code for code, name in enumerate(PLATFORMS)}
FIRST_YEAR = {"sst": 1981, "argo": 2000}  # AVHRR SST from 1981; Argo from 2000 (the fleet knows its own start)
# XBT fall-rate error: the probe falls slower than the manufacturer's equation, so a reported
# depth z was really measured at z / 1.025 (warmer in the thermocline), plus a small
# pure-temperature offset (Gouretski & Reseghetti 2010 give 2-4 % and 0.05-0.1 degC).
XBT_DEPTH_FACTOR = 1.025
XBT_OFFSET = 0.05
CHUNK_STEPS = 73  # world slices sampled at once by observe()


class ObservingNetwork:
    """The OSSE observing network on one grid.

    Parameters
    ----------
    grid : Grid
        Positions are kept only where the nearest cell is ocean at the measured level, so
        every profile stops at the model's sea floor.
    spec : NetworkSpec
        Seed, platforms, denial, errors, XBT bias, Argo fleet size, satellite clear fraction.
    depth_jitter : float
        0 (default) measures exactly at the model levels; a value in (0, 0.8] moves each
        measurement randomly by up to that share of half the gap to the neighbouring level.
    obs_error : ObsErrorSpec, optional
        The representativeness error drawn on top of the platform errors, one draw per cell
        and step shared by every profile there, as real ones are (none if not given).
    """

    def __init__(
        self, grid: Grid, spec: NetworkSpec, depth_jitter: float = 0.0, obs_error: ObsErrorSpec | None = None
    ) -> None:
        unknown = set(spec.platforms) - set(PLATFORM_CODE) - {"unknown"}
        if unknown:
            raise ValueError(f"unknown platform(s) {', '.join(sorted(unknown))}; use {', '.join(PLATFORMS[:-1])}")
        if not 0.0 <= depth_jitter <= 0.8:
            raise ValueError("depth_jitter must lie in [0, 0.8] so a measurement stays nearest its level")
        self.grid, self.spec, self.depth_jitter = grid, spec, depth_jitter
        # without a representativeness model the platform errors stand for it too, as quoted
        # for 5 degree cells; finer cells have less of it
        modelled = obs_error is not None and obs_error.representativeness
        self.error_scale = 1.0 if modelled else float(min(1.0, np.sqrt(grid.spec.resolution / 5.0)))
        self._builders: dict[str, Any] = {}
        self.obs_error = obs_error
        self.repr_error = None if obs_error is None else representativeness_error(grid, obs_error)

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms that observe (spec.platforms minus spec.deny)."""
        return self.spec.active

    def error(self, platform: str) -> float:
        """Error standard deviation (degC) of one measurement on this grid."""
        return self.spec.error(platform) * self.error_scale

    def _builder(self, platform: str) -> Callable[..., Casts]:
        if platform not in self._builders:  # built lazily: the Argo fleet simulation costs ~0.1 s
            grid, spec = self.grid, self.spec
            make = {
                "xbt": lambda: XbtLines(grid),
                "ctd": lambda: CtdCruises(grid),
                "mooring": lambda: Moorings(grid),
                "argo": lambda: ArgoFleet(grid, spec.argo_floats_2007, spec.seed),
                "sst": lambda: SatelliteSst(grid, spec.sst_clear_fraction),
            }
            self._builders[platform] = make[platform]()
        return self._builders[platform]

    def casts(self, year: int, step: int, steps_per_year: int) -> dict[str, Casts]:
        """Profile-level positions (one entry per profile) of every active platform in one step."""
        if not 0 <= step < steps_per_year:
            raise ValueError(f"step {step} outside 0..{steps_per_year - 1}")
        out = {}
        for platform in self.platforms:
            if year < FIRST_YEAR.get(platform, -(10**9)):
                out[platform] = Casts.empty()
                continue
            rng = np.random.default_rng([self.spec.seed, PLATFORM_CODE[platform], int(year) + 10_000, step])
            out[platform] = self._builder(platform)(int(year), step, steps_per_year, rng)
        return out

    def count(self, year: int, step: int, steps_per_year: int) -> dict[str, int]:
        """Number of profiles per platform in one step (no level expansion)."""
        return {p: len(c.lat) for p, c in self.casts(year, step, steps_per_year).items()}

    def rows(self, year: int, step: int, steps_per_year: int, time_year: int | None = None) -> dict[str, np.ndarray]:
        """One step's measurements as column arrays (row per level), profiles contiguous.

        Keys: lat, lon, depth, code (index in PLATFORMS), obs_error, profile_id, day (of the
        365-day year). ``time_year`` (default ``year``) only enters the profile ids.
        """
        casts = self.casts(year, step, steps_per_year)
        code = np.concatenate([np.full(len(c.lat), PLATFORM_CODE[p]) for p, c in casts.items()] + [np.zeros(0, int)])
        serial = np.concatenate([np.arange(len(c.lat)) for c in casts.values()] + [np.zeros(0, int)])
        lat, lon, day, zmax = (
            np.concatenate([getattr(c, f) for c in casts.values()] + [np.zeros(0)]) for f in Casts._fields
        )
        iy, ix = nearest_cell(self.grid, lat, lon)
        # levels the instrument reaches, above the model's sea floor (the ocean mask is monotone in depth)
        levels = self.grid.ocean[:, iy, ix].T & (self.grid.depth[None, :] <= zmax[:, None] + 1e-6)
        prof, k = np.nonzero(levels)  # row-major: profile by profile, shallow to deep
        depth = self.grid.depth[k]
        if self.depth_jitter > 0 and len(k):
            depth = depth + self._jitter(k, year, step)
        errors = np.array([self.error(p) if p in self.spec.platforms else 0.0 for p in PLATFORMS], dtype="f4")
        # unique per (year, step, platform, cast): readable, and stable whatever else is observed
        step_key = (int(year if time_year is None else time_year) + 10_000) * 1000 + step
        pid = (step_key * 8 + code) * 10_000_000 + serial
        return {
            "lat": lat[prof], "lon": lon[prof], "depth": depth.astype("f4"), "code": code[prof],
            "obs_error": errors[code[prof]], "profile_id": pid[prof].astype("i8"), "day": day[prof],
        }  # fmt: skip

    def _jitter(self, k: np.ndarray, year: int, step: int) -> np.ndarray:
        d = self.grid.depth
        gaps = np.diff(d)
        half = 0.5 * np.minimum(np.r_[d[0], gaps], np.r_[gaps, gaps[-1:] if len(gaps) else d[:1]])
        rng = np.random.default_rng([self.spec.seed, 77, int(year) + 10_000, step])
        return self.depth_jitter * half[k] * rng.uniform(-1.0, 1.0, len(k))

    def positions(
        self, year: int, step: int, steps_per_year: int, calendar: str = "standard", time_year: int | None = None
    ) -> pd.DataFrame:
        """One step's observation positions: a profile table without temperature and qc.

        Parameters
        ----------
        year, step, steps_per_year : int
            The network year and the step within it (0-based).
        calendar : {"standard", "noleap"}
            Time stamps as numpy datetime64 or cftime ``DatetimeNoLeap``.
        time_year : int, optional
            Year written in the time stamps (default ``year``): lets a control world in
            model years be observed by the network of a real year.
        """
        r = self.rows(year, step, steps_per_year, time_year)
        ty = int(year if time_year is None else time_year)
        return _frame(r, stamps(np.full(len(r["day"]), ty), r["day"], calendar))

    def sample(
        self, anomaly: np.ndarray, positions: pd.DataFrame, rng: np.random.Generator, day_of_year: float
    ) -> np.ndarray:
        """Observed temperature at ``positions`` from one step's truth ``anomaly`` (nz, ny, nx).

        See :meth:`_measure`; ``day_of_year`` is the step's centre (for the seasonal cycle).
        Returns float32, one value per row.
        """
        codes = positions["platform"].cat.codes.to_numpy() if "platform" in positions else positions["code"].to_numpy()
        doy = np.full(len(positions), float(day_of_year))
        value = self._measure(anomaly, positions, codes, None, rng.standard_normal(len(positions)), doy)
        shared = self.shared_errors(rng, 1)
        if shared is None:
            return value
        lat, lon, depth = (positions[c].to_numpy() for c in ("lat", "lon", "depth"))
        return value + cell_value(shared[0], self.grid, lat, lon, depth).astype("f4")

    def shared_errors(self, rng: np.random.Generator, n_steps: int) -> np.ndarray | None:
        """(n_steps, nz, ny, nx) draws of the representativeness error (None without one)."""
        if self.repr_error is None or not self.repr_error.any():
            return None
        return shared_error_fields(self.repr_error, self.grid.depth, self.obs_error.vertical_scale_m, rng, n_steps)

    def _measure(
        self,
        anomaly: np.ndarray,
        rows: Any,
        codes: np.ndarray,
        t: np.ndarray | None,
        noise: np.ndarray,
        doy: np.ndarray,
    ) -> np.ndarray:
        """Climatology at the position + the anomaly of the cell holding it + N(0, obs_error).

        The stated errors are instrument plus representativeness error for a cell mean
        (DESIGN section 6), so the anomaly is the cell's own value (linear between levels)
        and the observation minus the cell truth has exactly the stated spread. The
        climatology is interpolated to the position, as gridding removes it there.
        """
        lat, lon = np.asarray(rows["lat"]), np.asarray(rows["lon"])
        depth = np.asarray(rows["depth"], dtype="f8")
        xbt = codes == PLATFORM_CODE["xbt"]
        if self.spec.xbt_bias:
            depth = np.where(xbt, depth / XBT_DEPTH_FACTOR, depth)
        value = climatology_at(self.grid, lat, lon, depth, doy) + cell_value(anomaly, self.grid, lat, lon, depth, t)
        if self.spec.xbt_bias:
            value = value + XBT_OFFSET * xbt
        return (value + noise * np.asarray(rows["obs_error"])).astype("f4")


def stamps(year: np.ndarray, day: np.ndarray, calendar: str = "standard") -> np.ndarray:
    """Time stamps from year and day of a 365-day year (the leap day is skipped, as in
    ``engine.grid.step_times``), as datetime64[ns] (standard) or cftime objects (noleap)."""
    year = np.asarray(year, dtype="i8")
    day = np.asarray(day, dtype="f8")
    if calendar == "noleap":
        if len(day) == 0:
            return np.zeros(0, dtype=object)
        # num2date is vectorised; the unique trick keeps it to one call per distinct stamp
        uniq, inverse = np.unique((year - 1) * 365.0 + day, return_inverse=True)
        return np.asarray(cftime.num2date(uniq, "days since 0001-01-01", calendar="noleap"))[inverse]
    if calendar != "standard":
        raise ValueError(f"unknown calendar {calendar!r}; use 'standard' or 'noleap'")
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    jan1 = (year - 1970).astype("datetime64[Y]").astype("datetime64[ns]")
    # whole seconds: profile files store times exactly in seconds since 1950
    return jan1 + np.round((day + (leap & (day >= 59.0))) * 86400.0).astype("timedelta64[s]").astype("timedelta64[ns]")


def _frame(rows: dict[str, np.ndarray], time: np.ndarray) -> pd.DataFrame:
    platform = pd.Categorical.from_codes(rows["code"], dtype=COLUMNS["platform"])
    return pd.DataFrame(
        {
            "time": time,
            "lat": rows["lat"].astype("f8"),
            "lon": rows["lon"].astype("f8"),
            "depth": rows["depth"].astype("f4"),
            "platform": platform,
            "obs_error": rows["obs_error"].astype("f4"),
            "profile_id": rows["profile_id"].astype("i8"),
        }
    )


def climatology_at(grid: Grid, lat: np.ndarray, lon: np.ndarray, depth: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Climatology + seasonal cycle interpolated trilinearly to each point (ocean corners only)."""
    cells, weights = corner_weights(grid, lat, lon, depth)
    static = np.concatenate([grid.climatology[None], grid.seasonal_harmonics]).reshape(5, -1)
    values = np.einsum("cn,hcn->hn", weights, static[:, cells])  # (5, n)
    phase = 2.0 * np.pi * np.asarray(doy, dtype="f8") / 365.0
    basis = np.stack([np.ones_like(phase), np.cos(phase), np.sin(phase), np.cos(2 * phase), np.sin(2 * phase)])
    return (basis * values).sum(axis=0)


def cell_value(
    field: np.ndarray, grid: Grid, lat: np.ndarray, lon: np.ndarray, depth: np.ndarray, t: np.ndarray | None = None
) -> np.ndarray:
    """Value of the cell holding each point, linear between levels (ocean levels only); ``field``
    is (nz, ny, nx), or (nt, nz, ny, nx) with a step index ``t`` per point."""
    nz, ny, nx = grid.shape
    iy, ix = nearest_cell(grid, lat, lon)
    d, depth = grid.depth, np.asarray(depth, dtype="f8")
    z0 = np.clip(np.searchsorted(d, depth, side="right") - 1, 0, max(nz - 2, 0))
    z1 = np.minimum(z0 + 1, nz - 1)
    wz = np.clip((depth - d[z0]) / np.where(z1 > z0, d[z1] - d[z0], 1.0), 0.0, 1.0)
    wz = wz * grid.ocean[z1, iy, ix]  # below the cell's deepest level: keep the level above
    offset = 0 if t is None else np.asarray(t, dtype="i8") * (nz * ny * nx)
    flat = np.asarray(field).reshape(-1)
    horizontal = iy * nx + ix + offset
    return (1.0 - wz) * flat[z0 * ny * nx + horizontal] + wz * flat[z1 * ny * nx + horizontal]


def observe(
    world: Any,
    network: ObservingNetwork,
    start: int = 0,
    stop: int | None = None,
    progress: Callable[[int], None] | None = None,
    network_start_year: int | None = None,
) -> pd.DataFrame:
    """Sample ``world`` with ``network`` over steps ``start..stop`` -> profile table.

    Parameters
    ----------
    world : ModelWorld
        Needs ``start_year, steps_per_year, calendar, n_steps`` and ``temperature(start, stop)``.
    start, stop : int
        World step range (stop defaults to ``world.n_steps``).
    progress : callable, optional
        Called with the number of steps just finished (an increment, like ``tqdm.update``).
    network_start_year : int, optional
        Network year observing world step 0 (default ``world.start_year``, right for the
        historical run); e.g. 2010 to observe a control run in model years with the Argo-era
        network. Time stamps keep the world's years and calendar (cftime for noleap).
    """
    frames = list(iter_observe(world, network, start, stop, progress, network_start_year))
    if not frames:
        return as_table(pd.DataFrame({c: [] for c in COLUMNS}))
    return pd.concat(frames, ignore_index=True)


def iter_observe(
    world: Any,
    network: ObservingNetwork,
    start: int = 0,
    stop: int | None = None,
    progress: Callable[[int], None] | None = None,
    network_start_year: int | None = None,
) -> Iterator[pd.DataFrame]:
    """:func:`observe` one chunk of ``CHUNK_STEPS`` steps at a time (a profile table per chunk),
    so that long periods can be written out without holding every row (~2 M a year with Argo)."""
    stop = world.n_steps if stop is None else stop
    spy, first = world.steps_per_year, world.start_year
    shift = 0 if network_start_year is None else network_start_year - first
    for c0 in range(start, stop, CHUNK_STEPS):
        c1 = min(stop, c0 + CHUNK_STEPS)
        truth = world.anomaly(c0, c1)
        parts, noise = [], []
        for s in range(c0, c1):  # positions per step; sampling below is one vectorised call
            year, step = first + s // spy, s % spy
            r = network.rows(year + shift, step, spy, time_year=year)
            r["t"], r["year"] = np.full(len(r["day"]), s - c0), np.full(len(r["day"]), year)
            parts.append(r)
            rng = np.random.default_rng([network.spec.seed, 101, year + shift + 10_000, step])
            noise.append(rng.standard_normal(len(r["day"])))
        rows = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        doy = step_day_of_year(c1 - c0, spy, c0)[rows["t"]]
        temperature = network._measure(truth, rows, rows["code"], rows["t"], np.concatenate(noise), doy)
        temperature += _shared_draws(network, rows, c0, c1, first, spy, shift)
        yield _table(rows, temperature, world.calendar)
        if progress:
            progress(c1 - c0)


def _shared_draws(
    network: ObservingNetwork, rows: dict[str, np.ndarray], c0: int, c1: int, first: int, spy: int, shift: int
) -> np.ndarray:
    """Each row's share of its cell's representativeness error, drawn per step from a seed
    of its own (so a step's draw does not depend on how the run is chunked)."""
    fields = []
    for s in range(c0, c1):
        rng = np.random.default_rng([network.spec.seed, 103, first + s // spy + shift + 10_000, s % spy])
        fields.append(network.shared_errors(rng, 1))
    if fields[0] is None:
        return np.zeros(len(rows["t"]), "f4")
    stack = np.concatenate(fields)
    return cell_value(stack, network.grid, rows["lat"], rows["lon"], rows["depth"], rows["t"]).astype("f4")


def _table(rows: dict[str, np.ndarray], temperature: np.ndarray, calendar: str) -> pd.DataFrame:
    """Rows + temperatures -> profile table (cftime times kept as objects for noleap)."""
    time = stamps(rows["year"], rows["day"], calendar)
    frame = _frame(rows, time if calendar == "standard" else np.zeros(len(time), "datetime64[ns]"))
    frame["temperature"] = temperature
    table = as_table(frame)
    if calendar != "standard":
        table["time"] = time  # as_table insists on datetime64; model years need cftime
    return table


def yearly_counts(network: ObservingNetwork, years: range | list[int], steps_per_year: int) -> pd.DataFrame:
    """Profiles per year and platform (rows: years, columns: active platforms), by counting positions."""
    counts = {
        y: pd.DataFrame([network.count(y, s, steps_per_year) for s in range(steps_per_year)]).sum() for y in years
    }
    out = pd.DataFrame(counts).T.reindex(columns=list(network.platforms)).fillna(0).astype("i8")
    out.index.name = "year"
    return out
