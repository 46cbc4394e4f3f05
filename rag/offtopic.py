"""Off-topic questions: the background the seeds are compared against.

The embedding model rates every question fairly close to every passage (the
cosines of e5 crowd into 0.75–0.95), so "How is the stock market doing?" can
score as high against the letter as a real question about it. What gives such
a question away is that an everyday question is closer still. The index keeps
the vectors of `background.txt` (everyday questions about nothing in the
seeds). How far a question's nearest background question beats its best
sentence is a feature of the answer decision (rag.decision, `offtopic`, with
a fitted ceiling), and how close they all come to the seeds is the yardstick
of `lift`.

>>> qs = background_questions()
>>> len(qs) >= 200, any("\\u4e00" <= ch <= "\\u9fff" for q in qs for ch in q)
(True, True)
>>> import numpy as np
>>> closest_background(np.eye(3)[:2], np.array([0.6, 0.8, 0.0]))
0.8
>>> closest_background(np.zeros((0, 3)), np.array([0.6, 0.8, 0.0]))
-1.0
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .folders import sha256_file

BACKGROUND = Path(__file__).with_name("background.txt")


def background_questions(path: Path | None = None) -> list[str]:
    """The everyday questions, without comments and blank lines."""
    lines = (path or BACKGROUND).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def background_sha256(path: Path | None = None) -> str:
    """What the index records, so an edited question list makes it stale."""
    return sha256_file(path or BACKGROUND)


def closest_background(vectors: np.ndarray, query: np.ndarray) -> float:
    """Cosine of the nearest background question (unit vectors); -1 with none."""
    if len(vectors) == 0:
        return -1.0
    return round(float((vectors @ query).max()), 6)
