"""Paper metrics (CS, SSMD, GS, NDD) and harmonization metrics on hand-computed toy cases."""

import math

import numpy as np
import pytest

from harmonize import metrics as M
from harmonize.chords import NO_CHORD, parse_chord
from harmonize.song import ChordSpan, Note


def roll(T, notes, tracks=1):
    """notes: (start, end, pitch[, track])."""
    r = np.zeros((T, 128 * tracks), dtype=np.uint8)
    for n in notes:
        s, e, p = n[:3]
        trk = n[3] if len(n) > 3 else 0
        r[s:e, trk * 128 + p] = 1
    return r


def random_roll(seed, T=64, density=0.05):
    rng = np.random.default_rng(seed)
    r = (rng.random((T, 128)) < density).astype(np.uint8)
    r[-1] = 0  # so that tiling does not merge notes across the seam
    return r


# ----- onsets -------------------------------------------------------------------------------------


def test_onsets_at_t0_and_transitions_only():
    r = roll(6, [(0, 2, 60), (3, 6, 60), (1, 2, 64)])
    on = M.onsets(r)
    assert on[:, 60].tolist() == [1, 0, 0, 1, 0, 0]
    assert on[:, 64].tolist() == [0, 1, 0, 0, 0, 0]
    assert on.sum() == 3


def test_onsets_summed_over_tracks():
    r = roll(4, [(0, 4, 60, 0), (2, 4, 60, 1)], tracks=2)
    on = M.onsets(r)
    assert on[0, 60] == 1 and on[2, 60] == 1


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        M.chroma_similarity(np.zeros((4, 100)), np.zeros((4, 100)))
    with pytest.raises(ValueError):
        M.paper_metrics(np.zeros((4, 128)), np.zeros((5, 128)))


# ----- CS -----------------------------------------------------------------------------------------


def test_chroma_similarity_hand_computed():
    # half 1: target {C:1}, pred {C:1, E:1} -> cos 1/sqrt2 ; half 2: both {E:1} -> 1
    tgt = roll(16, [(0, 8, 60), (8, 16, 64)])
    prd = roll(16, [(0, 8, 60), (0, 4, 64), (8, 16, 64)])
    assert M.chroma_similarity(tgt, prd) == pytest.approx(100 * (1 / math.sqrt(2) + 1) / 2)


def test_chroma_similarity_counts_onsets_not_activity():
    # same chroma, target has 2 onsets of C in the half-measure and 1 of G; pred has 1 C and 1 G
    tgt = roll(8, [(0, 2, 60), (4, 6, 72), (0, 8, 67)])
    prd = roll(8, [(0, 8, 60), (0, 8, 67)])
    expected = 100 * (2 * 1 + 1 * 1) / (math.sqrt(5) * math.sqrt(2))
    assert M.chroma_similarity(tgt, prd) == pytest.approx(expected)


def test_chroma_similarity_empty_conventions():
    tgt = roll(32, [(0, 4, 60), (16, 20, 60)])  # halves: {C}, {}, {C}, {}
    prd = roll(32, [(0, 4, 60), (8, 12, 60)])  # halves: {C}, {C}, {}, {}
    # half 1: 1 ; half 2: target empty only -> 0 ; half 3: pred empty only -> 0 ; half 4: skipped
    assert M.chroma_similarity(tgt, prd) == pytest.approx(100 * 1 / 3)
    assert M.chroma_similarity(np.zeros((16, 128)), np.zeros((16, 128))) == 100.0
    assert M.chroma_similarity(tgt, np.zeros((32, 128))) == 0.0


def test_chroma_similarity_range_negative_impossible_but_bounded():
    # onset counts are non-negative, so cosine >= 0 here; disjoint chroma gives 0
    tgt = roll(8, [(0, 8, 60)])
    prd = roll(8, [(0, 8, 61)])
    assert M.chroma_similarity(tgt, prd) == 0.0


# ----- SSMD ---------------------------------------------------------------------------------------


