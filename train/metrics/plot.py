"""Metric curves and the comparison table of training runs.

examples:
  python -m train.metrics.plot ~/.cache/birdanim/runs/00000-default -o fd.png          # FD vs kimg and vs CPU-hours
  python -m train.metrics.plot RUN_A RUN_B RUN_C --table                               # DCGAN vs classic D vs projected D
  python -m train.metrics.plot RUN --add-history weights/history.jsonl --label "E: ..."  # keep a run's metrics in the repo
  python -m train.metrics.plot --history weights/history.jsonl -o weights/curve.png     # the model card's curve

Reads RUN/log.jsonl (training speed) and RUN/metrics.jsonl (written by train/metrics/evaluate.py). Run folders
live outside the repo and are lost with the machine; a history file (JSONL, one metric record per line
with the run's label and the lineage it started from) keeps their curves with the weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_label(run: Path) -> str:
    cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
    d = "dcgan" if cfg.get("arch") == "dcgan" else f"{cfg.get('d', '?')} D"
    return f"{run.name} ({d}, {cfg.get('resolution', '?')} px)"


def lineage(run: Path) -> tuple[float, float]:
    """(kimg, CPU-hours) that went into the weights a run started from (RUN/init_from.json, written
    for `--init-from`; their own lineage included), or (0, 0) for a run from scratch."""
    p = run / "init_from.json"
    rec = json.loads(p.read_text()) if p.is_file() else {}
    return (rec.get("images_seen") or 0) / 1000, rec.get("cpu_hours") or 0.0


def curve(run: Path, metric: str = "fd_lite2", with_lineage: bool = False, n: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kimg, cpu_hours, metric) sorted by kimg, from RUN/metrics.jsonl, at n samples (FD falls as n grows: one
    curve, one n); `with_lineage`: counted from scratch, i.e. plus what went into the weights the run started from."""
    recs = sorted((r for r in read_jsonl(run / "metrics.jsonl") if metric in r and "kimg" in r and r.get("n", n) == n), key=lambda r: r["kimg"])
    k0, h0 = lineage(run) if with_lineage else (0.0, 0.0)
    k = np.array([r["kimg"] + k0 for r in recs])
    h = np.array([(r.get("cpu_hours") or np.nan) + h0 for r in recs])
    return k, h, np.array([r[metric] for r in recs])


HISTORY_DROP = ("source", "time", "eval_seconds")  # local paths and bookkeeping, not metrics


def history_records(run: Path, label: str, date: str) -> list[dict]:
    """A run's metric records as history lines: each with the run's label, date and lineage."""
    k0, h0 = lineage(run)
    return [{"label": label, "run": run.name, "date": date, **{k: v for k, v in r.items() if k not in HISTORY_DROP},
             "lineage_kimg": k0, "lineage_cpu_hours": h0} for r in read_jsonl(run / "metrics.jsonl")]


def add_history(path: Path, records: list[dict]) -> int:
    """Append the records not yet in the history file (same label, kimg and n); returns how many."""
    seen = {(r["label"], r["kimg"], r.get("n")) for r in read_jsonl(path)}
    new = []
    for r in records:  # a run's metrics.jsonl can hold one export twice (two evaluation loops)
        key = (r["label"], r["kimg"], r.get("n"))
        if key not in seen:
            seen.add(key)
            new.append(r)
    with open(path, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in new)
    return len(new)


def history_curves(path: Path, metric: str = "fd_lite2", n: int = 500) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """label -> (kimg, CPU-hours, metric) at n samples, counted from scratch (lineage added), sorted by kimg;
    CPU-hours NaN where the record has none."""
    recs = read_jsonl(path)
    groups: dict[str, list[dict]] = {r["label"]: [] for r in recs}  # curves in the file's order of runs, whatever n
    for r in recs:
        if r.get(metric) is not None and r.get("n", n) == n:
            groups[r["label"]].append(r)
    groups = {label: g for label, g in groups.items() if g}
    out = {}
    for label, recs in groups.items():
        recs.sort(key=lambda r: r["kimg"])
        k = np.array([r["kimg"] + r.get("lineage_kimg", 0.0) for r in recs])
        h = np.array([np.nan if r.get("cpu_hours") is None else r["cpu_hours"] + r.get("lineage_cpu_hours", 0.0) for r in recs])
        out[label] = (k, h, np.array([r[metric] for r in recs]))
    return out


def speed(run: Path) -> dict:
    log = read_jsonl(run / "log.jsonl")
    if not log:
        return {}
    last = log[-1]
    img_s = [r["img_s"] for r in log if r.get("img_s")]
    cpu_h = last.get("cpu_hours") or 0.0
    return {
        "kimg": last["kimg"], "cpu_hours": cpu_h, "wall_hours": last.get("wall_hours"),
        "img_s_median": float(np.median(img_s)) if img_s else None,
        "kimg_per_cpu_hour": last["kimg"] / cpu_h if cpu_h else None,
    }


HIGHER_IS_BETTER = ("precision_lite2", "recall_lite2", "bird_detect")


def best_within(h: np.ndarray, m: np.ndarray, budget: float, higher_is_better: bool = False) -> float | None:
    """Best metric (lowest, or highest when `higher_is_better`) among the points measured within
    `budget` CPU-hours, or None."""
    ok = np.nan_to_num(h, nan=np.inf) <= budget
    if not ok.any():
        return None
    return float(m[ok].max() if higher_is_better else m[ok].min())


