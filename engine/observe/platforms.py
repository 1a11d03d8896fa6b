"""Platform builders of the OSSE observing network: where each platform measured in one step.

Each builder turns (year, step, steps per year, random generator) into :class:`Casts`:
the horizontal positions, day of year and deepest measured depth of that step's
profiles. ``engine.observe.network`` composes them into profile tables; everything here is
vectorised numpy and deterministic given the generator. Platform histories follow the
real network (DESIGN section 6): XBTs on shipping routes peaking around 1990, sparse
CTD cruises, the TAO/TRITON, PIRATA and RAMA moorings as they were deployed, Argo from
2000, and satellite SST with spatially correlated cloud gaps.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter

from engine.grid import EARTH_RADIUS_M, Grid, nearest_cell

# --- platform histories ------------------------------------------------------------------
# fmt: off
# Profiles per year at anchor years (linear in between, flat outside), shaped after the
# World Ocean Database / HadIOD counts: XBTs peak around 1990 and fall to ~20k after 2005.
XBT_RATE = ((1981, 38_000), (1985, 46_000), (1988, 55_000), (1995, 55_000), (2000, 40_000), (2005, 24_000), (2020, 20_000))
CTD_RATE = ((1981, 3_000), (1989, 3_500), (1991, 5_000), (1998, 5_000), (2001, 3_000), (2020, 2_500))
# Active Argo floats at the start of each year (scaled by NetworkSpec.argo_floats_2007 / 3000).
ARGO_ACTIVE = ((2000, 0), (2001, 250), (2002, 550), (2003, 850), (2004, 1250), (2005, 1750), (2006, 2300),
               (2007, 2750), (2008, 3050), (2010, 3300), (2013, 3600), (2021, 3900))

# Shipping routes with XBT lines: relative traffic, waypoints (lat, lon) between real ports.
XBT_ROUTES: dict[str, tuple[float, list[tuple[float, float]]]] = {
    "New York-Rotterdam": (1.5, [(40.4, -73.5), (41.0, -65.0), (44.0, -45.0), (48.5, -20.0), (49.8, -5.0), (51.9, 3.5)]),
    "Miami-Gibraltar": (1.0, [(25.5, -79.5), (31.0, -62.0), (35.5, -35.0), (36.0, -12.0), (36.0, -6.0)]),
    "English Channel-Cape Town": (1.0, [(49.0, -6.0), (40.0, -14.0), (20.0, -21.0), (5.0, -12.0), (-15.0, 2.0), (-34.0, 17.5)]),
    "Rio de Janeiro-Cape Town": (0.8, [(-23.5, -42.5), (-28.5, -25.0), (-32.5, -5.0), (-34.5, 17.0)]),
    "Panama-Yokohama": (1.3, [(7.5, -80.0), (16.0, -105.0), (26.0, -135.0), (33.0, -165.0), (35.0, 165.0), (34.8, 140.5)]),
    "Panama-Sydney": (1.0, [(7.5, -80.0), (-2.0, -100.0), (-15.0, -130.0), (-25.0, -160.0), (-33.0, 170.0), (-34.0, 152.0)]),
    "San Francisco-Honolulu-Guam": (1.2, [(37.6, -123.0), (29.0, -140.0), (21.2, -158.0), (17.5, -175.0), (14.5, 165.0), (13.5, 145.0)]),
    "Seattle-Tokyo": (1.0, [(48.2, -125.5), (51.0, -150.0), (50.5, -175.0), (45.0, 165.0), (35.0, 141.0)]),
    "Los Angeles-Tahiti-Auckland": (0.8, [(33.5, -118.5), (15.0, -135.0), (-17.0, -149.0), (-30.0, -165.0), (-36.5, 175.0)]),
    "Yokohama-Sydney": (1.0, [(34.8, 140.5), (25.0, 145.0), (10.0, 150.0), (-5.0, 155.0), (-20.0, 155.5), (-33.8, 151.8)]),
    "Cape Town-Fremantle": (0.8, [(-34.5, 18.5), (-37.5, 40.0), (-38.0, 70.0), (-35.5, 100.0), (-32.0, 115.0)]),
    "Fremantle-Sunda Strait": (0.7, [(-32.0, 115.0), (-20.0, 110.0), (-7.0, 105.0)]),
    "Red Sea-Bombay": (0.6, [(20.0, 38.5), (13.0, 43.0), (12.5, 50.0), (15.0, 62.0), (18.8, 72.5)]),
    "Aden-Colombo-Singapore": (0.8, [(12.5, 45.0), (9.0, 60.0), (6.0, 80.0), (6.0, 95.0), (2.5, 101.0)]),
}


def _tao() -> list[tuple[str, float, float, int]]:
    """TAO/TRITON: (line longitude, first year, latitudes); the equatorial site first, the
    rest a year later, the array complete at the end of 1994 (TRITON took over west of 160E)."""
    lines = (
        (165.0, 1986, (8, 5, 2, 0, -2, -5, -8)), (180.0, 1989, (8, 5, 2, 0, -2, -5, -8)),
        (-170.0, 1988, (8, 5, 2, 0, -2, -5, -8)), (-155.0, 1990, (8, 5, 2, 0, -2, -5, -8)),
        (-140.0, 1985, (9, 5, 2, 0, -2, -5, -8)), (-125.0, 1987, (8, 5, 2, 0, -2, -5, -8)),
        (-110.0, 1985, (8, 5, 2, 0, -2, -5, -8)), (-95.0, 1991, (8, 5, 2, 0, -2, -5, -8)),
        (156.0, 1992, (8, 5, 2, 0, -2, -5)), (147.0, 1993, (5, 2, 0, -2)), (138.0, 1994, (8, 5, 2)),
    )
    return [("tao", lat, lon, year if lat == 0 else min(year + 1, 1994)) for lon, year, lats in lines for lat in lats]


# PIRATA (Atlantic, from 1997) and RAMA (Indian Ocean, from 2004): (array, lat, lon, first year).
PIRATA = (
    (0, -35, 1997), (0, -23, 1997), (0, -10, 1998), (0, 0, 1998), (15, -38, 1998), (12, -38, 1998),
    (8, -38, 1998), (4, -38, 1999), (-6, -10, 1999), (-10, -10, 1999), (-8, -30, 2005), (-14, -32, 2005),
    (-19, -34, 2005), (20, -38, 2007), (21, -23, 2007), (12, -23, 2006), (4, -23, 2006), (-6, 8, 2013),
)
RAMA = (
    (15, 90, 2008), (12, 90, 2008), (8, 90, 2006), (4, 90, 2007), (1.5, 90, 2006), (0, 90, 2004),
    (-1.5, 90, 2004), (-4, 90, 2006), (-8, 90, 2006), (0, 80.5, 2004), (-1.5, 80.5, 2004), (-4, 80.5, 2008),
    (-8, 80.5, 2008), (-12, 80.5, 2008), (-16, 80.5, 2009), (0, 67, 2009), (1.5, 67, 2010), (-1.5, 67, 2010),
    (-4, 67, 2011), (-8, 67, 2011), (-12, 67, 2012), (-8, 55, 2010), (-12, 55, 2011), (-16, 55, 2012),
    (-5, 95, 2004), (-8, 100, 2010), (-25, 100, 2008), (18, 89.5, 2008), (15, 65, 2012), (10, 65, 2013),
)
# fmt: on
MOORING_ARRAYS = ("tao", "pirata", "rama")
MOORINGS = _tao() + [("pirata", *site) for site in PIRATA] + [("rama", *site) for site in RAMA]


def rate(anchors: tuple[tuple[int, float], ...], year: float) -> float:
    """Yearly count at ``year`` interpolated between anchor years."""
    years, values = np.array(anchors, dtype="f8").T
    return float(np.interp(year, years, values))


def mooring_return(year: int) -> np.ndarray:
    """Share of steps each array (MOORING_ARRAYS order) reports: TAO fell to ~55 % in 2012-2014."""
    tao = 0.55 if 2012 <= year <= 2014 else 0.9
    return np.array([tao, 0.85, 0.8])


KM_PER_DEG = EARTH_RADIUS_M * np.pi / 180.0 / 1000.0
ROUTE_SPACING_KM = 25.0  # resolution of the precomputed ship tracks


class Casts(NamedTuple):
    """The profiles of one platform in one step (one entry per profile)."""

    lat: np.ndarray
    lon: np.ndarray  # 0..360
    day: np.ndarray  # day of the 365-day year, within the step
    zmax: np.ndarray  # deepest depth the instrument reaches (m)

    @staticmethod
    def empty() -> Casts:
        return Casts(*(np.zeros(0) for _ in range(4)))


def step_bounds(steps_per_year: int) -> np.ndarray:
    """First day of each step and the year's end (days of a 365-day year), length spy + 1."""
    if steps_per_year == 12:  # calendar months, as engine.grid.time_to_step uses
        return np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]).astype("f8")
    return np.linspace(0.0, 365.0, steps_per_year + 1)


