"""The fraternal-twin table of issue 26 from OSSE output folders.

Each folder is a ``deepda osse`` output (its ``summary.csv`` names the truth's world and
what each method was trained on). One row per DeepDA model and truth: 0-700 m RMSE
(degC, the mean over the levels down to 700 m, global) in the pre-Argo and the Argo era,
beside OI's and the Kalman filter's on the same truth, and DeepDA's ratios to both.

    python3 scripts/twins_table.py runs/A_on_A runs/A_on_B runs/B_on_C ... [--out twins.csv]

A folder from before the summary named its worlds counts as an identical twin of world A.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

BASELINES = ("oi", "kf", "persistence", "climatology")
TOP_M = 700.0


def layer_rmse(summary: pd.DataFrame) -> pd.DataFrame:
    """Global RMSE rows of a summary table, as (method, era) -> mean over levels to 700 m."""
    rows = summary[(summary["metric"] == "rmse") & (summary["region"] == "global")]
    levels = [c for c in summary.columns if c.endswith(" m") and float(c[:-2]) <= TOP_M]
    out = rows.set_index(["method", "era"])[levels].mean(axis=1)
    return out.rename("rmse_0_700").reset_index()


def folder_rows(folder: Path) -> list[dict[str, object]]:
    """One row per DeepDA model in ``folder``: its 0-700 m RMSE and OI's and KF's, by era."""
    summary = pd.read_csv(folder / "summary.csv")
    truth = summary["truth"].iloc[0] if "truth" in summary else "A"
    trained = (
        dict(zip(summary["method"], summary["trained_on"].fillna(""), strict=False)) if "trained_on" in summary else {}
    )
    rmse = layer_rmse(summary)
    eras = sorted(rmse["era"].unique())
    value = {(m, e): v for m, e, v in rmse.itertuples(index=False)}
    rows = []
    for method in (m for m in rmse["method"].unique() if m not in BASELINES):
        row: dict[str, object] = {"trained_on": trained.get(method) or "A", "truth": truth, "folder": str(folder)}
        for era, tag in zip(eras, ("pre_argo", "argo"), strict=False):
            deep, oi, kf = (value.get((m, era), float("nan")) for m in (method, "oi", "kf"))
            row |= {f"deepda_{tag}": deep, f"oi_{tag}": oi, f"kf_{tag}": kf}
            row |= {f"deepda_over_oi_{tag}": deep / oi, f"deepda_over_kf_{tag}": deep / kf}
        row["eras"] = " / ".join(eras)
        rows.append(row)
    return rows


def pair(row: dict[str, object], key: str, digits: int = 3) -> str:
    """``pre-Argo / Argo`` of ``key`` in ``row``."""
    return f"{row[f'{key}_pre_argo']:.{digits}f} / {row[f'{key}_argo']:.{digits}f}"


def as_markdown(table: pd.DataFrame) -> str:
    """The issue's table: RMSE pre-Argo / Argo for DeepDA, OI and KF, and DeepDA's ratios."""
    head = "| DeepDA trained on | truth | DeepDA | OI | KF (truth's modes) | DeepDA / OI | DeepDA / KF |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        cells = [
            pair(r, "deepda"),
            pair(r, "oi"),
            pair(r, "kf"),
            pair(r, "deepda_over_oi", 2),
            pair(r, "deepda_over_kf", 2),
        ]
        lines.append(f"| {r['trained_on']} | {r['truth']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="deepda osse output folders")
    parser.add_argument("--out", help="also write the table as CSV")
    args = parser.parse_args(argv)
    missing = [f for f in args.folders if not (Path(f) / "summary.csv").exists()]
    if missing:
        print(f"twins_table: no summary.csv in {', '.join(missing)}; give deepda osse output folders", file=sys.stderr)
        return 2
    table = pd.DataFrame([row for f in args.folders for row in folder_rows(Path(f))])
    table = table.sort_values(["trained_on", "truth"], kind="stable").reset_index(drop=True)
    print(f"0-700 m RMSE (degC), eras {table['eras'].iloc[0]}, global\n")
    print(as_markdown(table))
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
