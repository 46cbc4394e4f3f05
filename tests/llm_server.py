"""A scripted OpenAI-compatible chat server on loopback, for the generation tests.

It implements `POST /v1/chat/completions`, plain and streamed (server-sent
events, as OpenAI, Ollama, llama.cpp and vLLM send them), answers every request
with the current `Reply`, and records each request body so a test can check
the prompt that was actually sent. It binds 127.0.0.1 on a free port and is
stopped by whoever started it (the `llm` fixture in tests/test_generate.py).

    with ScriptedLLM() as server:
        server.reply = Reply("他离开是为了写诗[1]。")
        ...  # point RAG_LLM_BASE_URL at server.url
        server.requests[-1]["messages"]
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    text: str | Callable[[dict], str] = ""  # or made from the request body (e.g. to cite a passage by its content)
    status: int = 200
    delay_s: float = 0.0  # before anything is sent
    raw: bytes | None = None  # sent as the body instead of a well-formed completion
    piece_chars: int = 3  # characters per streamed chunk
    piece_delay_s: float = 0.0  # between streamed chunks
    # Set: after the first streamed piece the server waits (at most 10 s) for the client
    # to set it, so a test can show the first words arrived while the rest was held back.
    hold: threading.Event | None = None

    def content(self, request: dict) -> str:
        return self.text(request) if callable(self.text) else self.text


class ScriptedLLM:
    def __init__(self) -> None:
        self.reply = Reply("")
        self.requests: list[dict] = []
        self.released: list[bool] = []  # per held stream: did the client release it (not the 10 s cap)?
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> ScriptedLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # cuts short a scripted delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def completion(text: str, model: str) -> dict:
    message = {"role": "assistant", "content": text}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage,
    }  # fmt: skip


def chunk(delta: dict, model: str, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }  # fmt: skip
    return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"


def _handler(server: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # keep the test output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._send(404, b'{"error": {"message": "no such route"}}')
            server.requests.append(body)
            reply = server.reply
            server.wait(reply.delay_s)
            model = body.get("model", "")
            try:
                if reply.status != 200:
                    error = {"error": {"message": f"scripted failure {reply.status}", "type": "server_error"}}
                    self._send(reply.status, json.dumps(error).encode())
                elif body.get("stream"):
                    self._stream(reply, reply.content(body), model)
                else:
                    plain = json.dumps(completion(reply.content(body), model)).encode()
                    self._send(200, plain if reply.raw is None else reply.raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): exactly what some tests want

        def _send(self, status: int, data: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, reply: Reply, text: str, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()  # HTTP/1.0: the body ends when the connection closes
            if reply.raw is not None:
                self.wfile.write(reply.raw)
                return
            self.wfile.write(chunk({"role": "assistant", "content": ""}, model))
            size = reply.piece_chars
            for i in range(0, len(text), size):
                self.wfile.write(chunk({"content": text[i : i + size]}, model))
                self.wfile.flush()
                if i == 0 and reply.hold is not None:
                    server.released.append(reply.hold.wait(10))
                server.wait(reply.piece_delay_s)
            self.wfile.write(chunk({}, model, finish="stop") + b"data: [DONE]\n\n")

    return Handler
