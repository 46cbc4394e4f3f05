"""Synthetic seed documents for scale runs: varied Chinese and English prose.

Owns the generator only. Sentences are filled from templates with people,
organisations, topics, places, numbers and dates drawn at random, so a large
corpus holds hundreds of thousands of distinct sentences (not copies of one
paragraph), in sections under headings, like a real seeds folder. The same
seed gives the same corpus.

>>> import random
>>> rng = random.Random(7)
>>> docs = [named_document(rng, i) for i in range(2)]
>>> [name for name, _ in docs]
['doc-00000.zh.txt', 'doc-00001.en.txt']
>>> len({s for _, text in docs for s in text.split("\\n")}) > 20
True
"""

from __future__ import annotations

import random
from pathlib import Path

ZH_WHO = (
    "研究员 王晓 林峰 陈静 赵明 李然 张悦 周琳 吴昊 郑洁 孙越 刘洋 何宁 高远 罗青 梁晨 宋雨 唐韵 许诺 韩雪 冯涛"
).split()
ZH_ORG = "开放实验室 星河研究院 北辰科技 远山大学 青禾基金会 海岸数据中心 安全评估小组 伦理委员会 政策研究所".split()
ZH_TOPIC = (
    "模型对齐 数据隐私 能源消耗 气候风险 生物安全 算法偏见 教育公平 开源协作 供应链韧性 医疗影像 "
    "城市交通 农业遥感 语言保护 金融监管 芯片出口 诗歌创作 心理健康 远程办公 海洋保护 太空探索"
).split()
ZH_PLACE = "北京 上海 深圳 杭州 成都 伦敦 旧金山 新加坡 东京 柏林 多伦多 悉尼".split()
ZH_VERB = "发表了 主持了 批评了 支持了 重新审视了 总结了 公开了 启动了 暂停了 评估了".split()
ZH_THING = "一份报告 一项研究 一封公开信 一个试点项目 一套评测 一次内部讨论 一篇论文 一项新政策".split()
ZH_FEEL = "担忧 乐观 谨慎 坚定 犹豫 失望 兴奋 冷静".split()
ZH = (
    "{who}于{year}年{month}月{day}日在{place}{verb}关于{topic}的{thing}。",
    "据{org}统计，{topic}相关项目在过去{n}个月里增长了百分之{pct}。",
    "{who}表示，自己对{topic}的未来感到{feel}，因为{org}的投入还远远不够。",
    "在{place}举行的会议上，{org}与{org2}就{topic}达成了{n}项共识。",
    "{who}认为：“如果不解决{topic}的问题，{topic2}也无从谈起。”",
    "这项关于{topic}的工作持续了{n}年，最终由{who}在{place}完成。",
    "{org}的负责人{who}宣布将在{year}年前投入{n}亿元研究{topic}。",
    "许多人问{who}为什么离开{org}，他的回答与{topic}有关。",
    "{who}离职后打算去{place}学习{topic}，并继续写作。",
    "{org}在第{n}次年度评估中发现，{topic}的风险被低估了。",
    "与{who}不同，{who2}更关心{topic2}带来的长期影响。",
    "截至{year}年底，{place}已有{n}家机构参与{topic}的合作。",
)
EN_WHO = "Alice Chen, Bob Okafor, Carla Ruiz, Deepak Rao, Elena Petrova, Farid Haddad, Grace Kim, Hugo Li".split(", ")
EN_ORG = "the Open Lab, Northwind Institute, Harbor University, the Safety Board, Cedar Foundation".split(", ")
EN_TOPIC = (
    "model alignment, data privacy, energy use, climate risk, biosecurity, algorithmic bias, open source, "
    "supply chains, medical imaging, urban transport, crop monitoring, language preservation, poetry"
).split(", ")
EN_PLACE = "London, Berlin, Toronto, Singapore, Nairobi, Lisbon, Seoul, Austin, Oslo".split(", ")
EN_VERB = "published, reviewed, criticised, funded, paused, launched, summarised, defended".split(", ")
EN_THING = "a report, a study, an open letter, a pilot project, a benchmark, a policy draft, a paper".split(", ")
EN = (
    "In {year}, {who} {verb} {thing} on {topic} in {place}.",
    "{org} says work on {topic} grew by {pct} percent over {n} months.",
    "{who} left {org} in {month}/{year} to study {topic} full time.",
    "Why did {who} leave? The answer, she wrote, had to do with {topic}.",
    "At a meeting in {place}, {org} and {org2} agreed on {n} points about {topic}.",
    "{who} argued that {topic} cannot be solved without progress on {topic2}.",
    "After {n} years of work on {topic}, the team in {place} {verb} {thing}.",
    "Unlike {who}, {who2} worries more about the long-term effects of {topic2}.",
    "By the end of {year}, {n} groups in {place} had joined the work on {topic}.",
)
ZH_ASK = (
    "{who}为什么离开{org}？",
    "{who}在{place}发表了什么？",
    "{org}在{topic}上投入了多少？",
    "{who}对{topic}的看法是什么？",
)
EN_ASK = (
    "Why did {who} leave {org}?",
    "What did {who} publish about {topic}?",
    "Which groups in {place} work on {topic}?",
    "What does {org} say about {topic}?",
)
ZH_HEADINGS = ("背景", "经过", "各方回应", "争议与反思", "下一步计划", "数据与方法", "尾声")
EN_HEADINGS = ("Background", "What happened", "Reactions", "Open questions", "Next steps", "Methods")


