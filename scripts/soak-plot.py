#!/usr/bin/env python3
"""Plots a soak's samples (bench/README.md, "Soak"): memory, descriptors and threads, Tokio
tasks, and Losant calls per sweep over time, with the emulator's faulty phases shaded.

Usage: soak-plot.py SAMPLES.csv OUT.png   (needs matplotlib; scripts/soak.sh makes a virtualenv
with it in target/soak-venv when the system Python has none)
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(samples_path, out_path):
    with open(samples_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{samples_path}: no samples")
    minutes = [float(r["seconds"]) / 60 for r in rows]
    col = lambda name: [float(r[name]) for r in rows]  # noqa: E731
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    panels = [
        ("Memory (MiB)", [("RSS", "rss_mib"), ("heap in use", "heap_in_use_mib"),
                          ("heap free (held by the allocator)", "heap_free_mib")]),
        ("Count", [("open file descriptors", "fds"), ("threads", "threads")]),
        ("Tokio tasks", [("tasks alive", "tokio_tasks")]),
        ("Losant calls per sweep", [("all calls", "calls_per_sweep"),
                                    ("lists", "lists_per_sweep")]),
    ]
    for axis, (label, series) in zip(axes, panels):
        for name, column in series:
            axis.plot(minutes, col(column), label=name, linewidth=1.2)
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        shade(axis, minutes, rows)
        axis.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel("minutes since the churn started (grey: emulator faulty; "
                        "after the dashed line: churn stopped, end check)")
    fig.suptitle("losant-operator soak: %d Integrations churned, %.0f min"
                 % (int(float(rows[0]["live"])), minutes[-1]))
    fig.tight_layout()
    fig.savefig(out_path, dpi=90)


def shade(axis, minutes, rows):
    """Grey spans where the emulator was faulty; a dashed line where the churn stopped."""
    start = None
    for m, r in zip(minutes, rows):
        if r["faulty"] == "1" and start is None:
            start = m
        elif r["faulty"] != "1" and start is not None:
            axis.axvspan(start, m, color="grey", alpha=0.15, linewidth=0)
            start = None
    if start is not None:
        axis.axvspan(start, minutes[-1], color="grey", alpha=0.15, linewidth=0)
    stopped = [m for m, r in zip(minutes, rows) if r["churning"] == "0"]
    if stopped:
        axis.axvline(stopped[0], color="black", linestyle="--", linewidth=0.8)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
