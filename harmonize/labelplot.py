"""``stripe labels --plot``: the melody and its labels as a PNG laid out like a score, in rows of bars.

Each row holds ``bars_per_row`` bars (8 by default) at the same width, so a 100-bar song is 13 readable
rows (about 1400 x 2900 px), not one 6000-pixel strip: bar numbers and repetition letters above each bar,
the melody as a pianoroll, chord symbols under it.
"""

from __future__ import annotations

import math
from pathlib import Path

from .errors import StripeError


def plot_labels(song, structure, report: dict, out: Path, bars_per_row: int = 8, guard=None) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise StripeError("--plot needs matplotlib: pip install 'stripe-harmonizer[plot]'") from None
    out = Path(out)
    if not out.parent.exists():
        raise StripeError(f"output folder {str(out.parent)!r} does not exist", out)
    grid = song.grid
    bars = report["bars"]
    pitches = [n.pitch for n in song.melody] or [60]
    lo, hi = min(pitches) - 2, max(pitches) + 2
    n_rows = max(1, math.ceil(len(bars) / bars_per_row))
    fig, axes = plt.subplots(n_rows, 1, figsize=(14, 0.6 + 2.2 * n_rows), squeeze=False)
    row_steps = max((sum(b["steps"] for b in bars[r * bars_per_row:(r + 1) * bars_per_row])
                     for r in range(n_rows)), default=grid.n_steps)
    for r, ax in enumerate(axes[:, 0]):
        row = bars[r * bars_per_row:(r + 1) * bars_per_row]
        if not row:
            ax.axis("off")
            continue
        x0 = row[0]["start_step"]
        x1 = row[-1]["start_step"] + row[-1]["steps"]
        for n in song.melody:
            if n.end > x0 and n.start < x1:
                ax.broken_barh([(n.start, n.end - n.start)], (n.pitch - 0.4, 0.8), color="tab:blue")
        for bar in row:
            x = bar["start_step"]
            ax.axvline(x, color="0.6", lw=0.8, zorder=0)
            ax.text(x + 0.5, hi + 0.5, f"{bar['bar']} {bar['rep']}", fontsize=8, weight="bold", va="bottom")
            beats = [b for b in grid.beat_starts if x <= b < x + bar["steps"]] or [x]
            for c in bar["chords"]:
                ax.text(beats[min(c["beat"], len(beats)) - 1] + 0.5, lo - 0.8, c["chord"], fontsize=8, va="top")
        ax.set_xlim(x0, x0 + row_steps)  # every row on the same scale
        ax.set_ylim(lo - 4, hi + 3)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle(f"{Path(report['file']).name}: {report['key']} ({report['key_source']}), "
                 f"melody track {report['melody_track']}; bar number and repetition letter above each bar")
    fig.tight_layout()
    from .io.outputs import save_figure

    save_figure(fig, out, guard)
