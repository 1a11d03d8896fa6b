"""The selections of one dashboard session, as ``param`` parameters.

Pages read and write an :class:`AppState`; plots depend on its parameters through
``hv.streams.Params``, widgets are linked to them, so a change anywhere (a slider, a tap on
the map, a finished job) reaches every page. The state also keeps the registry of
exportable views that the Export page offers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import param

from viewer.store import DataStore

LAYERS = {"0-100 m": (0.0, 100.0), "0-700 m": (0.0, 700.0), "700-2000 m": (700.0, 2000.0), "0-2000 m": (0.0, 2000.0)}
REGIONS = ("global", "atlantic", "pacific", "indian", "southern", "arctic", "tropics", "nino34")


@dataclass
class Exportable:
    """A view the Export page can write.

    ``data()`` returns what is shown: a DataArray (map, section, time-depth plot), a dict
    {label: 1-D DataArray} of curves, or a DataFrame (table). ``kind`` is one of "map",
    "curves", "section", "hovmoller", "table".
    """

    title: str
    kind: str
    data: Callable[[], Any]
    label: str | Callable[[], str] = ""  # curves: the value axis with its unit, e.g. "RMSE (degC)"

    def value_label(self) -> str:
        return self.label() if callable(self.label) else self.label


class AppState(param.Parameterized):
    """What the user has chosen in this session."""

    dataset = param.Selector(default=None, objects=[], allow_None=True, doc="gridded dataset shown")
    truth = param.Selector(default=None, objects=[], allow_None=True, doc="truth (model world) to compare with")
    observations = param.Selector(default=None, objects=[], allow_None=True, doc="observation file shown")
    variable = param.Selector(default="absolute", objects=["absolute", "anomaly", "spread"])
    depth_index = param.Integer(default=0, bounds=(0, None))
    time_index = param.Integer(default=0, bounds=(0, None))
    lat = param.Number(default=0.0, bounds=(-90.0, 90.0))
    lon = param.Number(default=220.0, bounds=(0.0, 360.0))
    layer = param.Selector(default="0-700 m", objects=list(LAYERS))
    region = param.Selector(default="global", objects=list(REGIONS))
    page = param.String(default="Explore", doc="title of the page on show")

    def __init__(self, store: DataStore, **params: Any) -> None:
        super().__init__(**params)
        self.store = store
        self.exports: dict[str, Exportable] = {}
        self._seen_version = -1
        self.sync()

    def gridded(self) -> list[str]:
        """Every gridded dataset: analyses first, then truths."""
        return self.store.names("analysis") + self.store.names("truth")

    def sync(self) -> bool:
        """Follow the store's registry (new analyses, default data ready); True if it changed."""
        if self.store.version == self._seen_version:
            return False
        self._seen_version = self.store.version
        gridded, truths, obs = self.gridded(), self.store.names("truth"), self.store.names("observations")
        updates: dict[str, Any] = {}
        for name, options in (("dataset", gridded), ("truth", truths), ("observations", obs)):
            self.param[name].objects = options
            current = getattr(self, name)
            if current not in options:
                updates[name] = options[0] if options else None
        if updates:
            self.param.update(**updates)
        self.param.trigger("dataset", "truth", "observations")  # a source may now point at another file
        return True

    @param.depends("dataset", "variable", watch=True)
    def _clamp(self) -> None:
        """Keep indices and the variable valid for the dataset just chosen."""
        if self.dataset is None:
            return
        n_time, n_depth = len(self.store.times(self.dataset)), len(self.store.depths(self.dataset))
        variables = self.store.variables(self.dataset)
        updates: dict[str, Any] = {}
        if self.time_index >= n_time:
            updates["time_index"] = n_time - 1
        if self.depth_index >= n_depth:
            updates["depth_index"] = n_depth - 1
        if self.variable not in variables:
            updates["variable"] = variables[0]
        if updates:
            self.param.update(**updates)

    # --- derived values the pages share ----------------------------------------------------

    @property
    def depth(self) -> float:
        return float(self.store.depths(self.dataset)[self.depth_index])

    @property
    def time(self) -> np.datetime64:
        return self.store.times(self.dataset)[self.time_index]

    def cell(self, name: str | None = None) -> tuple[int, int]:
        """Grid indices of the chosen point in ``name`` (default: the shown dataset)."""
        return self.store.nearest_cell(name or self.dataset, self.lat, self.lon)

    def truth_time_index(self) -> int | None:
        """Index in the truth of the shown time, or None when there is no truth / no overlap."""
        if self.truth is None or self.dataset is None:
            return None
        index = self.store.time_index(self.truth, self.time)
        gap = abs(self.store.times(self.truth)[index] - self.time)
        return index if gap <= np.timedelta64(3, "D") else None

    def register(self, key: str, exportable: Exportable) -> None:
        """Offer a view on the Export page."""
        self.exports[key] = exportable
