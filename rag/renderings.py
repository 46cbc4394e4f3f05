"""Renderings: a seed's sentences in the other language, as data beside the seed.

No translator runs offline here, so an English answer over a Chinese document
(or the reverse) is written from renderings made once and reviewed, the way
the index is built once. A seed `a.zh.txt` may have `a.zh.txt.en.jsonl`
beside it: one JSON object per line, ``{"original": ..., "rendering": ...}``,
keyed by the exact text of a sentence (as `rag.chunking.split_sentences` cuts
the paragraphs) or of a heading, so a diff shows each pair and a change to
the seed shows up as missing and orphaned records (`check`). `python -m rag
translate` writes them with the configured model (rag.translate).

>>> table = {"他走了。": "He left.", "没说原因。": "He gave no reason."}
>>> render("他走了。没说原因。", table)
'He left. He gave no reason.'
>>> render("他走了。他笑了。", table) is None
True
>>> render("他说:\\n他走了。", {**table, "他说:": "He said:"})  # a line joined to the one it introduces
'He said: He left.'

"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .chunking import split_sentences
from .errors import SeedsError
from .folders import write_atomic
from .records import Document

LANGS = ("en", "zh")
_FILE = re.compile(r"^(?P<seed>.+)\.(?P<lang>[a-z]{2})\.jsonl$")


def is_renderings_file(path: Path) -> bool:
    """`a.txt.en.jsonl` is the English renderings of `a.txt` (when that file exists)."""
    m = _FILE.match(path.name)
    return bool(m) and m["lang"] in LANGS and path.with_name(m["seed"]).is_file()


def renderings_path(seed: Path, lang: str) -> Path:
    return seed.with_name(f"{seed.name}.{lang}.jsonl")


def other_lang(lang: str) -> str:
    return "en" if lang == "zh" else "zh"


def units(doc: Document) -> list[str]:
    """What a renderings file must cover, in document order, once each: every
    heading on a section path and every sentence of every paragraph."""
    out: dict[str, None] = {}
    for p in doc.paragraphs:
        for heading in p.section.split(" › ") if p.section else ():
            out.setdefault(heading)
        for _, _, sentence in split_sentences(p.text, p.start):
            out.setdefault(sentence)
    return list(out)


def load(path: Path) -> dict[str, str]:
    """original → rendering; SeedsError naming the file and line for anything malformed."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SeedsError(f"{path}: cannot read the renderings ({e}).") from None
    table: dict[str, str] = {}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            original, rendering = record["original"], record["rendering"]
        except (ValueError, TypeError, KeyError):
            raise SeedsError(f'{path}:{n}: expected {{"original": ..., "rendering": ...}}.') from None
        if not (isinstance(original, str) and isinstance(rendering, str) and original.strip() and rendering.strip()):
            raise SeedsError(f"{path}:{n}: original and rendering must be non-empty text.")
        if original in table:
            raise SeedsError(f"{path}:{n}: a second rendering of the same sentence.")
        table[original] = rendering.strip()
    return table


@dataclass(frozen=True)
class Coverage:
    missing: tuple[str, ...]  # units with no rendering
    orphaned: tuple[str, ...]  # renderings of text the document no longer has

    @property
    def complete(self) -> bool:
        return not self.missing and not self.orphaned


def check(doc: Document, table: dict[str, str]) -> Coverage:
    wanted = units(doc)
    have = set(wanted)
    return Coverage(tuple(u for u in wanted if u not in table), tuple(o for o in table if o not in have))


def render(text: str, table: dict[str, str]) -> str | None:
    """The rendering of an index sentence (one or more units, e.g. a line and
    the sentence it introduces), or None when a unit has none."""
    parts = [table.get(s) for line in text.split("\n") for _, _, s in split_sentences(line)]
    if not parts or any(p is None for p in parts):
        return None
    return " ".join(parts)


def for_document(seeds_dir: Path, doc: Document) -> tuple[str, dict[str, str]]:
    """The language of the document's renderings file and its table ("", {} when there is none)."""
    lang = other_lang(doc_lang(doc))
    path = renderings_path(seeds_dir / doc.source, lang)
    return (lang, load(path)) if path.is_file() else ("", {})


def doc_lang(doc: Document) -> str:
    from .decision import detect_lang

    return detect_lang(doc.text[:4000])


def bridged(sentences: Iterable) -> frozenset[str]:
    """The languages that renderings make the whole index readable in: every
    sentence reads in the language, itself or through its rendering, and some
    only through a rendering. A question in one of them meets text in its own
    language everywhere, which a question in the documents' own does anyway.

    >>> from rag.records import Sentence
    >>> he = Sentence("c", "a", "", 1, 0, 3, "他走了", lang="zh", rendering="He left")
    >>> bridged([he]), bridged([he, Sentence("d", "b", "", 1, 0, 3, "他笑了", lang="zh")])
    (frozenset({'en'}), frozenset())
    """
    readable, through = set(LANGS), set()
    for s in sentences:
        readable &= {s.lang, other_lang(s.lang)} if s.rendering else {s.lang}
        if s.rendering:
            through.add(other_lang(s.lang))
    return frozenset(readable & through)


def write(path: Path, pairs: Iterable[tuple[str, str]]) -> None:
    """Write records atomically (a reader never sees half a file), in the order given."""
    lines = (json.dumps({"original": o, "rendering": r}, ensure_ascii=False) + "\n" for o, r in pairs)
    write_atomic(path, "".join(lines))


def attach(seeds_dir: Path, docs: list[Document], sentences: list) -> tuple[list, list[str]]:
    """The sentences with their document's language and, where a renderings
    file has them, their renderings; and a note for each file that is
    unreadable, incomplete or stale (the build goes on without those records)."""
    from dataclasses import replace

    langs, tables, notes = {}, {}, []
    for doc in docs:
        langs[doc.source] = doc_lang(doc)
        try:
            lang, table = for_document(seeds_dir, doc)
        except SeedsError as e:
            notes.append(f"{e} (answers quote {doc.source} in its own language)")
            continue
        if not table:
            continue
        tables[doc.source] = table
        cover = check(doc, table)
        if not cover.complete:
            name = renderings_path(Path(doc.source), lang).as_posix()
            notes.append(
                f"{name}: {len(cover.missing)} sentences without a rendering, {len(cover.orphaned)} renderings "
                "of text the document no longer has (python -m rag translate fills them in)"
            )
    out = []
    for s in sentences:
        rendering = render(s.text, tables.get(s.source, {})) or ""
        out.append(replace(s, lang=langs.get(s.source, ""), rendering=rendering))
    return out, notes
