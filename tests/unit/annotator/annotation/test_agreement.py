import pytest

from annotator.annotation.agreement import AlphaAccumulator, consensus


def test_consensus_rules() -> None:
    assert consensus([]).source == "none"
    assert consensus(["pro"]).label == "pro"
    assert consensus(["pro", "pro"]).source == "unanimous"
    majority = consensus(["pro", "anti", "pro"])
    assert (majority.label, majority.source, round(majority.agreement or 0, 3)) == ("pro", "majority", 0.667)
    assert consensus(["pro", "anti"]).label is None
    assert consensus(["pro", "anti"], adjudicated="anti").label == "anti"


def test_alpha_matches_a_hand_computed_value() -> None:
    # Units (a,a), (a,b), (b,b): D_o = 2/6, D_e = 18/30, alpha = 1 - (1/3)/(3/5) = 4/9.
    acc = AlphaAccumulator()
    for unit in (["a", "a"], ["a", "b"], ["b", "b"]):
        acc.add(unit)
    assert acc.alpha() == pytest.approx(4 / 9)


def test_alpha_perfect_and_single_labels() -> None:
    acc = AlphaAccumulator()
    acc.add(["pro"])  # not pairable: ignored
    assert acc.alpha() is None
    acc.add(["pro", "pro"])
    acc.add(["anti", "anti", "anti"])
    assert acc.alpha() == pytest.approx(1.0)
    assert acc.units == 2
