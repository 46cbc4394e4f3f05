"""Lexical side of retrieval: word tokens for BM25 (`bm25s`).

Chinese runs are cut into words by `jieba`; Latin-script words are
lower-cased; punctuation and a short list of function words are dropped.
BM25 and word overlap compare `terms`: English words by their stems.

A build loads jieba's whole dictionary (349k words: 0.4 s and ~80 MB). A query
needs only the part of it the corpus can match: `corpus_dictionary` keeps
every dictionary word that occurs in the corpus text (with jieba's own
frequencies and total), so `query_cutter` rebuilt from it cuts the corpus
exactly as the whole dictionary does (`tests/test_seeds_chunking.py` checks
it), in a millisecond and a few hundred kilobytes. A question's words outside
the corpus are cut differently, but they match nothing in BM25 either way.

>>> tokenize("Why did Mrinank leave Anthropic?")
['mrinank', 'leave', 'anthropic']
>>> tokenize("Who took over his team after he went?")  # light verbs, in any tense, are dropped
['over', 'team', 'after']
"""

from __future__ import annotations

import logging
import re
import threading

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f][A-Za-z0-9\u00c0-\u024f'-]*|\d+")
_TOKEN = re.compile(rf"{_CJK.pattern}|{_LATIN.pattern}")
STOP_EN = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been being do does did "
    "what which who whom whose why how when where that this these those it its he his him she her they "
    "them their we our you your i me my not no yes can could would should will about into than then so "
    "there here has have had any some says say said tell does article letter "
    # Light verbs and adverbs: no topic of their own, and their dictionary
    # glosses are noise ("going" → 工作, 情况) that pulls an off-topic question
    # ("Is it going to snow in Toronto?") towards the article.
    "going go goes went gone get gets got like make makes made want wants take takes took taken come comes came "
    "give gives gave given put let done told "
    "thing things also just really very well even still now ever".split()
)
STOP_ZH = frozenset(
    "的 了 是 在 和 与 及 也 都 就 而 或 把 被 让 对 从 这 那 之 其 他 她 它 他们 我们 你 我 吗 呢 吧 啊 "
    "什么 为什么 怎么 怎样 如何 哪 哪些 哪里 哪个 谁 几 多少 是否 有没有 有 没有 一个 一 个 说 文章 信中 提到".split()
)
_jieba_lock = threading.Lock()
_jieba = None


def _cutter():
    """jieba, initialised once (it builds a 0.5 s prefix dictionary)."""
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba


def tokenize(text: str, cutter=None) -> list[str]:
    """BM25 tokens of one text, in order; `cutter` is a `query_cutter`, else
    jieba with its whole dictionary."""
    cutter = cutter or _cutter()
    out: list[str] = []
    for m in _TOKEN.finditer(text):
        piece = m.group()
        if _CJK.fullmatch(piece):
            out += [w for w in cutter.lcut(piece) if w not in STOP_ZH]
        else:
            word = piece.lower()
            if word not in STOP_EN:
                out.append(word)
    return out


def cut(text: str) -> list[str]:
    """jieba's words for a Chinese string."""
    return _cutter().lcut(text)


def is_latin(token: str) -> bool:
    return not _CJK.search(token)


# A PyStemmer instance keeps state between calls and must not be used by two
# threads at once; the app answers requests on several threads.
_stemmers = threading.local()


def terms(tokens: list[str]) -> list[str]:
    """What BM25 and word overlap compare: each Latin token by its Snowball
    English stem (PyStemmer), so "migrated" meets "migration" and "backups"
    "backup"; Chinese words and numbers as they are. The tokens themselves
    stay whole for translation (rag.lexicon).

    >>> terms(["migrated", "backups", "离开", "2024"])
    ['migrat', 'backup', '离开', '2024']
    """
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        import Stemmer

        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return [stemmer.stemWord(t) if t.isascii() and not t.isdigit() else t for t in tokens]


def corpus_dictionary(texts: list[str]) -> dict:
    """The words of jieba's dictionary that occur in `texts`, and the
    dictionary's total: all `query_cutter` needs to cut those texts as the
    whole dictionary does (the same candidate words, scored alike)."""
    jieba = _cutter()
    freq = jieba.dt.FREQ
    longest = max(len(w) for w, f in freq.items() if f)
    words: dict[str, int] = {}
    for text in texts:
        for run in _CJK.findall(text):
            for i in range(len(run)):
                for j in range(i + 1, min(len(run), i + longest) + 1):
                    if f := freq.get(run[i:j]):
                        words[run[i:j]] = f
    for w in sorted(STOP_ZH):  # question words are cut off the words around them
        if f := freq.get(w):
            words[w] = f
    return {"total": jieba.dt.total, "words": dict(sorted(words.items()))}


def query_cutter(dictionary: dict):
    """A jieba tokenizer over `corpus_dictionary`'s words, built in memory.

    >>> cutter = query_cutter({"total": 60_000_000, "words": {"离开": 9000, "离": 500, "开": 900, "原因": 8000}})
    >>> cutter.lcut("离开的原因")
    ['离开', '的', '原因']
    """
    import io

    import jieba

    jieba.setLogLevel(logging.WARNING)
    cutter = jieba.Tokenizer()
    lines = "".join(f"{w} {f}\n" for w, f in dictionary["words"].items())
    cutter.FREQ, _ = cutter.gen_pfdict(io.BytesIO(lines.encode("utf-8")))
    cutter.total = dictionary["total"]
    cutter.initialized = True  # no dictionary file to load, nothing cached on disk
    return cutter
