"""The question prior of the answer decision: fitted out of document, saved with its checksum, read by the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.decision import Features, QuestionPrior, load_model, save_model
from rag.errors import ModelError
from rag.pipeline import Pipeline


def _documents(signal: bool, seed: int = 0) -> tuple[dict, dict]:
    """Three documents whose answerable questions `lift` half separates; with
    `signal`, the first vector component tells the rest (else it is noise)."""
    rng = np.random.default_rng(seed)
    data, vectors = {}, {}
    for d in range(3):
        y = np.arange(40) % 3 != 0
        lift = y * 1.0 + rng.normal(scale=1.0, size=40)
        V = rng.normal(size=(40, 8)) * 0.05
        if signal:
            V[:, 0] += np.where(y, 0.05, -0.05)
        data[f"doc{d}"] = [(Features(lift=float(x)), bool(a)) for x, a in zip(lift, y, strict=True)]
        vectors[f"doc{d}"] = V.astype(np.float32)
    return data, vectors


def test_the_prior_joins_the_decision_only_when_it_helps_on_a_left_out_document(tmp_path: Path) -> None:
    from eval.fit_decision import fit

    data, vectors = _documents(True)
    with_signal = fit(data, l2=1.0, max_false=0.05, vectors=vectors)
    assert "prior" in with_signal.features and with_signal.prior is not None
    assert with_signal.header["prior_fitted"]["l2"] in with_signal.header["prior_fitted"]["l2_tried"]
    data, vectors = _documents(False)
    noise = fit(data, l2=1.0, max_false=0.05, vectors=vectors)
    assert "prior" not in noise.features and noise.prior is None and "prior" not in noise.parameters()
    save_model(with_signal, tmp_path / "d.json")
    again = load_model(tmp_path / "d.json")
    assert again.parameters() == with_signal.parameters() and again.prior == with_signal.prior
    asks_well = np.zeros(8, dtype=np.float32)
    asks_well[0] = 0.2
    assert again.prior.logit(asks_well) > again.prior.logit(-asks_well)


def test_the_prior_is_covered_by_the_checksum_and_needed_by_its_feature(tmp_path: Path) -> None:
    from eval.fit_decision import fit

    data, vectors = _documents(True)
    model = fit(data, l2=1.0, max_false=0.05, vectors=vectors)
    save_model(model, tmp_path / "d.json")
    data = json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))
    data["prior"]["coef"][0] += 1.0
    (tmp_path / "edited.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match="checksum"):
        load_model(tmp_path / "edited.json")
    del data["prior"]
    (tmp_path / "none.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError, match="no question prior"):
        load_model(tmp_path / "none.json")


def test_a_vector_the_prior_cannot_read_gets_its_neutral_value() -> None:
    prior = QuestionPrior(coef=(1.0, 2.0), intercept=-0.5, neutral=0.25)
    assert prior.logit(np.array([1.0, 1.0])) == 2.5
    assert prior.logit(None) == prior.logit(np.ones(384)) == 0.25


def test_the_pipeline_reads_the_prior_from_the_query_vector(pipeline: Pipeline) -> None:
    """The committed decision: a real question on the real index gets the prior
    of its own vector, the one the retrieval searched with."""
    model = load_model()
    if model.prior is None:
        pytest.skip("the committed decision does not use the question prior")
    from rag.conversation import contextual_query
    from rag.decision import features

    question = "他为什么离开 Anthropic?"
    found = pipeline.retriever.search(contextual_query(question, []), question)
    assert found.query_vector is not None and len(found.query_vector) == len(model.prior.coef)
    f = features(found, "zh", pipeline.settings.top_k, model.prior)
    assert f.prior == model.prior.logit(found.query_vector) != model.prior.neutral
    from rag.answer import Policy, decide

    assert decide("zh", found, Policy(top_k=pipeline.settings.top_k, model=model)) == model.decide(f)
