import math

import numpy as np
import pytest

from harmonize.mutual_info import (
    categorical_ids,
    mutual_information,
    mutual_information_from_counts,
    pitch_context_pairs,
)


def test_hand_computed_case():
    # joint counts: (60,a)=2, (60,b)=1, (62,b)=1 over n=4
    pitches = np.array([60, 60, 60, 62])
    ctx = np.array([0, 0, 1, 1])
    # p(60)=3/4, p(62)=1/4, p(a)=p(b)=1/2
    expected = (2 / 4) * math.log((2 / 4) / (3 / 4 * 1 / 2)) + (1 / 4) * math.log(
        (1 / 4) / (3 / 4 * 1 / 2)
    ) + (1 / 4) * math.log((1 / 4) / (1 / 4 * 1 / 2))
    assert mutual_information(pitches, ctx) == pytest.approx(expected)


def test_independence_is_zero_and_identity_is_entropy():
    pitches = np.repeat([60, 62, 64], 4)
    ctx = np.tile([0, 1, 2, 3], 3)  # every pitch meets every context equally often
    assert mutual_information(pitches, ctx) == pytest.approx(0.0, abs=1e-12)
    p = np.array([60, 60, 62, 64, 64, 64])
    h = -sum(q * math.log(q) for q in (2 / 6, 1 / 6, 3 / 6))
    assert mutual_information(p, p + 100) == pytest.approx(h)


def test_vector_contexts_are_categorical():
    chroma = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]])
    ids = categorical_ids(chroma)
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    pitches = np.array([60, 60, 67, 67])
    assert mutual_information(pitches, chroma) == pytest.approx(math.log(2))


def test_pairs_from_pianoroll():
    roll = np.zeros((3, 256), dtype=np.uint8)
    roll[0, 60] = roll[0, 128 + 64] = roll[2, 62] = 1
    p, c = pitch_context_pairs(roll, np.array([5, 6, 7]))
    assert sorted(zip(p.tolist(), c.tolist(), strict=True)) == [(60, 5), (62, 7), (64, 5)]
    with pytest.raises(ValueError):
        pitch_context_pairs(roll, np.zeros(2))
    with pytest.raises(ValueError):
        mutual_information(np.zeros(3), np.zeros(2))


def test_counts_table_matches_pairs():
    rng = np.random.default_rng(0)
    pitches = rng.integers(50, 70, size=500)
    ctx = (pitches // 3 + rng.integers(0, 2, size=500)) % 7
    joint = np.zeros((128, 7))
    np.add.at(joint, (pitches, ctx), 1)
    assert mutual_information_from_counts(joint) == pytest.approx(mutual_information(pitches, ctx))
    assert mutual_information_from_counts(np.zeros((3, 3))) == 0.0


def test_miller_madow_correction_hand_computed():
    joint = np.array([[2, 1], [0, 1]])  # the hand case above: n = 4, 3 non-empty cells, 2 rows, 2 cols
    plug_in = mutual_information(np.array([60, 60, 60, 62]), np.array([0, 0, 1, 1]))
    expected = plug_in - (3 - 2 - 2 + 1) / 8  # = plug_in: the bias terms cancel here
    assert mutual_information_from_counts(joint, "miller-madow") == pytest.approx(expected)
    joint = np.ones((2, 3))  # independent, 6 cells: plug-in 0, correction −(6 − 2 − 3 + 1)/12 -> clipped to 0
    assert mutual_information_from_counts(joint, "miller-madow") == 0.0
    joint = np.array([[5, 0], [0, 5]])  # identity: log 2 − (2 − 2 − 2 + 1)/20 = log 2 + 0.05
    assert mutual_information_from_counts(joint, "miller-madow") == pytest.approx(math.log(2) + 0.05)
    with pytest.raises(ValueError):
        mutual_information_from_counts(joint, "bogus")
