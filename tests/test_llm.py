"""The LLM backend against a real local HTTP server replaying canned replies, and a tiny local model."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from infsplign_scene import parse
from infsplign_scene.parsing.llm import LLMError, OpenAIClient, TransformersClient, parse_llm

TEXT = "a red circle to the left of a blue square"
GOOD = {
    "objects": [{"id": "circle", "name": "red circle"}, {"id": "square", "name": "blue square"}],
    "relations": [{"subject": "circle", "predicate": "left_of", "object": "square"}],
}


class Replay:
    """A chat-completions server on 127.0.0.1 that answers from a queue and records requests."""

    def __init__(self):
        self.replies: list = []
        self.requests: list[dict] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                replay.requests.append(body)
                status, content = replay.replies.pop(0)
                payload = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    replay = Replay()
    yield replay
    replay.close()


def test_valid_reply_with_prose_around_it(server):
    server.replies = [(200, "Sure! Here it is:\n```json\n" + json.dumps(GOOD) + "\n```\nHope this helps.")]
    graph = parse(TEXT, backend="llm", base_url=server.url, model="tiny")
    assert [str(r) for r in graph.relations] == ["circle left_of square"]
    assert graph.prompt == TEXT
    request = server.requests[0]
    assert request["model"] == "tiny" and request["response_format"]["type"] == "json_schema"
    assert request["messages"][-1] == {"role": "user", "content": TEXT}


def test_retry_once_with_the_error_message(server):
    wrong_ids = {**GOOD, "relations": [{"subject": "circle", "predicate": "left_of", "object": "triangle"}]}
    server.replies = [(200, json.dumps(wrong_ids)), (200, json.dumps(GOOD))]
    graph = parse_llm(TEXT, base_url=server.url)
    assert len(graph.relations) == 1
    correction = server.requests[1]["messages"][-1]["content"]
    assert "unknown object 'triangle'" in correction


@pytest.mark.parametrize(
    "bad",
    [
        "not json at all",
        "__import__('os').system('echo pwned')",
        json.dumps({"objects": [{"id": f"o{i}", "name": "red circle"} for i in range(10_000)], "relations": []}),
        json.dumps(
            {**GOOD, "objects": [{"id": "circle", "name": "green hexagon"}, {"id": "square", "name": "blue square"}]}
        ),
        "{" * 70_000,
    ],
)
def test_two_bad_replies_raise_a_typed_error(server, bad):
    server.replies = [(200, bad), (200, bad)]
    with pytest.raises(LLMError):
        parse_llm(TEXT, base_url=server.url)


def test_fallback_to_rules(server):
    server.replies = [(200, "nonsense"), (200, "still nonsense")]
    graph = parse_llm(TEXT, base_url=server.url, fallback="rules")
    assert [str(r) for r in graph.relations] == ["circle left_of square"]


def test_server_without_json_schema_support(server):
    server.replies = [(400, "response_format not supported"), (200, json.dumps(GOOD))]
    graph = parse_llm(TEXT, base_url=server.url)
    assert len(graph.relations) == 1
    assert "response_format" not in server.requests[1]


def test_unreachable_server_is_a_typed_error():
    with pytest.raises(LLMError, match="cannot reach"):
        OpenAIClient("http://127.0.0.1:9/v1", timeout=2).complete([{"role": "user", "content": "x"}], {})


def test_tiny_random_transformers_model_fails_cleanly(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from infsplign_scene.lab.shapes.model import build_tokenizer

    tokenizer = build_tokenizer()
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=2048, n_embd=16, n_layer=1, n_head=2))
    model.save_pretrained(tmp_path, safe_serialization=True)
    tokenizer.save_pretrained(tmp_path)
    client = TransformersClient(str(tmp_path), max_new_tokens=8)
    with pytest.raises(LLMError):
        parse_llm(TEXT, client=client)
    with pytest.raises(LLMError, match="cannot load"):
        TransformersClient(str(tmp_path / "missing"))


class Hostile:
    """A raw TCP server on 127.0.0.1 that reads one request and answers with given bytes,
    optionally a byte at a time with a pause (a server that drips its answer)."""

    def __init__(self, answer: bytes, pause: float = 0.0):
        import socket

        self.answer, self.pause = answer, pause
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import time

        for _ in range(2):  # the first request and the retry
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(10)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                try:
                    if self.pause:
                        for byte in self.answer:
                            connection.sendall(bytes([byte]))
                            time.sleep(self.pause)
                    else:
                        connection.sendall(self.answer)
                except OSError:
                    continue

    def close(self):
        self.listener.close()


def http_answer(body: bytes, status: str = "200 OK", headers: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 "
        + status.encode()
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n"
        + headers
        + b"\r\n"
        + body
    )


@pytest.mark.parametrize(
    "answer",
    [
        http_answer(b'{"choices": [{"message": {"content": "\xff\xfe"}}]}'),
        http_answer(b"[" * 100_000 + b"]" * 100_000),
        http_answer(b'{"choices": ' + b"9" * 5000 + b"}"),
        b"NOT-HTTP garbage\r\n\r\n",
        http_answer(b"{}", headers=b"".join(b"X-H%d: v\r\n" % i for i in range(150))),
        http_answer(b"{}", headers=b"X-Long: " + b"a" * 100_000 + b"\r\n"),
        http_answer(
            b"", status="307 Temporary Redirect", headers=b"Location: http://example.com/v1/chat/completions\r\n"
        ),
    ],
    ids=["invalid-utf8", "deep-json", "huge-integer", "bad-status-line", "150-headers", "100kB-header", "redirect"],
)
def test_every_hostile_answer_is_an_llm_error_and_rules_take_over(answer):
    server = Hostile(answer)
    try:
        with pytest.raises(LLMError):
            parse_llm(TEXT, base_url=server.url, timeout=5)
    finally:
        server.close()
    server = Hostile(answer)
    try:
        graph = parse_llm(TEXT, base_url=server.url, fallback="rules", timeout=5)
        assert [str(r) for r in graph.relations] == ["circle left_of square"]
    finally:
        server.close()


def test_a_dripping_server_is_cut_off_at_the_deadline():
    import time

    server = Hostile(http_answer(b'{"choices": [{"message": {"content": "{}"}}]}'), pause=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(LLMError, match="within 1.0 s"):
            OpenAIClient(server.url, timeout=1.0).complete([{"role": "user", "content": "x"}], {})
        assert time.monotonic() - started < 3
    finally:
        server.close()