def _fill(rng: random.Random, template: str, lang: str) -> str:
    zh = lang == "zh"
    who, org, topic = (ZH_WHO, ZH_ORG, ZH_TOPIC) if zh else (EN_WHO, EN_ORG, EN_TOPIC)
    return template.format(
        who=rng.choice(who), who2=rng.choice(who), org=rng.choice(org), org2=rng.choice(org),
        topic=rng.choice(topic), topic2=rng.choice(topic), place=rng.choice(ZH_PLACE if zh else EN_PLACE),
        verb=rng.choice(ZH_VERB if zh else EN_VERB), thing=rng.choice(ZH_THING if zh else EN_THING),
        feel=rng.choice(ZH_FEEL), year=rng.randint(1990, 2030), month=rng.randint(1, 12), day=rng.randint(1, 28),
        n=rng.randint(2, 999), pct=rng.randint(1, 99),
    )  # fmt: skip


def sentence(rng: random.Random, lang: str) -> str:
    return _fill(rng, rng.choice(ZH if lang == "zh" else EN), lang)


def paragraph(rng: random.Random, lang: str) -> str:
    """Two to five sentences; about one English sentence in ten sits in a Chinese paragraph."""
    out = []
    for _ in range(rng.randint(2, 5)):
        mixed = lang == "zh" and rng.random() < 0.1
        out.append(sentence(rng, "en" if mixed else lang))
    return ("" if lang == "zh" else " ").join(out)


def document(rng: random.Random, lang: str, sections: int = 4) -> str:
    """A lead paragraph, then sections of 3–8 paragraphs under short headings."""
    lines = [paragraph(rng, lang)]
    headings = ZH_HEADINGS if lang == "zh" else EN_HEADINGS
    for title in rng.sample(headings, min(sections, len(headings))):
        lines.append(title)
        lines += [paragraph(rng, lang) for _ in range(rng.randint(3, 8))]
    return "\n".join(lines) + "\n"


def questions(rng: random.Random, count: int) -> list[str]:
    """Questions about the synthetic corpus, half Chinese, half English."""
    out = []
    for i in range(count):
        lang = "zh" if i % 2 == 0 else "en"
        out.append(_fill(rng, rng.choice(ZH_ASK if lang == "zh" else EN_ASK), lang))
    return out


def named_document(rng: random.Random, i: int) -> tuple[str, str]:
    """Document number `i`: two in five are English, the rest Chinese."""
    lang = "en" if i % 5 in (1, 3) else "zh"
    return f"doc-{i:05d}.{lang}.txt", document(rng, lang)


def write_corpus(folder: Path, target_chunks: int, chunk_size: int = 220, seed: int = 0) -> tuple[list, list]:
    """Write documents into `folder` until they hold at least `target_chunks`
    chunks by the real chunker (one document over at most); return the chunks
    and sentences of everything written."""
    from rag.chunking import chunk_document
    from rag.seeds import parse_document

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    chunks, sentences, i = [], [], 0
    while len(chunks) < target_chunks:
        name, text = named_document(rng, i)
        c, s = chunk_document(parse_document(name, text), chunk_size)
        (folder / name).write_text(text, encoding="utf-8")
        chunks += c
        sentences += s
        i += 1
    return chunks, sentences
