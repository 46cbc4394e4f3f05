"""The answer decision: the fitted model file, its checks, and both deciders on real indexes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.decision import MODEL, REASONS, DecisionModel, Features, load_model, params_sha256
from rag.errors import ModelError
from rag.pipeline import Pipeline

from .conftest import make_settings

# The committed model's parameters: a refit that changes them changes this line too.

MODEL_SHA256 = json.loads(MODEL.read_text(encoding="utf-8"))["params_sha256"]


def test_the_committed_model_loads_offline_and_says_what_it_was_fitted_on() -> None:
    model = load_model()
    assert params_sha256(model.parameters()) == MODEL_SHA256
    header = model.header
    assert header["fitted_by"] == "python -m eval.fit_decision"
    assert "eval/questions.jsonl" in header["trained_on"] and len(header["trained_on"]) >= 3
    assert not any("lu-xun" in d.lower() or "luxun" in d.lower() for d in header["trained_on"])
    assert set(model.features) <= set(REASONS) and 0.0 < model.threshold < 1.0
    prior = model.prior.neutral if model.prior is not None else 0.0  # an ordinary question
    near, far = Features(lift=8.0, cosine=0.97, prior=prior), Features(lift=-2.0, cosine=0.8, prior=prior)
    assert model.score(near) > model.threshold > model.score(far)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: {**d, "coef": [c + 1.0 for c in d["coef"]]},  # edited numbers, stale checksum
        lambda d: {**d, "features": ["shoe_size"] * len(d["features"])},
        lambda d: {k: v for k, v in d.items() if k != "threshold"},
        lambda d: {**d, "version": 99},
        lambda d: {**d, "ceilings": {"offtopic": 9.0}},  # a ceiling lifted by hand, stale checksum
    ],
)
def test_a_damaged_model_file_is_a_clear_error(tmp_path: Path, damage) -> None:
    path = tmp_path / "decision.json"
    path.write_text(json.dumps(damage(json.loads(MODEL.read_text(encoding="utf-8")))), encoding="utf-8")
    with pytest.raises(ModelError, match="cannot be used"):
        load_model(path)
    (tmp_path / "half.json").write_text(MODEL.read_text(encoding="utf-8")[:100], encoding="utf-8")
    with pytest.raises(ModelError, match="fit_decision"):
        load_model(tmp_path / "half.json")


def test_every_answer_carries_its_decision(pipeline: Pipeline) -> None:
    answered = pipeline.ask("why did he leave?").to_dict()["decision"]
    declined = pipeline.ask("他有几个孩子？").to_dict()["decision"]
    assert answered["abstained"] is False and answered["reason"] == "" and 0.8 < answered["score"] <= 1.0
    assert declined["abstained"] is True and declined["reason"] in REASONS.values()


@pytest.fixture(scope="module")
def english_corpus(tmp_path_factory) -> Path:
    """A short English text no decision was fitted on."""
    seeds = tmp_path_factory.mktemp("english") / "seeds"
    seeds.mkdir()
    shutil.copy(Path(__file__).with_name("fixtures") / "harbour-note.en.txt", seeds)
    return seeds


def test_the_learned_decision_answers_plain_questions_about_an_english_text(english_corpus: Path) -> None:
    root = english_corpus.parent
    settings = make_settings(root, seeds_dir=english_corpus).with_(examples=None)
    pipe = Pipeline.load(settings, say=lambda _m: None)
    plain = {
        "When did the harbour reopen?": "1998",
        "How long is the north pier?": "340 metres",
        # Asked in Chinese, about an English text.
        "港口哪一年重新开放？": "1998",
        "灯塔是谁重建的？": "Agnes Varga",
        "冬天渡轮多久一班？": "once a day",
    }
    for question, fact in plain.items():
        answer = pipe.ask(question)
        assert not answer.abstained and fact in answer.answer, (question, answer.decision)
    assert pipe.ask("What is the capital of Australia?").abstained


def test_fitting_is_deterministic_and_keeps_only_features_that_help_on_a_left_out_document(tmp_path: Path) -> None:
    from eval.fit_decision import fit
    from rag.decision import save_model

    # Three documents: `lift` separates answerable questions everywhere, `cross` is noise.
    data = {
        f"doc{d}": [
            (Features(lift=lift + d, cross=float((i + d) % 2)), lift > 1.0) for i, lift in enumerate(range(-3, 6))
        ]
        for d in range(3)
    }
    first, second = fit(data, l2=1.0, max_false=0.05), fit(data, l2=1.0, max_false=0.05)
    assert first.parameters() == second.parameters()
    assert "lift" in first.features and "cross" not in first.features
    save_model(first, tmp_path / "d.json")
    assert load_model(tmp_path / "d.json").parameters() == first.parameters()


def test_the_letters_examples_have_a_decision_fitted_on_them_as_they_are() -> None:
    """eval/questions.jsonl.decision.json: refit with `python -m eval.fit_decision
    --examples eval/questions.jsonl` whenever the examples change."""
    from rag.config import REPO
    from rag.decision import examples_model, examples_model_path
    from rag.examples import examples_sha256

    examples = REPO / "eval" / "questions.jsonl"
    own = load_model(examples_model_path(examples))
    assert own.header["examples_sha256"] == examples_sha256(examples), "refit: the examples changed"
    assert own.header["fitted_by"] == "python -m eval.fit_decision --examples"
    assert own.header["settings"]["threshold_on"] == "out-of-fold scores"
    assert examples_model(examples, examples_sha256(examples)) == own


def test_examples_without_a_fit_of_their_own_or_a_stale_one_have_no_decision_of_their_own(tmp_path: Path) -> None:
    from rag.config import REPO
    from rag.decision import examples_model, examples_model_path

    examples = tmp_path / "mine.jsonl"
    examples.write_text("", encoding="utf-8")
    assert examples_model(examples, "whatever") is None and examples_model(None, "") is None
    shutil.copy(examples_model_path(REPO / "eval" / "questions.jsonl"), examples_model_path(examples))
    notes: list[str] = []
    assert examples_model(examples, "another version", notes.append) is None
    assert "fitted on another version of mine.jsonl" in notes[0] and "--examples" in notes[0]


def test_a_fit_on_examples_is_deterministic_and_its_threshold_comes_from_unseen_questions() -> None:
    from eval.fit_examples import fit_examples

    rows = [(Features(lift=x, cosine=0.8 + x / 100), x > 2.0) for x in [i / 4 for i in range(40)]]
    rows += [(Features(lift=x), x > 3.5) for x in (0.5, 2.5, 3.0, 3.8)]  # some overlap: not separable
    a, b = fit_examples(rows, 1.0, 0.05), fit_examples(rows, 1.0, 0.05)
    assert a.parameters() == b.parameters() and set(a.features) == set(REASONS) - {"prior"}
    assert a.score(Features(lift=9.0, cosine=0.89)) > a.threshold > a.score(Features(lift=0.0, cosine=0.8))
    assert 0.5 < a.header["out_of_fold_auroc"] <= 1.0


def test_a_question_beyond_a_ceiling_is_declined_whatever_its_score() -> None:
    model = DecisionModel.from_dict(
        {"features": ["lift"], "mean": [0.0], "scale": [1.0], "coef": [2.0], "intercept": 0.0, "threshold": 0.5,
         "ceilings": {"offtopic": 0.08}}
    )  # fmt: skip
    near = model.decide(Features(lift=3.0, offtopic=0.05))
    far = model.decide(Features(lift=3.0, offtopic=0.09))
    assert not near.abstained and far.abstained and far.reason == REASONS["offtopic"] and far.score == 0.0
    assert model.parameters()["ceilings"] == {"offtopic": 0.08}
    with pytest.raises(ValueError, match="unknown features"):
        DecisionModel.from_dict({**model.parameters(), "ceilings": {"shoe_size": 1.0}})


def test_the_committed_ceiling_is_the_largest_value_an_answerable_training_question_had() -> None:
    """It is fitted (eval.fit_decision.fit_ceilings), and only for the features
    whose larger values mean a question further from the text."""
    from eval.fit_decision import CEILINGS, fit_ceilings

    model = load_model()
    assert set(model.ceilings) == set(CEILINGS) and 0.0 < model.ceilings["offtopic"] < 0.3
    rows = {
        "a": [(Features(offtopic=0.031), True), (Features(offtopic=0.5), False)],
        "b": [(Features(offtopic=0.07201), True)],
    }
    assert fit_ceilings(rows) == {"offtopic": 0.0721}
