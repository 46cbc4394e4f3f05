"""Lexical side of retrieval: word tokens for BM25 (`bm25s`).

Chinese runs are cut into words by `jieba`; Latin-script words are
lower-cased; punctuation and a short list of function words are dropped.

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


def tokenize(text: str) -> list[str]:
    """BM25 tokens of one text, in order."""
    out: list[str] = []
    for m in _TOKEN.finditer(text):
        piece = m.group()
        if _CJK.fullmatch(piece):
            out += [w for w in _cutter().lcut(piece) if w not in STOP_ZH]
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
