"""Choose how a question reads passages in the other language (`rag/bilingual.json`).

With documents in two languages and no renderings, a question meets a
foreign passage twice: with its dictionary translations and as asked
(`rag.bilingual.Bilingual.foreign`). Which reading to trust more depends on
the question's language (the dictionaries differ in each direction), so the
share of the as-asked reading is chosen per question language, on the
training corpora indexed together without renderings: the share from `GRID`
that most often puts a sentence of the right document first, over the
answerable questions. Ties go to the share nearest an even mix.
Deterministic: the same data give the same file.

    python -m eval.fit_bilingual                  # the training corpora; writes rag/bilingual.json
    python -m eval.fit_bilingual --out /tmp/b.json --corpus corpora/ferrypix-photo-sync \
        --corpus corpora/hairspring-watch-shop

Keep test documents out of `--corpus`, as for `eval.fit_decision`.

>>> choose({0.0: 0.7, 0.5: 0.8, 1.0: 0.8})
0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rag.bilingual import LANGUAGES, SHARES, SHARES_FORMAT
from rag.config import REPO, Settings
from rag.decision import params_sha256
from rag.errors import RagError

from .fit_decision import TRAIN

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def choose(rates: dict[float, float]) -> float:
    """The share with the best rate; of equals, the one nearest 0.5."""
    return max(rates, key=lambda share: (round(rates[share], 6), -abs(share - 0.5)))


def together(settings: Settings, corpora: list[Path], workdir: Path) -> tuple[Settings, list[dict]]:
    """Settings answering from one private index of all the corpora's documents
    (`eval.__main__.corpus_settings`, each into the same folder), and their
    answerable questions (`eval.runner.load_questions`)."""
    from .__main__ import corpus_settings
    from .runner import load_questions

    questions: list[dict] = []
    for corpus in corpora:
        settings = corpus_settings(settings, corpus, workdir)
        good, problems = load_questions(corpus / "questions.jsonl", settings.max_question_chars)
        if problems:
            raise ValueError("\n".join(problems))
        questions += [q.item for q in good if q.item["answerable"] and q.item.get("source")]
    return settings, questions


def rates_by_share(pipe, questions: list[dict]) -> dict[str, dict[float, float]]:
    """For each question language and share: how often the best sentence is in the right document."""
    from rag.conversation import contextual_query
    from rag.decision import detect_lang

    out: dict[str, dict[float, float]] = {lang: {} for lang in LANGUAGES}
    for share in GRID:
        pipe.retriever.use_shares({lang: share for lang in LANGUAGES})
        right: dict[str, list[bool]] = {lang: [] for lang in LANGUAGES}
        for q in questions:
            text = q["question"]
            found = pipe.retriever.search(contextual_query(text, q.get("history", [])), text)
            top = found.sentences[0].sentence.source if found.sentences else None
            right[detect_lang(text)].append(top == q["source"])
        for lang, hits in right.items():
            if hits:
                out[lang][share] = sum(hits) / len(hits)
    return out


def fit(corpora: list[Path]) -> dict:
    """The file's content: the chosen shares, with what they were chosen on."""
    from rag.pipeline import Pipeline

    with tempfile.TemporaryDirectory(prefix="rag-bilingual-") as tmp:
        settings, questions = together(Settings.from_env(llm_base_url="", llm_model=""), corpora, Path(tmp))
        pipe = Pipeline.load(settings, say=lambda _m: None)  # builds the index
        rates = rates_by_share(pipe, questions)
    shares = {lang: choose(r) for lang, r in rates.items() if r}
    return {
        "format": SHARES_FORMAT,
        "version": 1,
        "fitted_by": "python -m eval.fit_bilingual",
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "trained_on": [c.relative_to(REPO).as_posix() if c.is_relative_to(REPO) else str(c) for c in corpora],
        "questions": len(questions),
        "settings": {"grid": list(GRID), "objective": "share of answerable questions led by the right document"},
        "rates": {lang: {str(s): round(v, 4) for s, v in r.items()} for lang, r in rates.items()},
        "asked_share": shares,
        "params_sha256": params_sha256(shares),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.fit_bilingual", description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, action="append", help="a training corpus folder (repeatable)")
    ap.add_argument("--out", type=Path, default=SHARES)
    args = ap.parse_args(argv)
    corpora = [c.resolve() for c in (args.corpus or [REPO / c for c in TRAIN])]
    try:
        data = fit(corpora)
    except (OSError, ValueError, KeyError, RagError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for lang, rates in data["rates"].items():
        print(f"{lang}: " + "  ".join(f"{s} {v:.3f}" for s, v in rates.items()) + f"  -> {data['asked_share'][lang]}")
    print(f"Wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
