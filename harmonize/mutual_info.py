"""Discrete mutual information between pitch content and positional context (paper Table I).

Method of "Of All StrIPEs" §IV (paper.md §4.2): flatten the pianorolls into the list of active
pitches, pair each with the context (position) at its timestep, and compute the plug-in MI of the
empirical joint distribution, in nats (the same estimator as ``sklearn.metrics.mutual_info_score``).
Vector contexts (BIN, a 12-d chroma) are made categorical: one id per distinct vector.
"""

from __future__ import annotations

import numpy as np


def categorical_ids(values: np.ndarray) -> np.ndarray:
    """``[N]`` ints, or ``[N, d]`` rows -> one int id per distinct value / row."""
    values = np.asarray(values)
    if values.ndim == 1:
        return np.unique(values, return_inverse=True)[1].reshape(-1)
    if values.ndim == 2:
        return np.unique(values, axis=0, return_inverse=True)[1].reshape(-1)
    raise ValueError(f"contexts must be [N] or [N, d], got shape {values.shape}")


def mutual_information(pitches: np.ndarray, contexts: np.ndarray) -> float:
    """Plug-in MI(pitch; context) in nats over paired samples (contexts ``[N]`` or ``[N, d]``)."""
    x = categorical_ids(np.asarray(pitches).reshape(-1))
    y = categorical_ids(contexts)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} pitches but {len(y)} contexts")
    if len(x) == 0:
        return 0.0
    nx, ny = x.max() + 1, y.max() + 1
    return mutual_information_from_counts(np.bincount(x * ny + y, minlength=nx * ny).reshape(nx, ny))


def mutual_information_from_counts(joint: np.ndarray, correction: str | None = None) -> float:
    """Plug-in MI in nats of a joint count table ``[n_x, n_y]`` (empty rows / columns are fine).

    Lets a corpus be accumulated table by table instead of holding every pair in memory.
    ``correction="miller-madow"`` subtracts the first-order bias of the plug-in entropies,
    ``(m_xy − m_x − m_y + 1) / 2N`` with m = number of non-empty cells: the plug-in MI of a
    finite sample is biased upwards, noticeably for contexts with many values (TIME has one per step).
    """
    if correction not in (None, "miller-madow"):
        raise ValueError(f"correction must be None or 'miller-madow', not {correction!r}")
    joint = np.asarray(joint, dtype=np.float64)
    n = joint.sum()
    if n <= 0:
        return 0.0
    pxy = joint / n
    px, py = pxy.sum(axis=1, keepdims=True), pxy.sum(axis=0, keepdims=True)
    nz = pxy > 0
    mi = float(np.sum(pxy[nz] * np.log(pxy[nz] / (px @ py)[nz])))
    if correction == "miller-madow":
        m_xy, m_x, m_y = np.count_nonzero(joint), np.count_nonzero(px), np.count_nonzero(py)
        mi -= (m_xy - m_x - m_y + 1) / (2.0 * n)
    return max(mi, 0.0)  # rounding can leave -1e-17 for independent variables


def pitch_context_pairs(roll: np.ndarray, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Active cells of ``roll`` ``[T, k*128]`` as (pitch, context-at-that-step) pairs.

    Each track's active cell is one sample (pitch = column mod 128). ``context``: ``[T]`` or
    ``[T, d]``.
    """
    roll = np.asarray(roll)
    context = np.asarray(context)
    if context.shape[0] != roll.shape[0]:
        raise ValueError(f"roll has {roll.shape[0]} steps but context has {context.shape[0]}")
    t, col = np.nonzero(roll)
    return col % 128, context[t]