def days_in_step(rng: np.random.Generator, n: int, step: int, steps_per_year: int) -> np.ndarray:
    """Random days inside the step, kept off its edges so time stamps map back to it."""
    lo, hi = step_bounds(steps_per_year)[step : step + 2]
    return lo + (hi - lo) * rng.uniform(0.05, 0.95, n)


def at_sea(grid: Grid, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Whether each point's nearest cell is ocean at the surface."""
    iy, ix = nearest_cell(grid, lat, lon)
    return grid.ocean[0, iy, ix]


def random_ocean_points(
    grid: Grid, rng: np.random.Generator, n: int, max_lat: float = 90.0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniform over the ocean area poleward-limited to ``max_lat`` (rejection)."""
    lat, lon = np.zeros(0), np.zeros(0)
    while len(lat) < n:
        m = 2 * (n - len(lat)) + 16  # about 30 % of the globe is land: two tries are plenty
        la = np.rad2deg(np.arcsin(rng.uniform(-1.0, 1.0, m) * np.sin(np.deg2rad(max_lat))))
        lo = rng.uniform(0.0, 360.0, m)
        keep = at_sea(grid, la, lo)
        lat, lon = np.concatenate([lat, la[keep]]), np.concatenate([lon, lo[keep]])
    return lat[:n], lon[:n]


def great_circle(waypoints: list[tuple[float, float]], spacing_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``spacing_km`` along great-circle legs joining (lat, lon) waypoints."""
    lat = np.deg2rad([w[0] for w in waypoints])
    lon = np.deg2rad([w[1] for w in waypoints])
    xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)
    legs = []
    for a, b in zip(xyz[:-1], xyz[1:], strict=True):
        omega = np.arccos(np.clip(a @ b, -1.0, 1.0))
        n = max(1, int(np.ceil(omega * EARTH_RADIUS_M / 1000.0 / spacing_km)))
        t = np.arange(n)[:, None] / n
        legs.append((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega))  # slerp
    pts = np.concatenate(legs + [xyz[-1:]])
    return np.rad2deg(np.arcsin(np.clip(pts[:, 2], -1, 1))), np.rad2deg(np.arctan2(pts[:, 1], pts[:, 0])) % 360.0


class XbtLines:
    """XBTs dropped from merchant ships along real shipping routes (0-460 m or 0-760 m).

    Each step, ``N ~ Poisson(rate / steps_per_year)`` drops are shared among transits of
    about 20 drops; a transit follows one route (chosen by traffic x ocean length) from a
    random start, one drop every 75-175 km, with ~30 km of cross-track scatter.
    """

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        lats, lons, weights, sizes = [], [], [], []
        for traffic, waypoints in XBT_ROUTES.values():
            la, lo = great_circle(waypoints, ROUTE_SPACING_KM)
            keep = at_sea(grid, la, lo)  # the parts of a route over the model's ocean
            if keep.sum() == 0:
                continue
            lats.append(la[keep])
            lons.append(lo[keep])
            sizes.append(int(keep.sum()))
            weights.append(traffic * keep.sum())
        self.lat, self.lon = np.concatenate(lats), np.concatenate(lons)
        self.sizes = np.array(sizes)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.weights = np.array(weights, dtype="f8") / np.sum(weights)

    def __call__(self, year: int, step: int, steps_per_year: int, rng: np.random.Generator) -> Casts:
        n = rng.poisson(rate(XBT_RATE, year) / steps_per_year)
        if n == 0:
            return Casts.empty()
        n_transits = max(1, int(round(n / 20)))
        route = rng.choice(len(self.sizes), n_transits, p=self.weights)
        size = self.sizes[route]
        start = rng.integers(0, size)
        stride = rng.integers(3, 8, n_transits) * rng.choice([-1, 1], n_transits)
        drop = np.arange(n)
        t, along = drop % n_transits, drop // n_transits
        period = np.maximum(2 * (size[t] - 1), 1)
        pos = np.mod(start[t] + stride[t] * along, period)
        pos = np.where(pos >= size[t], period - pos, pos)  # reflect at the route's ends
        idx = self.offsets[route[t]] + np.minimum(pos, size[t] - 1)
        lat = np.clip(self.lat[idx] + rng.normal(0.0, 0.3, n), -89.9, 89.9)
        lon = (self.lon[idx] + rng.normal(0.0, 0.3, n)) % 360.0
        land = ~at_sea(self.grid, lat, lon)  # scatter must not put a drop ashore
        lat[land], lon[land] = self.lat[idx][land], self.lon[idx][land]
        deep = rng.uniform(size=n_transits) < (0.35 if year < 1990 else 0.8)  # T-7 (760 m) vs T-4 (460 m)
        zmax = np.where(deep[t], 760.0, 460.0)
        return Casts(lat, lon, days_in_step(rng, n, step, steps_per_year), zmax)


class CtdCruises:
    """Full-depth CTD casts on research cruises: short sections of stations 50 km apart."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def __call__(self, year: int, step: int, steps_per_year: int, rng: np.random.Generator) -> Casts:
        n = rng.poisson(rate(CTD_RATE, year) / steps_per_year)
        if n == 0:
            return Casts.empty()
        n_cruises = max(1, int(round(n / 12)))
        c_lat, c_lon = random_ocean_points(self.grid, rng, n_cruises, max_lat=75.0)
        heading = rng.uniform(0.0, 2 * np.pi, n_cruises)
        station = np.arange(n)
        c, along = station % n_cruises, station // n_cruises
        dist = along * 50.0 / KM_PER_DEG
        lat = np.clip(c_lat[c] + dist * np.cos(heading[c]), -85.0, 85.0)
        lon = (c_lon[c] + dist * np.sin(heading[c]) / np.cos(np.deg2rad(lat))) % 360.0
        keep = at_sea(self.grid, lat, lon)  # a section running ashore stops there
        day = days_in_step(rng, n, step, steps_per_year)
        return Casts(lat[keep], lon[keep], day[keep], np.full(keep.sum(), np.inf))


class Moorings:
    """TAO/TRITON, PIRATA and RAMA moorings (0-500 m): one daily-mean profile per step.

    A mooring reports from its deployment year on, with a yearly data return (lower in
    the 2012-2014 TAO crisis).
    """

    def __init__(self, grid: Grid) -> None:
        sites = np.array([(MOORING_ARRAYS.index(a), lat, lon % 360.0, year) for a, lat, lon, year in MOORINGS])
        keep = at_sea(grid, sites[:, 1], sites[:, 2])  # sites in cells the model counts as land go
        self.array, self.lat, self.lon, self.year = sites[keep].T
        self.array = self.array.astype(int)

    def __call__(self, year: int, step: int, steps_per_year: int, rng: np.random.Generator) -> Casts:
        on = (self.year <= year) & (rng.uniform(size=len(self.lat)) < mooring_return(year)[self.array])
        n = int(on.sum())
        return Casts(self.lat[on], self.lon[on], days_in_step(rng, n, step, steps_per_year), np.full(n, 500.0))


class SatelliteSst:
    """Infrared satellite SST: one value per clear ocean cell, clouds as a smooth random field.

    Clouds are white noise smoothed over ~1000 km (periodic in longitude); the
    ``clear_fraction`` of ocean cells with the highest values are clear.
    """

    def __init__(self, grid: Grid, clear_fraction: float) -> None:
        self.grid = grid
        self.iy, self.ix = np.nonzero(grid.ocean[0])
        self.n_clear = int(round(clear_fraction * len(self.iy)))
        self.sigma = max(1000.0 / KM_PER_DEG / grid.spec.resolution, 0.3)

    def __call__(self, year: int, step: int, steps_per_year: int, rng: np.random.Generator) -> Casts:
        noise = rng.standard_normal(self.grid.ocean.shape[1:])
        field = gaussian_filter(noise, self.sigma, mode=("nearest", "wrap"))[self.iy, self.ix]
        clear = np.argpartition(-field, self.n_clear - 1)[: self.n_clear] if self.n_clear else np.zeros(0, int)
        clear = np.sort(clear)
        lat, lon = self.grid.lat[self.iy[clear]], self.grid.lon[self.ix[clear]]
        n = len(clear)
        return Casts(lat, lon, days_in_step(rng, n, step, steps_per_year), np.full(n, self.grid.depth[0]))


class ArgoFleet:
    """Argo floats from 2000: a profile every 10 days to 2000 m (1000 m for some floats).

    Floats are deployed each year so that the active fleet follows ``ARGO_ACTIVE``
    (scaled to ``floats_2007`` in 2007), live 3-5.5 years and drift as a smooth random
    walk (AR(1) velocity, ~3 km/day) that cannot cross land or go poleward of 65 degrees.
    The whole fleet's trajectories are simulated once, deterministically from ``seed``.
    """

    CYCLE_DAYS = 10.0
    LIFE_YEARS = (3.0, 5.5)

    def __init__(self, grid: Grid, floats_2007: int, seed: int) -> None:
        self.grid = grid
        rng = np.random.default_rng([seed, 7001])
        n_deploy = self._deployments(floats_2007 / 3000.0)
        year = np.repeat(np.arange(2000, 2000 + len(n_deploy)), n_deploy)
        deployed = year + rng.uniform(0.0, 1.0, len(year))
        self.start_day = (deployed - 2000.0) * 365.0  # days since 2000 in 365-day years
        life = rng.uniform(*self.LIFE_YEARS, len(year))
        self.n_cycles = np.floor(life * 365.0 / self.CYCLE_DAYS).astype(int)
        self.zmax = np.where(rng.uniform(size=len(year)) < 0.85, 2000.0, 1000.0)
        self.lat, self.lon = self._trajectories(rng, len(year), int(self.n_cycles.max(initial=1)))

    def _deployments(self, scale: float) -> np.ndarray:
        """Floats deployed per year so that the expected active count meets the targets at year ends."""
        years = np.arange(2000, 2021)
        target = scale * np.interp(years + 1.0, *np.array(ARGO_ACTIVE).T)
        lo, hi = self.LIFE_YEARS
        u = (np.arange(12) + 0.5) / 12  # deployment times within a year

        def survival(age: np.ndarray) -> np.ndarray:
            return np.clip((hi - age) / (hi - lo), 0.0, 1.0)

        n = np.zeros(len(years))
        for i, y in enumerate(years):
            alive = sum(n[j] * survival(y + 1.0 - (years[j] + u)).mean() for j in range(i))
            n[i] = max(0.0, target[i] - alive)
        return np.round(n).astype(int)

    def _trajectories(self, rng: np.random.Generator, n: int, n_cycles: int) -> tuple[np.ndarray, np.ndarray]:
        lat = np.empty((n, n_cycles), "f4")
        lon = np.empty((n, n_cycles), "f4")
        la, lo = random_ocean_points(self.grid, rng, n, max_lat=60.0)
        u, v = np.zeros(n), np.zeros(n)
        a, sigma = 0.7, 30.0 * np.sqrt(1 - 0.7**2)  # km per cycle: ~3 km/day, memory ~30 days
        for c in range(n_cycles):
            lat[:, c], lon[:, c] = la, lo
            u = a * u + sigma * rng.standard_normal(n)
            v = a * v + sigma * rng.standard_normal(n)
            new_la = la + v / KM_PER_DEG
            new_lo = (lo + u / (KM_PER_DEG * np.cos(np.deg2rad(la)))) % 360.0
            ok = (np.abs(new_la) < 65.0) & at_sea(self.grid, new_la, new_lo)
            la, lo = np.where(ok, new_la, la), np.where(ok, new_lo, lo)
            u, v = np.where(ok, u, -u), np.where(ok, v, -v)  # bounce off coasts and ice
        return lat, lon

    def __call__(self, year: int, step: int, steps_per_year: int, rng: np.random.Generator) -> Casts:
        lo, hi = step_bounds(steps_per_year)[step : step + 2] + (year - 2000) * 365.0
        # cycles c with lo <= start + 10 c < hi (several per float for monthly steps)
        first = np.maximum(np.ceil((lo - self.start_day) / self.CYCLE_DAYS), 0).astype(int)
        last = np.minimum(np.ceil((hi - self.start_day) / self.CYCLE_DAYS).astype(int), self.n_cycles)
        n = np.maximum(last - first, 0)
        k = np.repeat(np.arange(len(n)), n)
        c = first[k] + np.arange(len(k)) - np.repeat(np.cumsum(n) - n, n)
        day = self.start_day[k] + c * self.CYCLE_DAYS - (year - 2000) * 365.0
        return Casts(self.lat[k, c].astype("f8"), self.lon[k, c].astype("f8"), day, self.zmax[k])
