"""How the synthetic model world's mode amplitudes move in time (DESIGN section 5).

Pure functions: the linear inverse model (transition and noise) every amplitude follows
in the control run, and the ENSO pair that follows the observed Nino-3.4 index in the
historical run. The patterns they multiply live in :mod:`engine.world.patterns`, the
world that adds them up in :mod:`engine.world.synthetic`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engine.config import WorldSpec


def lim_dynamics(spec: WorldSpec, step_days: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Transition, noise covariance and memories (days) of the K modes, unit stationary variance.

    Background memories are log-uniform between ``min_memory_days`` and
    ``max_memory_years``; the longest go (with some scatter) to the largest patterns, which
    come first, as in the real ocean.
    """
    k = spec.n_modes
    rho = math.exp(-step_days / (spec.enso_damping_years * 365.0))
    theta = 2.0 * math.pi * step_days / (spec.enso_period_years * 365.0)
    # a1' = rho (cos a1 + sin a2): the recharge mode a2 leads the warming a1 by a quarter period
    rotation = rho * np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    memories = np.geomspace(spec.max_memory_years * 365.0, spec.min_memory_days, k - 2)
    order = np.argsort(np.arange(k - 2) + rng.normal(0.0, (k - 2) / 6.0, k - 2))
    memories = np.concatenate([[spec.enso_damping_years * 365.0] * 2, memories[order]])
    phi = np.exp(-step_days / memories[2:])
    transition = np.zeros((k, k))
    transition[:2, :2] = rotation
    transition[2:, 2:] = np.diag(phi)
    noise_cov = np.diag(np.concatenate([[1.0 - rho**2] * 2, 1.0 - phi**2]))
    return transition, noise_cov, memories


def oni_amplitudes(oni: pd.DataFrame, times: np.ndarray, n1: float, n2: float) -> np.ndarray:
    """(t, 2) ENSO-pair amplitudes following the observed Nino-3.4 index.

    The pair's Nino-3.4 signature ``n1 a1 + n2 a2`` reproduces the index exactly, with
    ``a2`` the quadrature of ``a1`` that leads it (minus the Hilbert transform), solved in
    Fourier space on the whole monthly record, then interpolated to the step times.
    """
    # the monthly index itself when the table has it (its 3-month running mean is the ONI)
    column = "nino34_anomaly" if "nino34_anomaly" in oni else "oni"
    table = oni.dropna(subset=[column])
    month = pd.to_datetime(table["time"]).to_numpy().astype("datetime64[s]").astype("f8")
    t = np.asarray(times).astype("datetime64[s]").astype("f8")
    if t.min() < month.min() - 16 * 86400 or t.max() > month.max() + 16 * 86400:
        first, last = pd.Timestamp(month.min(), unit="s"), pd.Timestamp(month.max(), unit="s")
        raise ValueError(f"the ENSO index covers {first:%Y-%m} to {last:%Y-%m} only; choose a period inside it")
    spectrum = np.fft.rfft(table[column].to_numpy(dtype="f8"))
    a1_hat = spectrum / (n1 + 1j * n2)
    a1_hat[0] = spectrum[0] / n1
    a2_hat = 1j * a1_hat  # +90 degrees phase = leads by a quarter period
    a2_hat[0] = 0.0
    n = len(table)
    pair = [np.fft.irfft(a1_hat, n), np.fft.irfft(a2_hat, n)]
    return np.stack([np.interp(t, month, p) for p in pair], axis=1)