def test_ssm_distance_hand_computed():
    tgt = roll(16, [(0, 8, 60), (8, 16, 64)])  # SSM [[1,0],[0,1]]
    prd = roll(16, [(0, 8, 60), (0, 4, 64), (8, 16, 64)])  # SSM [[1,1/√2],[1/√2,1]]
    expected = 50 * (2 * (1 / math.sqrt(2))) / 4
    assert M.ssm_distance(tgt, prd) == pytest.approx(expected)


def test_ssm_silent_half_measures_match_each_other():
    # target halves {C}, {} ; pred {} , {}  -> SSM_t [[1,0],[0,1]], SSM_p all ones -> mean |Δ| = 0.5
    tgt = roll(16, [(0, 4, 60)])
    assert M.ssm_distance(tgt, np.zeros((16, 128))) == pytest.approx(25.0)


# ----- GS -----------------------------------------------------------------------------------------


def test_grooving_similarity_hand_computed():
    tgt = roll(16, [(0, 2, 60), (8, 10, 62)])  # pattern [1,0,1,0]
    prd = roll(16, [(0, 2, 60), (5, 6, 70)])  # pattern [1,1,0,0]
    assert M.grooving_pattern(tgt).tolist() == [1, 0, 1, 0]
    assert M.grooving_similarity(tgt, prd) == pytest.approx(50.0)


def test_grooving_ignores_sustain():
    tgt = roll(16, [(0, 16, 60)])  # one onset: [1,0,0,0]
    prd = roll(16, [(0, 4, 60), (4, 8, 61)])  # [1,1,0,0]
    assert M.grooving_similarity(tgt, prd) == pytest.approx(75.0)


# ----- NDD ----------------------------------------------------------------------------------------


def test_note_density_distance_hand_computed():
    # per-step counts: target [2,2,1,0], pred [1,3,0,5] -> missing % [50, 0, 100, (skipped)]
    tgt = roll(4, [(0, 2, 60), (0, 2, 64), (2, 3, 67)])
    prd = roll(4, [(0, 2, 60), (1, 2, 62), (1, 2, 65), (3, 4, 40), (3, 4, 41), (3, 4, 42), (3, 4, 43),
                   (3, 4, 44)])
    assert M.note_density_distance(tgt, prd) == pytest.approx(50.0)


def test_ndd_folds_tracks_by_or_and_silent_target():
    tgt = roll(2, [(0, 2, 60, 0), (0, 2, 60, 1), (0, 2, 64, 1)], tracks=2)  # 2 distinct pitches
    prd = roll(2, [(0, 2, 50)], tracks=2)  # 1 pitch -> 50% missing
    assert M.note_density_distance(tgt, prd) == pytest.approx(50.0)
    assert M.note_density_distance(np.zeros((4, 128)), roll(4, [(0, 4, 60)])) == 0.0


# ----- properties ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identical_inputs_are_perfect(seed):
    r = random_roll(seed)
    m = M.paper_metrics(r, r)
    assert m == {"CS": pytest.approx(100.0), "SSMD": pytest.approx(0.0), "GS": 100.0, "NDD": 0.0}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cs_invariant_to_octave_transposition(seed):
    tgt, prd = random_roll(seed), random_roll(seed + 10)
    prd[:, 116:] = 0  # keep the shifted copy inside 0..127
    shifted = np.zeros_like(prd)
    shifted[:, 12:] = prd[:, :-12]
    assert M.chroma_similarity(tgt, shifted) == pytest.approx(M.chroma_similarity(tgt, prd))
    assert M.ssm_distance(tgt, shifted) == pytest.approx(M.ssm_distance(tgt, prd))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_length_invariance_under_tiling(seed):
    tgt, prd = random_roll(seed), random_roll(seed + 5, density=0.02)
    a = M.paper_metrics(tgt, prd)
    b = M.paper_metrics(np.tile(tgt, (2, 1)), np.tile(prd, (2, 1)))
    for k in ("CS", "SSMD", "GS", "NDD"):
        assert b[k] == pytest.approx(a[k]), k