def table(runs: list[Path], metric: str = "fd_lite2", budgets: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0), n: int = 500) -> str:
    """Markdown: speed of each run, its metric points as (CPU-hours: value), and the best value
    reached within each CPU-hour budget (the fair comparison: same compute, not same images); "-"
    where the run has not trained that long."""
    head = ["run", "img/s (median, wall)", "kimg per CPU-hour", "kimg", "CPU-hours", f"{metric} (CPU-h: value)"]
    head += [f"best in {b:g} CPU-h" for b in budgets]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        s = speed(run)
        _, h, m = curve(run, metric, n=n)
        order = np.argsort(np.nan_to_num(h, nan=np.inf))
        pts = ", ".join(f"{a:.2f}: {b:.3g}" for a, b in zip(h[order], m[order])) or "-"
        f = lambda v, fmt: format(v, fmt) if isinstance(v, (int, float)) else "-"  # noqa: E731
        cells = [run_label(run), f(s.get("img_s_median"), ".2f"), f(s.get("kimg_per_cpu_hour"), ".2f"), f(s.get("kimg"), ".2f"),
                 f(s.get("cpu_hours"), ".2f"), pts]
        # a budget the run has not used up yet gets "-": its best so far is not the best it would reach
        cells += [f(best_within(h, m, b, metric in HIGHER_IS_BETTER), ".3g") if (s.get("cpu_hours") or 0) >= b else "-" for b in budgets]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(runs: list[Path], out: Path, metric: str = "fd_lite2", with_lineage: bool = False, history: Path | None = None,
         bar: float | None = None, n: int = 500) -> None:
    """FD (or `metric`) against images seen and against CPU-hours, for each run and each curve of the
    `history` file (always counted from scratch; points without CPU-hours appear on the left only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    curves = list(history_curves(history, metric, n).items()) if history else []
    curves += [(run_label(run), curve(run, metric, with_lineage, n)) for run in runs]
    # More than 10 curves would repeat the default colour cycle (two runs, one colour): tab20 then (cycled past 20, so
    # zip never drops a curve).
    tab20 = plt.get_cmap("tab20").colors
    colours = [tab20[i % len(tab20)] if len(curves) > 10 else None for i in range(len(curves))]
    for (label, (k, h, m)), colour in zip(curves, colours):
        if len(m):
            line = axes[0].plot(k, m, "o-", ms=4, label=label, color=colour)[0]
            ok = ~np.isnan(h)
            if ok.any():
                axes[1].plot(h[ok], m[ok], "o-", ms=4, color=line.get_color())
    since = ", from scratch (with the lineage of --init-from)" if with_lineage else ""
    axes[0].set_xlabel(f"thousands of images seen (kimg{since})")
    axes[1].set_xlabel(f"CPU-hours (process CPU time{since})")
    for ax in axes:
        if bar is not None:
            ax.axhline(bar, color="k", ls="--", lw=1)
            ax.text(ax.get_xlim()[0], bar, f" target {bar:g}", va="bottom", fontsize=7)
        ax.set_ylabel(f"{metric} at n = {n} ({'higher' if metric in HIGHER_IS_BETTER else 'lower'} is better)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    # below both panels: with a dozen curves, a legend inside covers points
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=7)
    fig.savefig(out, dpi=100, bbox_inches="tight")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("-o", "--out", type=Path, default=None, help="PNG of the curves")
    ap.add_argument("--metric", default="fd_lite2", help="fd_lite2, kid_lite2, precision_lite2, recall_lite2, bird_detect")
    ap.add_argument("--n", type=int, default=500, help="the curves at this number of samples (the evaluation loop's 500; 2000 for the closer looks)")
    ap.add_argument("--table", action="store_true", help="print the comparison table (markdown)")
    ap.add_argument("--lineage", action="store_true", help="plot: count kimg and CPU-hours from scratch, adding those of the "
                    "weights a run started from (--init-from)")
    ap.add_argument("--bar", type=float, default=None, help="plot: a dashed line at this value (a target)")
    ap.add_argument("--history", type=Path, default=None, help="plot: also the curves of this history file (from scratch)")
    ap.add_argument("--add-history", type=Path, default=None, metavar="FILE", help="append the runs' metric records to this history file")
    ap.add_argument("--label", default=None, help="--add-history: the curve's name (one run per call)")
    ap.add_argument("--date", default=None, help="--add-history: the run's date (default: today)")
    args = ap.parse_args(argv)
    runs = [r.expanduser() for r in args.runs]
    if args.add_history:
        if len(runs) != 1 or not args.label:
            ap.error("--add-history takes one run and a --label")
        import datetime

        date = args.date or datetime.date.today().isoformat()
        print(f"{add_history(args.add_history, history_records(runs[0], args.label, date))} records added to {args.add_history}")
        return 0
    if not runs and not args.history:
        ap.error("give run folders or --history")
    if args.table or not args.out:
        print(table(runs, args.metric, n=args.n))
    if args.out:
        plot(runs, args.out, args.metric, args.lineage or args.history is not None, args.history, args.bar, args.n)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
