"""The SQuAD v1.1 metric, pinned on hand-written cases for each normalisation step."""

from __future__ import annotations

import pytest

from heavytail.metrics import f1_score, normalize_answer, squad_v1


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("The Eiffel Tower", "eiffel tower"),          # lower-case + article
        ("an apple, a pear", "apple pear"),            # articles anywhere, punctuation
        ("U.S.A.", "usa"),                             # punctuation inside tokens is removed, not split
        ("  1,000   years ", "1000 years"),            # whitespace collapsed
        ("theatre", "theatre"),                        # 'the' only as a whole word
        ("Anne's hat", "annes hat"),
        ("A", ""),
    ],
)
def test_normalize_answer(raw, normalised):
    assert normalize_answer(raw) == normalised


def test_f1_is_token_overlap():
    assert f1_score("the big red dog", "red dog") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert f1_score("cat", "dog") == 0.0
    assert f1_score("dog dog", "dog") == pytest.approx(2 * 0.5 * 1 / 1.5)  # counts are clipped
    assert f1_score("", "dog") == 0.0


def test_squad_v1_max_over_ground_truths_and_percent():
    references = {"q1": ["Denver Broncos", "The Denver Broncos"], "q2": ["1066"], "q3": ["in 1492"]}
    predictions = {"q1": "the denver broncos!", "q2": "1067", "q3": "1492"}
    scores = squad_v1(predictions, references)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 0 + 2 * 1 * 0.5 / 1.5) / 3)


def test_missing_prediction_scores_zero_and_empty_references_fail():
    assert squad_v1({}, {"q": ["x"]}) == {"exact_match": 0.0, "f1": 0.0}
    with pytest.raises(ValueError, match="references is empty"):
        squad_v1({}, {})
