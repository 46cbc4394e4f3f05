"""Run the chat in the browser: `python app.py`, then open http://127.0.0.1:7860.

Settings come from `RAG_*` variables (RAG_HOST, RAG_PORT, RAG_AUTH=user:password,
RAG_EMBEDDER, ...). The index is checked first and built when missing or stale,
with progress here in the terminal; the page itself is `rag.ui.build_app`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def port_taken(host: str, port: int) -> str:
    """Why the port cannot be served on, or ""; checked before the slow model load."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: a just-stopped app's port is free
        try:
            s.bind((host, port))
        except OSError as e:
            return e.strerror or str(e)
    return ""


def main() -> int:
    t0 = time.perf_counter()
    from rag.config import Settings
    from rag.errors import RagError

    try:
        settings = Settings.from_env()
        from rag.ui import build_app, launch_options  # launch_options checks RAG_AUTH before the slow load

        options = launch_options(settings)
        if why := port_taken(settings.host, settings.port):
            say(f"error: cannot serve on {settings.host}:{settings.port}: {why}. Set RAG_PORT to a free port.")
            return 1
        from rag.indexing import index_location
        from rag.pipeline import Pipeline

        say(f"Loading the {settings.embedder} model and checking the index in {index_location(settings)} ...")
        pipeline = Pipeline.load(settings, say=say)
        info = pipeline.describe()
        say(f"Index ready: {info['documents']} documents, {info['chunks']} chunks, {info['model']}")
        pipeline.warm_up()  # the first answer loads word lists (~1 s) a person would wait for
        demo = build_app(pipeline, settings)
    except RagError as e:
        say(f"error: {e}" + (f"\n{e.hint}" if e.hint else ""))
        return e.exit_code
    try:
        demo.launch(**options, prevent_thread_lock=True)
    except OSError as e:  # e.g. the port is taken
        say(f"error: cannot serve on {settings.host}:{settings.port}: {e}\nSet RAG_PORT to a free port.")
        return 1
    say(f"Ready in {time.perf_counter() - t0:.1f} s: open http://{settings.host}:{settings.port}  (Ctrl-C stops)")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a person stops it
        demo.block_thread()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # an offline tool does not phone home
    sys.exit(main())
