"""The answer decision: answer, or say the text does not say. All of it lives here.

A logistic model over a few generic features of one retrieval, fitted on
labelled questions about several documents (`python -m eval.fit_decision`)
and saved as data (`rag/decision.json`, with what it was trained on). No
feature names a word or a document; the one that carries most, `lift`, is
calibrated on each corpus without labels: how much closer the question is to
its best sentence than everyday questions in the same language are to theirs
(`rag.offtopic`), in units of their spread. That is what lets one threshold
serve a Chinese letter and an English short story, and questions asked across
languages.

>>> model = DecisionModel.from_dict({
...     "features": ["lift"], "mean": [0.0], "scale": [1.0], "coef": [2.0], "intercept": 0.0,
...     "threshold": 0.5})
>>> d = model.decide(Features(lift=1.0))
>>> (d.abstained, round(d.score, 3)), model.decide(Features(lift=-1.0)).reason
((False, 0.881), 'no sentence is much closer to the question than everyday questions are')
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from .answertype import SOFT_TYPES, has_type
from .errors import ModelError

MODEL = Path(__file__).with_name("decision.json")
FORMAT = "letter-rag-decision"
VERSION = 1
PARAMETERS = ("features", "mean", "scale", "coef", "intercept", "threshold", "ceilings", "prior")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def detect_lang(text: str) -> str:
    """'zh' when the text is mainly Chinese, else 'en': Chinese characters
    against Latin words, not letters, so long names ("Mrinank Sharma",
    "Anthropic") do not outweigh the Chinese around them; an English word
    says about as much as two Chinese characters.

    >>> detect_lang("why did he leave?"), detect_lang("他为什么离开 Anthropic?")
    ('en', 'zh')
    >>> detect_lang("Mrinank Sharma 在 Anthropic 担任什么职位?"), detect_lang("What does 谄媚 mean?")
    ('zh', 'en')
    """
    cjk, words = len(_CJK.findall(text)), len(_LATIN_WORD.findall(text))
    return "zh" if cjk and cjk >= 2 * words else "en"


@dataclass(frozen=True)
class Features:
    """What the decision reads from one retrieval (see `features`)."""

    lift: float = 0.0  # (best cosine − everyday questions' mean best) / their spread, same language
    cosine: float = 0.0  # best sentence cosine
    offtopic: float = 0.0  # nearest everyday question's cosine − best sentence cosine
    followup_offtopic: float = 0.0  # for a follow-up read with its context: the same, of it alone
    all_words: float = 0.0  # 1: one of the best sentences holds every word of the question
    type_missing: float = 0.0  # 1: it asks for a kind of fact none of the best sentences has
    cross: float = 0.0  # 1: the question's language is not the best sentence's
    example_near: float = -1.0  # cosine of the closest worked example of the corpus; -1 without any
    prior: float = 0.0  # `QuestionPrior.logit` of the question's vector: how often questions like it are answered


# Why an abstention happened: the feature that pulled the score down most.
REASONS = {
    "lift": "no sentence is much closer to the question than everyday questions are",
    "cosine": "no sentence is close enough to the question",
    "offtopic": "the question is closer to an everyday question than to the text",
    "followup_offtopic": "the follow-up, read on its own, is about something else",
    "all_words": "no sentence holds all the question's words",
    "type_missing": "no sentence holds the kind of fact asked for",
    "cross": "the question is in another language than the text",
    "example_near": "the question is unlike every question known to be answered here",
    "prior": "questions like this one mostly ask for what such texts do not say",
}


def features(found, lang: str, top_k: int, prior: QuestionPrior | None = None) -> Features:
    """The decision's features for a `rag.records.Retrieval` of a question in
    `lang`; `prior` reads its query vector (0.0 without one)."""
    best = found.best_sentence
    mean, spread = found.baseline.get(lang, (0.0, 1.0))
    top = found.sentences[:top_k]
    kind = found.kind
    missing = kind is not None and kind not in SOFT_TYPES and not any(has_type(kind, s.sentence.text) for s in top)
    return Features(
        lift=(best - mean) / max(spread, 1e-6),
        cosine=best,
        offtopic=found.background - best,
        followup_offtopic=found.own_offtopic or 0.0,
        all_words=float(found.words_all_found),
        type_missing=float(missing),
        cross=float(bool(top) and detect_lang(top[0].sentence.text) != lang),
        example_near=found.example_near,
        prior=prior.logit(found.query_vector) if prior is not None else 0.0,
    )


@dataclass(frozen=True)
class QuestionPrior:
    """How often questions like this one are answered, from the question's
    vector alone: a logistic model's logit (`eval.fit_prior`). Its vector is
    in the embedder's units (no standardisation to undo); a vector it cannot
    read (none, or another model's width) gets `neutral`, the value at which
    the decision's weight for it adds nothing.

    >>> p = QuestionPrior(coef=(2.0, -1.0), intercept=0.5, neutral=0.1)
    >>> p.logit(np.array([1.0, 1.0])), p.logit(None), p.logit(np.zeros(3))
    (1.5, 0.1, 0.1)
    """

    coef: tuple[float, ...]
    intercept: float
    neutral: float

    def logit(self, vector: np.ndarray | None) -> float:
        if vector is None or len(vector) != len(self.coef):
            return self.neutral
        return round(self.intercept + float(np.dot(self.coef, vector)), 6)


@dataclass(frozen=True)
class Decision:
    abstained: bool
    reason: str  # "" when answering
    score: float  # the model's probability that the text answers the question

    def to_dict(self) -> dict:
        return {"abstained": self.abstained, "reason": self.reason, "score": round(self.score, 4)}


@dataclass(frozen=True)
class DecisionModel:
    """A fitted logistic model: standardised features, weights, a threshold."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    header: dict  # what it was fitted on and how (eval.fit_decision)
    # feature → the largest value any answerable training question had: above
    # it a question is outside what the fit ever saw answered, and is declined.
    ceilings: dict = field(default_factory=dict)
    prior: QuestionPrior | None = None  # reads the `prior` feature; None when the fit did not use it

    @classmethod
    def from_dict(cls, data: dict) -> DecisionModel:
        known = {f.name for f in fields(Features)}
        names = tuple(data["features"])
        if not set(names) <= known:
            raise ValueError(f"unknown features {sorted(set(names) - known)}")
        n = len(names)
        vectors = [tuple(float(x) for x in data[k]) for k in ("mean", "scale", "coef")]
        if any(len(v) != n for v in vectors):
            raise ValueError("features, mean, scale and coef differ in length")
        ceilings = {str(k): float(v) for k, v in data.get("ceilings", {}).items()}
        if not set(ceilings) <= known:
            raise ValueError(f"unknown features {sorted(set(ceilings) - known)}")
        header = {k: v for k, v in data.items() if k not in PARAMETERS}
        prior = data.get("prior")
        if prior is not None:
            coef = tuple(float(x) for x in prior["coef"])
            prior = QuestionPrior(coef, float(prior["intercept"]), float(prior["neutral"]))
        elif "prior" in names:
            raise ValueError("the feature prior has no question prior to read it")
        model = cls(names, *vectors, float(data["intercept"]), float(data["threshold"]), header, ceilings)
        return replace(model, prior=prior)

    def parameters(self) -> dict:
        """The numbers the decision uses; `params_sha256` in the file is their checksum
        (`ceilings` only when there are any, so files fitted without them keep theirs)."""
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if k in PARAMETERS}
        if self.prior is not None:
            out["prior"] = {**asdict(self.prior), "coef": list(self.prior.coef)}
        return {k: v for k, v in out.items() if (k != "ceilings" or v) and (k != "prior" or v)}

    def contributions(self, f: Features) -> dict[str, float]:
        values = asdict(f)
        return {
            name: c * (values[name] - m) / s
            for name, m, s, c in zip(self.features, self.mean, self.scale, self.coef, strict=True)
        }

    def score(self, f: Features) -> float:
        z = self.intercept + sum(self.contributions(f).values())
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def decide(self, f: Features) -> Decision:
        values = asdict(f)
        over = [name for name, ceiling in self.ceilings.items() if values[name] > ceiling]
        if over:  # no answerable question the fit saw came this far: the score would be extrapolation
            return Decision(True, REASONS[over[0]], 0.0)
        p = self.score(f)
        if p >= self.threshold:
            return Decision(False, "", p)
        worst = min(self.contributions(f).items(), key=lambda kv: kv[1])[0]
        return Decision(True, REASONS[worst], p)


