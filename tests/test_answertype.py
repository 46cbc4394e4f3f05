"""Answer types: which fact a question asks for, and whether a sentence holds one.

Pure functions, checked by hand on the article's own sentences; the pipeline
tests check that they make real questions abstain.
"""

from __future__ import annotations

import pytest

from rag.answertype import expected_type, has_type


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("In what year did he leave Anthropic?", "year"),
        ("那他的孩子多大了?", "age"),
        ("Anthropic 是哪一年成立的？", "year"),
        ("When did he announce his departure?", "date"),
        ("How many people were on his team?", "people"),
        ("他那条帖子有多少人点赞？", "people"),
        ("信中先后提到了哪几位诗人?", None),  # which poets, not how many
        ("他做了哪几个项目?", None),
        ("What was Anthropic valued at in its latest funding round?", "money"),
        ("How many years did he spend at the company?", "duration"),
        ("那他在那家公司待了多长时间?", "duration"),
        ("How many papers did he publish there?", "number"),
        ("他有几个孩子?", "family"),  # a number, but first of all about his family
        ("他的父母是做什么的？家里还有兄弟姐妹吗？", "family"),
        ("Is Mrinank married?", "family"),
        ("How many papers did he write?", "number"),
        ("Anthropic 给了他多少离职补偿？", "money"),
        ("What severance did he get?", "money"),
        ("why did he leave?", "reason"),
        ("Who founded Anthropic?", "role"),
        ("Who will replace him?", "role"),
        ("Anthropic 的创始人是谁?", "role"),
        ("Who runs Anthropic as chief executive?", "role"),
        ("Who owns X now?", "role"),
        ("X 这个平台现在归谁所有?", "role"),
        ("Who reported that?", None),  # a source, not a role
        ("Who led the biodefense work?", None),  # "he" answers it: leading is not a title
        ("What did he research?", None),
    ],
)
def test_expected_type(question: str, kind: str | None) -> None:
    assert expected_type(question) == kind


@pytest.mark.parametrize(
    ("kind", "text", "holds"),
    [
        ("year", "两年前,他刚结束博士学业,来到旧金山", True),  # relative, but a year
        ("year", "已于 2 月 9 日正式离职", False),
        ("year", "回顾了自己在 Anthropic 的两年历程", False),  # a duration, not a year
        ("people", "包括 Harsh Mehta 和 Behnam Neyshabur 在内的多位研究人员", True),  # "several" answers it
        ("people", "团队共有 12 名研究人员", True),
        ("people", "一位高级安全负责人主动离开", False),  # 一位: "a", not a count
        ("number", "回顾了自己在 Anthropic 的两年历程", False),  # a length of time counts no papers
        ("duration", "回顾了自己在 Anthropic 的两年历程", True),
        ("duration", "两年前,他刚结束博士学业", False),  # a point in time
        ("number", "包括两位研究人员", True),
        ("number", "已于 2 月 9 日正式离职", False),  # a date is not a count
        ("number", "也没有投身另一家 AI 公司", False),
        ("number", "如果两者失衡,技术就可能失去方向", False),  # 两者: "both"
        ("date", "已于 2 月 9 日正式离职", True),
        ("family", "他和妻子搬到了旧金山", True),
        ("family", "他的下一步计划带着浓厚的人文色彩", False),
        ("family", "for no reason, in any season", False),  # words, not "son"
        ("role", "其高级人工智能安全负责人 Mrinank Sharma 在 X 上宣布", False),  # names people, not a CEO
        ("role", "公司创始人宣布由她接任", True),
    ],
)
def test_has_type(kind: str, text: str, holds: bool) -> None:
    assert has_type(kind, text) is holds