def test_metric_directions_on_a_worse_prediction():
    tgt = random_roll(3)
    good = tgt.copy()
    good[10:20] = 0
    bad = np.zeros_like(tgt)
    mg, mb = M.paper_metrics(tgt, good), M.paper_metrics(tgt, bad)
    assert mg["CS"] > mb["CS"] and mg["GS"] > mb["GS"] and mg["NDD"] < mb["NDD"]
    assert mb["NDD"] == 100.0


def test_metrics_by_bucket():
    tgt = random_roll(4, T=16 * 40)
    prd = tgt.copy()
    prd[16 * 16:] = 0  # second and third buckets are empty predictions
    rows = M.metrics_by_bucket(tgt, prd, bucket_bars=16)
    assert [(r["start_bar"], r["end_bar"]) for r in rows] == [(0, 16), (16, 32), (32, 40)]
    assert rows[0]["CS"] == pytest.approx(100.0) and rows[0]["NDD"] == 0.0
    assert rows[1]["NDD"] == 100.0 and rows[2]["CS"] == 0.0


# ----- harmonization metrics ----------------------------------------------------------------------

C, F, G, Am = (parse_chord(s) for s in ("C:maj", "F:maj", "G:maj", "A:min"))


def test_tonal_centroid_hand_computed():
    assert M.tonal_centroid([0]) == pytest.approx([0, 1, 0, 1, 0, 0.5])
    assert M.tonal_centroid([6]) == pytest.approx([0, -1, 0, -1, 0, 0.5], abs=1e-12)
    s3 = math.sqrt(3)
    # C major {0,4,7}: fifths angles 0, 2π/3, π/6; minor thirds 0, 0, π/2; major thirds 0, 2π/3, 2π/3
    expected = [(s3 + 1) / 6, (1 + s3) / 6, 1 / 3, 2 / 3, 0.5 * s3 / 3, 0.0]
    assert M.tonal_centroid(C.pitch_classes) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError):
        M.tonal_centroid([])


def test_che_cc_ctd():
    frames = [C, C, F, G, NO_CHORD]
    assert M.chord_histogram_entropy(frames) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert M.chord_coverage(frames) == 3
    assert M.chord_tonal_distance([C, C]) == 0.0
    assert math.isnan(M.chord_tonal_distance([C, NO_CHORD, C]))
    # C -> C -> N -> C : only the one C->C pair counts
    assert M.chord_tonal_distance([C, C, NO_CHORD, C]) == 0.0


def test_ctd_single_pitch_sets_via_distance():
    # ‖TC{0} − TC{6}‖ = sqrt(2² + 2²) (tritone: opposite on both unit circles, same on the r3 circle)
    d = np.linalg.norm(M.tonal_centroid([0]) - M.tonal_centroid([6]))
    assert d == pytest.approx(2 * math.sqrt(2))


def test_ctnctr_hand_computed():
    melody = np.array([60, 62, 64, 65, 69, -1, 67])
    chords = [C] * 7
    # chord tones C, E, G (3); non-chord D (-> E, chord tone, 2 st: passing), F (-> A, 4 st: no),
    # A (-> rest skipped -> G, 2 st, chord tone: neighbour) => (3 + 2) / (3 + 3)
    assert M.chord_tone_ratio(melody, chords) == pytest.approx(5 / 6)
    assert math.isnan(M.chord_tone_ratio(np.array([-1, -1]), [C, C]))


def test_ctnctr_passing_tone_checks_chord_at_resolution():
    # D over C, resolves to C4 which falls under F: C is a chord tone of F -> passing
    assert M.chord_tone_ratio(np.array([62, 60]), [C, F]) == pytest.approx((1 + 1) / (1 + 1))
    # D over C resolving to E under F: E is not in F -> not passing; E itself is non-chord too
    assert M.chord_tone_ratio(np.array([62, 64]), [C, F]) == pytest.approx(0.0)