def params_sha256(parameters: dict) -> str:
    return hashlib.sha256(json.dumps(parameters, sort_keys=True).encode("utf-8")).hexdigest()


def examples_model_path(examples: Path) -> Path:
    """Where the decision fitted on a worked-examples file lives: beside it
    (`python -m eval.fit_decision --examples FILE`)."""
    return examples.with_name(examples.name + ".decision.json")


def examples_model(examples: Path | None, examples_sha: str, say=lambda _m: None) -> DecisionModel | None:
    """The decision fitted on a corpus's own worked examples, when they have one
    and it was fitted on them as they are now; else None (with a note when it
    is stale). Their labelled questions calibrate it to how close questions come
    to that corpus's sentences, so it judges answers led by a sentence the
    examples are answered by (`rag.answer.decide`); the general model (`MODEL`,
    fitted across documents) judges the rest."""
    own = examples_model_path(examples) if examples is not None else None
    if own is None or not own.exists():
        return None
    model = load_model(own)
    if model.header.get("examples_sha256") != examples_sha:
        say(
            f"note: {own.name} was fitted on another version of {examples.name}; using the general decision. "
            f"Refit it with python -m eval.fit_decision --examples {examples}."
        )
        return None
    return model


def load_model(path: Path = MODEL) -> DecisionModel:
    """The saved decision; ModelError when it is missing, damaged or edited."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} file of version {VERSION}")
        model = DecisionModel.from_dict(data)
        if params_sha256(model.parameters()) != data.get("params_sha256"):
            raise ValueError("its parameters do not match their checksum")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(
            f"The answer decision {path} cannot be used: {e}. Restore it from git or run python -m eval.fit_decision."
        ) from None
    return model


def save_model(model: DecisionModel, path: Path = MODEL) -> None:
    params = model.parameters()
    data = {"format": FORMAT, "version": VERSION, **model.header, **params, "params_sha256": params_sha256(params)}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


BASELINE_BLOCK = 4096  # sentences scored at once against the everyday questions


def everyday_baseline(background: np.ndarray, sentence_views: np.ndarray) -> dict:
    """`corpus_baseline` of the everyday questions of `rag.offtopic` (their
    texts give their languages); {} when `background` is not their vectors."""
    from .offtopic import background_questions

    texts = background_questions()
    if len(texts) != len(background):
        return {}
    return corpus_baseline(background, [detect_lang(t) for t in texts], sentence_views)


def corpus_baseline(background: np.ndarray, langs: list[str], sentence_views: np.ndarray) -> dict:
    """Mean and spread of the everyday questions' best sentence cosine, per
    language: how close a question about nothing in the corpus comes to it.

    >>> views = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    >>> corpus_baseline(np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]]), ["en", "en", "zh"], views)
    {'en': (0.9, 0.1), 'zh': (0.8, 0.1)}
    """
    if len(background) == 0 or sentence_views.shape[1] == 0:
        return {}
    return spread_by_language(best_cosines(background, sentence_views), langs)


def best_cosines(background: np.ndarray, sentence_views: np.ndarray) -> np.ndarray:
    """Each question's highest cosine over every view of every sentence."""
    best = np.full(len(background), -1.0, dtype=np.float32)
    for start in range(0, sentence_views.shape[1], BASELINE_BLOCK):  # in blocks: 100k chunks would need gigabytes
        block = sentence_views[:, start : start + BASELINE_BLOCK]
        best = np.maximum(best, (block.reshape(-1, block.shape[-1]) @ background.T).max(axis=0))
    return best


def spread_by_language(best: np.ndarray, langs: list[str]) -> dict:
    """(mean, spread) of `best` over the questions of each language."""
    out = {}
    for lang in sorted(set(langs)):
        vals = best[[i for i, x in enumerate(langs) if x == lang]]
        # a floor on the spread: one or two everyday questions in a language say little
        out[lang] = (round(float(vals.mean()), 6), round(max(float(vals.std()), 0.1 if len(vals) < 3 else 1e-3), 6))
    return out
