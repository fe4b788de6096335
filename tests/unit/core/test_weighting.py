"""Training weights by label and language (core.weighting), shared by both backends."""

import numpy as np
import pytest

from core.weighting import example_weights, loss_denominators


def test_class_balance_alone_is_scikit_learns_balanced_weighting() -> None:
    labels = [3, 3, 3, 3, 3, 3, 0, 1]
    weights = example_weights(labels, ["en"] * 8, language_power=0.0)
    counts = {3: 6, 0: 1, 1: 1}
    expected = np.array([8 / (3 * counts[label]) for label in labels])
    assert np.allclose(weights, expected) and weights.mean() == pytest.approx(1.0)


def test_language_weights_lift_a_small_language_by_the_square_root_of_its_share() -> None:
    languages = ["en"] * 90 + ["tr"] * 10
    labels = [0, 1] * 50
    weights = example_weights(labels, languages, class_balance=False, language_power=0.5)
    assert weights[-1] / weights[0] == pytest.approx(3.0)  # (0.1 / 0.9) ** -0.5
    totals = {lang: weights[np.array(languages) == lang].sum() for lang in ("en", "tr")}
    assert totals["en"] / totals["tr"] == pytest.approx(3.0)  # English still weighs more in all, 3:1 not 9:1
    equal = example_weights(labels, languages, class_balance=False, language_power=1.0)
    assert equal[np.array(languages) == "en"].sum() == pytest.approx(equal[np.array(languages) == "tr"].sum())


def test_no_weighting_is_uniform_and_bad_input_is_refused() -> None:
    assert np.allclose(example_weights([0, 1, 1], ["a", "b", "b"], class_balance=False, language_power=0), 1)
    with pytest.raises(ValueError, match="2 labels but 3 languages"):
        example_weights([0, 1], ["a", "b", "c"])
    with pytest.raises(ValueError, match="0 or more"):
        example_weights([0, 1], ["a", "b"], language_power=-1)
    assert example_weights([], []).shape == (0,)


def test_a_confidence_of_zero_is_an_absent_example_and_a_half_weighs_half() -> None:
    labels, languages = [0, 0, 1, 2, 2, 3], ["en", "tr", "en", "en", "tr", "tr"]
    weights = example_weights([*labels, 1], [*languages, "tr"], confidences=[1.0] * 6 + [0.0])
    assert weights[-1] == 0.0
    assert np.allclose(weights[:-1], example_weights(labels, languages))  # the others as if it were absent
    unsure = example_weights(labels, languages, confidences=[1.0] * 5 + [0.5])
    assert unsure.sum() == pytest.approx(5.5)
    plain = example_weights(labels, languages, confidences=[1.0] * 6)
    assert np.array_equal(plain, example_weights(labels, languages))  # full confidence: the old weights
    denominators = loss_denominators(unsure, [1.0] * 5 + [0.5])
    assert denominators[-1] == pytest.approx(2 * unsure[-1]) and np.array_equal(denominators[:5], unsure[:5])
    assert loss_denominators(weights, [1.0] * 6 + [0.0])[-1] == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        example_weights([0], ["en"], confidences=[1.5])
    with pytest.raises(ValueError, match="nothing to train on"):
        example_weights([0], ["en"], confidences=[0.0])