def test_pcs_hand_computed():
    # E over C major: 4, 0, 9 -> +1 +1 +1 ; F over C major: 5 (P4) 0, 1 -> -1, 10 -> -1
    assert M.pitch_consonance_score(np.array([64, 65]), [C, C]) == pytest.approx((3 - 2) / 6)
    # C over F major: above F a P5 (+1), above A a m3 (+1), unison (+1)
    assert M.pitch_consonance_score(np.array([72]), [F]) == pytest.approx(1.0)
    # reference |m - c| = 5 for C vs F scores 0; folded min(5, 7) = 5 scores 0 too
    assert M.pitch_consonance_score(np.array([72]), [F], pcs_mode="reference") == pytest.approx(2 / 3)
    assert M.pitch_consonance_score(np.array([72]), [F], pcs_mode="folded") == pytest.approx(2 / 3)
    assert math.isnan(M.pitch_consonance_score(np.array([60]), [NO_CHORD]))


def test_mctd_true_l2():
    s3 = math.sqrt(3)
    a = (1 + s3) / 6
    diff = [a, 1 - a, -1 / 3, 1 / 3, -s3 / 6, 0.5]  # TC{C} - TC(C major), from the hand values above
    assert M.melody_chord_tonal_distance(np.array([60, -1]), [C, C]) == pytest.approx(
        math.sqrt(sum(x * x for x in diff))
    )
    # the reference code's |Σ(a − b)| would differ here
    assert abs(sum(diff)) != pytest.approx(math.sqrt(sum(x * x for x in diff)))


def test_chord_accuracy_levels_and_n():
    C7, A = parse_chord("C:7"), parse_chord("A:maj")
    pred = [C] * 4 + [Am] * 4 + [C7] * 4 + [NO_CHORD] * 4
    ref = [C] * 4 + [A] * 4 + [C] * 4 + [C] * 4
    assert M.chord_accuracy(pred, ref, level="root") == pytest.approx(0.75)
    assert M.chord_accuracy(pred, ref, level="majmin") == pytest.approx(0.5)
    assert M.chord_accuracy(pred, ref, level="class") == pytest.approx(0.25)
    assert M.chord_accuracy([NO_CHORD] * 4, [NO_CHORD] * 4) == 1.0
    # families: dim goes with minor, sus4 with major
    assert M.chord_accuracy([parse_chord("C:dim")] * 4, [parse_chord("C:min")] * 4) == 1.0
    assert M.chord_accuracy([parse_chord("C:sus4")] * 4, [C] * 4) == 1.0
    with pytest.raises(ValueError):
        M.chord_accuracy(pred, ref, level="bogus")


def test_chord_frames_take_the_first_step():
    chords = [C, F, F, F, G, G, G, G]
    assert M.chord_frames(chords, 4) == [C, G]


def test_harmonization_metrics_accepts_spans_and_melody_helper():
    notes = [Note(0, 4, 60), Note(4, 8, 64), Note(8, 16, 67)]
    melody = M.melody_per_step(notes, 16)
    assert melody.tolist() == [60] * 4 + [64] * 4 + [67] * 8
    spans = [ChordSpan(0, 8, C), ChordSpan(8, 16, G)]
    out = M.harmonization_metrics(melody, spans, ref_chords=spans)
    assert out["CC"] == 2.0 and out["CTnCTR"] == 1.0 and out["acc_class"] == 1.0
    assert out["CHE"] == pytest.approx(math.log(2))
    assert set(out) == {"CHE", "CC", "CTD", "CTnCTR", "PCS", "MCTD", "acc_root", "acc_majmin", "acc_class"}
    with pytest.raises(ValueError):
        M.harmonization_metrics(melody, [C] * 15)


def test_change_rate_counts_root_and_family_changes_between_adjacent_frames():
    from harmonize.chords import Chord
    from harmonize.metrics import change_rate, chord_label

    c, c7, am, none = Chord(0, "maj"), Chord(0, "7"), Chord(9, "min"), Chord(None)
    assert chord_label(c7) == chord_label(c) and chord_label(c7, "class") != chord_label(c, "class")
    assert change_rate([c, c7, am, am, none]) == 0.5  # C -> C7 is no change at this level; Am -> N is one
    assert change_rate([c, c7, am, am, none], level="class") == 0.75
    assert np.isnan(change_rate([c]))
