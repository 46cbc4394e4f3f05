"""The page's documents panel: answer from one document, add one, remove one.

Owns the Gradio controls around the documents (the library side is
rag.uploads). Restricting a question to one document is always offered;
adding and removing are there only when `Settings.uploads_on` (behind
`RAG_AUTH`, or `RAG_UPLOADS=1`). An added or removed document is indexed in
the background; a timer shows how it goes, and the lists of documents follow
when the new index is in. Every failure is a sentence on the page.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from . import uploads
from .config import Settings
from .errors import RagError
from .pipeline import Pipeline

ALL = "All documents · 全部文档"
POLL_S = 1.0


@dataclass
class Controls:
    source: gr.Dropdown  # "answer from": ALL or one document


def chosen_source(value: str | None) -> str | None:
    """The pipeline's `source` for the dropdown's value (None: every document)."""
    return None if not value or value == ALL else value


def _choices(pipeline: Pipeline) -> list[str]:
    return [ALL, *pipeline.sources()]


def _status(text: str, kind: str = "") -> str:
    return f'<div class="rag-indexing {kind}">{html.escape(text)}</div>' if text else ""


def documents_panel(pipeline: Pipeline, settings: Settings) -> Controls:
    """Build the panel inside the current Blocks; wire its events."""
    source = gr.Dropdown(_choices(pipeline), value=ALL, label="Answer from 回答依据", elem_id="source")
    if not settings.uploads_on:
        return Controls(source)
    rebuilder = uploads.rebuilder_for(pipeline, settings)
    with gr.Accordion("Documents 文档", open=False, elem_id="documents"):
        upload = gr.UploadButton(
            f"Add a document 添加文档 (PDF, Word, web page, text; ≤ {settings.upload_max_mb:g} MB)",
            file_types=list(uploads.SUFFIXES),
            type="filepath",
            elem_id="upload",
        )
        with gr.Row():
            doomed = gr.Dropdown(pipeline.sources(), label="Remove a document 删除文档", elem_id="remove-choice")
            remove = gr.Button("Remove 删除", variant="stop", elem_id="remove")
        status = gr.HTML(_status(rebuilder.status), elem_id="indexing")
    timer = gr.Timer(POLL_S, active=False)

    def added(path: str | None):
        if not path:
            return _status("No file was received.", "rag-error"), gr.skip()
        try:
            data = uploads.read_upload(Path(path), settings.upload_max_mb)
            saved = uploads.save(settings.seeds_dir, Path(path).name, data, settings.upload_max_mb)
        except RagError as e:
            return _status(str(e), "rag-error"), gr.skip()
        renamed = " (a document of that name exists, so it was renamed)" if saved.renamed else ""
        rebuilder.start(f"added {saved.path.name}{renamed}")
        return _status(rebuilder.status), gr.Timer(active=True)

    def removed(name: str | None):
        try:
            gone = uploads.remove(settings.seeds_dir, name or "", pipeline.sources())
        except RagError as e:
            return _status(str(e), "rag-error"), gr.skip()
        rebuilder.start(f"removed {gone.name}")
        return _status(rebuilder.status), gr.Timer(active=True)

    def tick():
        if rebuilder.busy:
            return _status(rebuilder.status), gr.skip(), gr.skip(), gr.skip()
        pipeline.refresh()  # the new index, if the build swapped one in
        names = pipeline.sources()
        kind = "rag-error" if rebuilder.status.startswith("Indexing failed") else "rag-done"
        lists = (gr.Dropdown(choices=[ALL, *names]), gr.Dropdown(choices=names, value=None))
        return _status(rebuilder.status, kind), *lists, gr.Timer(active=False)

    upload.upload(added, upload, [status, timer], api_visibility="private")
    remove.click(removed, doomed, [status, timer], api_visibility="private")
    timer.tick(tick, None, [status, source, doomed, timer], api_visibility="private")
    return Controls(source)
