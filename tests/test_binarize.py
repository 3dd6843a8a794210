import numpy as np
import pytest

from harmonize.binarize import binarize, binarize_merge, cell_f1, fill_gaps, tune_binarization


def test_binarize_threshold_inclusive_uint8():
    p = np.array([[0.1, 0.5, 0.9]])
    out = binarize(p, 0.5)
    assert out.dtype == np.uint8 and out.tolist() == [[0, 1, 1]]


def test_fill_gaps_interior_only():
    col = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0])[:, None]
    assert fill_gaps(col, 1)[:, 0].tolist() == [0, 1, 0, 0, 1, 0, 0, 0, 1, 0]
    assert fill_gaps(col, 2)[:, 0].tolist() == [0, 1, 1, 1, 1, 0, 0, 0, 1, 0]
    assert fill_gaps(col, 3)[:, 0].tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    assert fill_gaps(col, 0)[:, 0].tolist() == col[:, 0].tolist()


def test_fill_gaps_is_per_pitch():
    r = np.zeros((5, 128), dtype=np.uint8)
    r[0, 60] = r[4, 60] = 1
    r[2, 61] = 1  # a lone cell in another pitch must not bridge pitch 60's gap or grow
    out = fill_gaps(r, 3)
    assert out[:, 60].tolist() == [1, 1, 1, 1, 1]
    assert out[:, 61].tolist() == [0, 0, 1, 0, 0]
    assert out.sum() == 6


def test_binarize_merge_matches_loop_reference():
    rng = np.random.default_rng(0)
    probs = rng.random((50, 128))
    for gap in (1, 2, 5):
        got = binarize_merge(probs, 0.8, gap)
        b = (probs >= 0.8).astype(np.uint8)
        ref = b.copy()
        for p in range(128):
            on = np.flatnonzero(b[:, p])
            for a, c in zip(on[:-1], on[1:], strict=True):
                if c - a - 1 <= gap:
                    ref[a:c, p] = 1
        np.testing.assert_array_equal(got, ref)


def test_cell_f1_counts():
    t = np.array([[1, 1, 0, 0]])
    p = np.array([[1, 0, 1, 0]])
    assert cell_f1(t, p) == (1, 1, 1)


def test_tune_prefers_merge_for_flickering_predictions():
    # target: one long note; probabilities flicker above/below 0.5 every other step
    target = np.zeros((32, 128), dtype=np.uint8)
    target[:, 60] = 1
    probs = np.full((32, 128), 0.05)
    probs[::2, 60] = 0.7
    probs[1::2, 60] = 0.3
    choice = tune_binarization([probs], [target], thresholds=(0.5, 0.9), gaps=(0, 1))
    assert (choice.threshold, choice.gap) == (0.5, 1)
    # the trailing low step (31) is not between two active cells, so it stays off: 31 of 32 cells
    assert choice.score == pytest.approx(2 * 31 / (2 * 31 + 1))
    # threshold 0.5 without merge: 16 of 32 cells -> F1 = 2*16 / (2*16 + 16)
    assert choice.table[(0.5, 0)] == pytest.approx(32 / 48)
    assert choice.table[(0.9, 1)] == 0.0
    # the paper objective also picks the merged version
    assert tune_binarization([probs], [target], (0.5,), (0, 1), objective="paper").gap == 1


def test_tune_callable_and_errors():
    target = np.zeros((8, 128), dtype=np.uint8)
    probs = np.zeros((8, 128))
    choice = tune_binarization([probs], [target], (0.3, 0.6), (0,), objective=lambda t, p: -p.sum())
    assert choice.threshold == 0.3  # tie -> first grid point
    with pytest.raises(ValueError):
        tune_binarization([probs], [], (0.5,), (0,))
    with pytest.raises(ValueError):
        tune_binarization([probs], [target[:4]], (0.5,), (0,))
    with pytest.raises(ValueError):
        tune_binarization([probs], [target], (0.5,), (0,), objective="bogus")
