"""netCDF from several threads at once (the dashboard's background tasks, a job writing).

The netCDF-C library is not thread-safe and netCDF4-python releases the GIL: without the
lock in ``engine.io.nclock`` this crashes the process (SIGSEGV), so it runs in a child.
"""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import threading, numpy as np, pandas as pd, xarray as xr
    from engine import io

    rng = np.random.default_rng(0)
    coords = {"time": np.arange(12), "depth": np.arange(4.0), "lat": np.arange(8.0), "lon": np.arange(16.0)}
    files = []
    for k in range(4):
        data = {f"v{j}": (tuple(coords), rng.random((12, 4, 8, 16), "f4"), {"units": "degC", "long_name": "x" * 40})
                for j in range(8)}
        path = f"{DIR}/f{k}.nc"
        xr.Dataset(data, coords=coords).to_netcdf(path)
        files.append(path)
    table = pd.DataFrame({
        "time": pd.to_datetime(["2005-01-01"] * 40), "lat": np.repeat(rng.uniform(-10, 10, 4), 10),
        "lon": np.repeat(rng.uniform(0, 40, 4), 10), "depth": np.tile(np.arange(10.0) * 50 + 5, 4),
        "temperature": rng.uniform(5, 25, 40), "platform": "argo", "obs_error": 0.2,
        "profile_id": np.repeat(np.arange(4), 10), "qc": 0,
    })
    failures = []

    def read(path):
        try:
            for _ in range(60):
                with io.open_fields(path) as ds:
                    float(ds["v1"].isel(time=3).mean())
        except Exception as err:
            failures.append(repr(err))

    def write(k):
        try:
            for i in range(20):
                io.write_profiles(table, f"{DIR}/obs{k}_{i}.nc")
                io.read_profiles(f"{DIR}/obs{k}_{i}.nc")
        except Exception as err:
            failures.append(repr(err))

    threads = [threading.Thread(target=read, args=(p,)) for p in files]
    threads += [threading.Thread(target=write, args=(k,)) for k in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not failures, failures
    """
)


def test_netcdf_from_many_threads_at_once(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", f"DIR = {str(tmp_path)!r}\n" + SCRIPT], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
