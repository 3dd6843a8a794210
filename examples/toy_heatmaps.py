"""Toy experiment of "Of All StrIPEs" §III-E (paper.md §5): how each PE mixes content and context, D = 2.

Each point is a 2-d unit chunk with content angle ψ and context angle ξ. N = 5 contexts C_k = kπ/6
(evenly spaced on (0, π)); P = 60 points, 12 per context, ψ_j ~ N(C_k, σ²) with σ = 0.25 and ξ_j = C_k.
The query is the point of context C_3 whose ψ is closest to C_3 (marked ★). For every key j and every
frequency f ∈ [0, 1] we plot the score a_qj (closed forms, Eqs. 24-26; tests/test_position.py checks
that the PE modules give these scores):

    RoPE        cos((ψ_q − ψ_j) + f(ξ_q − ξ_j))
    F-StrIPE₁   cos(ψ_q − ψ_j) · cos(f(ξ_q − ξ_j))
    RoPEPool    2 cos(ψ_q + fξ_q − π/4) · cos(ψ_j + fξ_j − π/4)

Columns are the keys sorted by ψ_j; ticks under each panel mark same-context keys (blue) and
different-context keys (green).

    python examples/toy_heatmaps.py --out docs/img/toy_heatmaps.png
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np


def make_points(n_contexts: int = 5, per_context: int = 12, sigma: float = 0.25, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.arange(1, n_contexts + 1) * math.pi / (n_contexts + 1)
    xi = np.repeat(centres, per_context)
    psi = rng.normal(xi, sigma)
    order = np.argsort(psi)
    return psi[order], xi[order], centres


def scores(psi, xi, q: int, f):
    """[len(f), P] score of every key for the query index q, per PE."""
    f = f[:, None]
    dpsi, dxi = psi[q] - psi[None, :], xi[q] - xi[None, :]
    return {
        "RoPE (Eq. 24)": np.cos(dpsi + f * dxi),
        "F-StrIPE₁ (Eq. 25)": np.cos(dpsi) * np.cos(f * dxi),
        "RoPEPool (Eq. 26)": 2 * np.cos(psi[q] + f * xi[q] - math.pi / 4) * np.cos(psi[None, :] + f * xi[None, :] - math.pi / 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img/toy_heatmaps.png"))
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    psi, xi, centres = make_points()
    same_ctx = np.isclose(xi, centres[2])
    q = int(np.flatnonzero(same_ctx)[np.argmin(np.abs(psi[same_ctx] - centres[2]))])
    f = np.linspace(0.0, 1.0, 101)
    panels = scores(psi, xi, q, f)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    cols = np.arange(len(psi))
    for ax, (name, s) in zip(axes, panels.items(), strict=True):
        lim = np.abs(s).max()
        mesh = ax.pcolormesh(cols, f, s, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
        fig.colorbar(mesh, ax=ax, label="score $a_{qj}$")
        ax.set_title(name)
        ax.set_ylabel("frequency f")
        ticks = np.arange(0, len(psi), 6)
        ax.set_xticks(ticks, [f"{psi[i]:.2f}" for i in ticks], rotation=60, fontsize=7)
        ax.set_xlabel("key content angle $\\psi_j$ (keys sorted by $\\psi_j$)")
        colours = np.where(same_ctx, "tab:blue", "tab:green")
        ax.scatter(np.arange(len(psi)), np.full(len(psi), -0.035), c=colours, marker="|", s=60, clip_on=False)
        ax.scatter([q], [-0.035], marker="*", c="gold", edgecolors="k", s=160, clip_on=False, zorder=3)
        ax.set_ylim(0, 1)
    fig.suptitle("Toy D=2 scores vs key content and frequency: ★ query, blue = same context, "
                 "green = different context (5 contexts, 60 keys, σ=0.25)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
