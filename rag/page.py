"""What the chat page says about its documents: title, subtitle, examples.

They come from the seeds, not from code: `seeds/chat.toml` (optional; not a
document, and editing it needs no rebuild) may set ``title``, ``subtitle``
and ``examples`` (a list of questions). Without it the page is titled after
the documents (their own titles where the format has one, else file names)
and offers no example questions.

>>> about_documents(["notes.md"], {"notes.md": "Ferry notes"}).title
'Ask Ferry notes'
>>> about_documents(["a.pdf", "b.txt"], {}).title
'Ask your documents (2)'
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import SeedsError

CHAT_FILE = "chat.toml"
SUBTITLE = (
    "Ask in English or Chinese; every answer quotes the documents and cites them. "
    "用中文或英文提问；每个回答都引用原文并标明出处。"
)


@dataclass(frozen=True)
class About:
    title: str
    subtitle: str = SUBTITLE
    examples: tuple[str, ...] = ()


def about_documents(sources: list[str], titles: dict[str, str]) -> About:
    """The page's text derived from the documents themselves."""
    if len(sources) == 1:
        return About(f"Ask {titles.get(sources[0]) or sources[0]}")
    return About(f"Ask your documents ({len(sources)})")


def load_about(seeds_dir: Path, sources: list[str], titles: dict[str, str]) -> About:
    """`seeds/chat.toml` over what the documents give; SeedsError naming the file if it is malformed."""
    derived = about_documents(sources, titles)
    path = seeds_dir / CHAT_FILE
    if not path.is_file():
        return derived
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        hint = "Fix the file or remove it (the page then describes the documents)."
        raise SeedsError(f"{path}: {e}", hint=hint) from None
    examples = data.get("examples", [])
    if not isinstance(examples, list) or not all(isinstance(q, str) and q.strip() for q in examples):
        raise SeedsError(f"{path}: examples must be a list of questions.")
    return About(
        title=str(data.get("title") or derived.title),
        subtitle=str(data.get("subtitle") or derived.subtitle),
        examples=tuple(q.strip() for q in examples),
    )
