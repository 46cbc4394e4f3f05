"""Conversation: how a question is read in the turns before it.

A follow-up ("then what did he do?", "那这件事重要吗?") is searched together
with the last user turn and the start of the answer to it; a question that
does not point back is searched alone, so "How tall is Mount Everest?" after a
question about the letter does not borrow the letter's topic.

>>> refers_back("then what did he do?"), refers_back("How tall is Mount Everest?")
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .answer import LEAD, NOT_SAID

Turn = dict  # {"role": "user" | "assistant", "content": str}

# Words by which a question points back at the conversation ("what does *it*
# say?", "那*这个*机制…", "*then* what did he do?"). A question without them
# stands alone: "How tall is Mount Everest?" after a question about the letter
# must not borrow the letter's topic and so escape abstention.
_REFERS_BACK = re.compile(
    r"\b(?:it|its|that|this|these|those|they|them|their|then|others?|former|latter|first one|second one|"
    r"same|there|afterwards?|next|also|else|more|again)\b|^(?:so|and|but)\b|这|那|它|他们|她们|其|此|该|后来|然后|接着|之后|还有|另",
    re.IGNORECASE,
)


_MARKER = re.compile(r"\[\d+\]")
# Of the answer before a follow-up, this many characters join its query: on
# eval/questions.jsonl 60 and 150 score alike (hit@1 0.759 -> 0.776, answer
# accuracy 0.845 -> 0.862 over the user turn alone).
ANSWER_CONTEXT_CHARS = 150


def refers_back(question: str) -> bool:
    return bool(_REFERS_BACK.search(question))


def contextual_query(question: str, history: Sequence[Turn]) -> str:
    """The question with the conversation it refers back to, so follow-ups keep
    their topic: the last user turn and the start of the answer to it (what
    "这件事" or "there" most likely points at). A question that does not refer
    back is searched alone.

    >>> turns = [{"role": "user", "content": "他接下来想学什么?"},
    ...          {"role": "assistant", "content": "他表示,希望攻读诗歌学位。[1]"}]
    >>> contextual_query("为什么这件事重要?", turns)
    '他接下来想学什么? 他表示,希望攻读诗歌学位。 为什么这件事重要?'
    >>> contextual_query("How tall is Mount Everest?", turns)
    'How tall is Mount Everest?'
    >>> contextual_query("那他呢?", [turns[0], {"role": "assistant", "content": "文章没有提到这一点。"}])
    '他接下来想学什么? 那他呢?'
    """
    earlier = _said(history, "user")
    if not earlier or not refers_back(question):
        return question
    context = [earlier[-1][:500]]
    answers = _said(history, "assistant")
    if answers:
        reply = _MARKER.sub("", answers[-1]).strip()
        if reply not in NOT_SAID.values():  # "the article does not say" points at nothing
            context.append(reply.removeprefix(LEAD["en"])[:ANSWER_CONTEXT_CHARS])
    return " ".join([*context, question])


def _said(history: Sequence[Turn], role: str) -> list[str]:
    said = [t.get("content") for t in history if isinstance(t, dict) and t.get("role") == role]
    return [s.strip() for s in said if isinstance(s, str) and s.strip()]
