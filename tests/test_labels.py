"""Concept labelling without the store: exemplar grids, answer parsing, and the chat-completions client
against a real HTTP server on 127.0.0.1 that records requests and returns canned answers."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from neurflow_graph.cli.labels import label
from neurflow_graph.errors import ConfigError
from neurflow_graph.labels import (
    AnswerError,
    ChatClient,
    LLMError,
    LLMSettings,
    RetryPolicy,
    exemplar_grid,
    grid_size,
    label_messages,
    parse_label,
    parse_relation,
    relation_messages,
)
from neurflow_graph.labels.grid import GAP_COLOUR, png_bytes

KEY = "sk-test-SECRET-7f3a9c2e5b1d"
LLM_ENV = (
    "NEURFLOW_LLM_BASE_URL", "NEURFLOW_LLM_MODEL", "NEURFLOW_LLM_API_KEY", "NEURFLOW_LLM_TIMEOUT",
    "NEURFLOW_LLM_MAX_TRIES", "NEURFLOW_LLM_RETRY_DELAY", "NEURFLOW_LLM_MAX_RETRY_DELAY",
    "NEURFLOW_LLM_TEMPERATURE", "NEURFLOW_LLM_MAX_TOKENS",
)

Reply = tuple[int, dict[str, str], bytes]


def completion(content: str, model: str = "fake-vlm") -> bytes:
    """A chat-completions response body whose first choice says `content`."""
    return json.dumps({
        "id": "chatcmpl-1", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }).encode()


def ok(content: str) -> Reply:
    return 200, {}, completion(content)


def label_answer(label: str, description: str = "Bright curved strokes on a dark ground.") -> str:
    return json.dumps({"common_features": ["curved strokes"], "label": label, "description": description})


class FakeChatServer:
    """An OpenAI-compatible `POST /v1/chat/completions` on 127.0.0.1: records each request, answers from
    `replies` (a queue) and, once it is empty, with a valid answer numbered by request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[Reply] = []
        self.default: Callable[[int, dict[str, Any]], Reply] = self._answer
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                with server._lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    index = len(server.requests) - 1
                    reply = server.replies.pop(0) if server.replies else None
                if self.path != "/v1/chat/completions":
                    reply = (404, {}, b'{"error": {"message": "no such route"}}')
                status, headers, payload = reply or server.default(index, body)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _answer(self, index: int, body: dict[str, Any]) -> Reply:
        if "Group 2" in prompt_text(body):
            return ok(json.dumps({"group1_features": ["loop"], "group2_features": ["arc"], "matches": ["arc -> loop"],
                                  "relation": f"The arcs close into the loop ({index})."}))
        return ok(label_answer(f"curved strokes {index}"))

    def __enter__(self) -> FakeChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def prompt_text(body: dict[str, Any]) -> str:
    """All text of a request's messages."""
    texts = []
    for message in body["messages"]:
        content = message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts += [p["text"] for p in parts if p["type"] == "text"]
    return "\n".join(texts)


def request_images(body: dict[str, Any]) -> list[Image.Image]:
    """The images attached to a request, decoded from their data URIs (which must be PNG)."""
    images = []
    for message in body["messages"]:
        if isinstance(message["content"], str):
            continue
        for part in message["content"]:
            if part["type"] == "image_url":
                url = part["image_url"]["url"]
                assert url.startswith("data:image/png;base64,")
                image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
                assert image.format == "PNG"
                images.append(image)
    return images


@pytest.fixture
def fake_llm() -> Iterator[FakeChatServer]:
    with FakeChatServer() as server:
        yield server


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch, fake_llm: FakeChatServer) -> FakeChatServer:
    """The environment pointing `label` at the fake server, with a key and fast retries."""
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEURFLOW_LLM_BASE_URL", fake_llm.url)
    monkeypatch.setenv("NEURFLOW_LLM_MODEL", "fake-vlm")
    monkeypatch.setenv("NEURFLOW_LLM_API_KEY", KEY)
    monkeypatch.setenv("NEURFLOW_LLM_MAX_TRIES", "3")
    monkeypatch.setenv("NEURFLOW_LLM_RETRY_DELAY", "0.01")
    return fake_llm


def settings(url: str, key: str | None = KEY, tries: int = 4) -> LLMSettings:
    return LLMSettings(url, "fake-vlm", api_key=key, timeout=5.0,
                       retry=RetryPolicy(max_tries=tries, initial_delay=0.5, max_delay=10.0))


def grid_png(n: int = 8) -> bytes:
    tiles = [Image.new("L", (96, 96), 40 * i % 255) for i in range(n)]
    return png_bytes(exemplar_grid(tiles))


# -- grids --------------------------------------------------------------------------------------------


def test_grid_size_is_four_columns_of_96px_tiles_with_4px_gaps():
    assert grid_size(8) == (4 * 96 + 3 * 4, 2 * 96 + 4)
    assert grid_size(5) == grid_size(8)
    assert grid_size(1) == (96, 96)
    assert grid_size(3) == (3 * 96 + 2 * 4, 96)
    with pytest.raises(ConfigError, match="at least one tile"):
        grid_size(0)


def test_exemplar_grid_tiles_the_bundle_thumbnails_best_first(digits_bundle_dir):
    thumbs = sorted((digits_bundle_dir / "thumbnails").glob("p*.png"))[:6]
    grid = exemplar_grid(thumbs)
    assert grid.mode == "RGB" and grid.size == grid_size(6)
    first = Image.open(thumbs[0]).convert("RGB")
    fifth = Image.open(thumbs[4]).convert("RGB")
    assert grid.crop((0, 0, 96, 96)).tobytes() == first.tobytes()
    assert grid.crop((0, 100, 96, 196)).tobytes() == fifth.tobytes()  # second row
    assert grid.getpixel((97, 10)) == GAP_COLOUR


# -- answers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    '{"common_features": ["a"], "label": "vertical strokes", "description": "Bright vertical strokes."}',
    '```json\n{"label": "vertical strokes", "description": "Bright vertical strokes."}\n```',
    'Step 1: the patches share strokes.\nAnswer: {"label": "vertical strokes.", "description": '
    '"Bright  vertical\\n strokes."} Hope this helps {not json}',
])
def test_parse_label_accepts_bare_fenced_and_embedded_json(text):
    answer = parse_label(text)
    assert answer.label == "vertical strokes"
    assert answer.description == "Bright vertical strokes."


@pytest.mark.parametrize("text, message", [
    ("The patches show curved strokes.", "not the JSON object"),
    ("", "empty"),
    ('{"description": "Curves."}', 'no non-empty "label"'),
    ('{"label": "curves", "description": ""}', 'no non-empty "description"'),
    ('{"label": ["curves"], "description": "Curves."}', 'no non-empty "label"'),
    (json.dumps({"label": "curves " * 20, "description": "x"}), "characters long"),
])
def test_parse_label_rejects_malformed_answers_with_a_clear_message(text, message):
    with pytest.raises(AnswerError, match=message):
        parse_label(text)


def test_parse_relation_reads_the_relation_and_rejects_its_absence():
    answer = parse_relation('{"matches": ["arc -> loop"], "relation": "The arcs close into a loop."}')
    assert answer.relation == "The arcs close into a loop." and answer.matches == ("arc -> loop",)
    with pytest.raises(AnswerError, match='"relation"'):
        parse_relation('{"label": "loop", "description": "A loop."}')


# -- the client against a real local HTTP server -------------------------------------------------------


def test_client_posts_model_prompt_image_and_key(fake_llm):
    client = ChatClient(settings(fake_llm.url))
    text = client.complete(label_messages(grid_png(8), 8))
    assert parse_label(text).label == "curved strokes 0"
    (request,) = fake_llm.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "fake-vlm" and body["temperature"] == 0.0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "Step by step" in prompt_text(body) and '"label"' in prompt_text(body)
    (image,) = request_images(body)
    assert image.size == grid_size(8)


def test_relation_request_sends_parent_then_child_grid(fake_llm):
    ChatClient(settings(fake_llm.url)).complete(relation_messages(grid_png(8), grid_png(3)))
    images = request_images(fake_llm.requests[0]["body"])
    assert [i.size for i in images] == [grid_size(8), grid_size(3)]
    assert "Group 1" in prompt_text(fake_llm.requests[0]["body"])


def test_no_key_means_no_authorization_header(fake_llm):
    ChatClient(settings(fake_llm.url, key=None)).complete(label_messages(grid_png(2), 2))
    assert "Authorization" not in fake_llm.requests[0]["headers"]


def test_429_honours_retry_after_and_500_backs_off_then_success(fake_llm, caplog):
    fake_llm.replies = [(429, {"Retry-After": "3"}, b'{"error": {"message": "rate limited"}}'),
                        (500, {}, b"oops")]
    waits: list[float] = []
    with caplog.at_level(logging.DEBUG):
        text = ChatClient(settings(fake_llm.url), sleep=waits.append).complete(label_messages(grid_png(1), 1))
    assert parse_label(text).label == "curved strokes 2"
    assert len(fake_llm.requests) == 3
    assert waits == [3.0, 1.0]  # Retry-After, then initial_delay * 2**1
    assert "HTTP 429" in caplog.text and "HTTP 500" in caplog.text and KEY not in caplog.text


def test_retry_waits_are_bounded():
    policy = RetryPolicy(max_tries=6, initial_delay=1.0, max_delay=5.0)
    assert [policy.delay(i) for i in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(0, retry_after=120.0) == 5.0
    with pytest.raises(ConfigError, match="max_tries"):
        RetryPolicy(max_tries=0)


def test_persistent_5xx_gives_up_after_max_tries_without_leaking_the_key(fake_llm):
    echo = json.dumps({"error": {"message": f"upstream failed for key {KEY}"}}).encode()
    fake_llm.replies = [(503, {}, echo)] * 3
    waits: list[float] = []
    with pytest.raises(LLMError, match="gave up after 3 tries") as info:
        ChatClient(settings(fake_llm.url, tries=3), sleep=waits.append).complete(label_messages(grid_png(1), 1))
    assert len(fake_llm.requests) == 3 and waits == [0.5, 1.0]
    assert not info.value.fatal and KEY not in str(info.value) and "***" in str(info.value)


def test_401_is_not_retried_is_fatal_and_redacts_the_key(fake_llm):
    echo = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}}).encode()
    fake_llm.replies = [(401, {}, echo)]
    with pytest.raises(LLMError, match="HTTP 401.*NEURFLOW_LLM_API_KEY") as info:
        ChatClient(settings(fake_llm.url), sleep=lambda s: None).complete(label_messages(grid_png(1), 1))
    assert info.value.fatal and len(fake_llm.requests) == 1
    assert KEY not in str(info.value) and info.value.__suppress_context__  # no chained urllib error to print


def test_redirects_are_not_followed_so_the_key_goes_nowhere_else(fake_llm):
    fake_llm.replies = [(307, {"Location": "http://other.example/v1/chat/completions"}, b"")]
    with pytest.raises(LLMError, match="redirects to http://other.example.*not followed") as info:
        ChatClient(settings(fake_llm.url)).complete(label_messages(grid_png(1), 1))
    assert info.value.fatal and len(fake_llm.requests) == 1


def test_connection_refused_is_retried_then_fatal():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    waits: list[float] = []
    with pytest.raises(LLMError, match="no answer.*gave up after 3 tries") as info:
        ChatClient(settings(f"http://127.0.0.1:{port}/v1", tries=3), sleep=waits.append).complete(
            label_messages(grid_png(1), 1))
    assert info.value.fatal and len(waits) == 2 and KEY not in str(info.value)


def test_malformed_completion_payloads_are_answer_errors(fake_llm):
    fake_llm.replies = [(200, {}, b'{"choices": []}'), (200, {}, completion("")), (200, {}, b"<html>")]
    client = ChatClient(settings(fake_llm.url))
    with pytest.raises(AnswerError, match="no choices"):
        client.complete(label_messages(grid_png(1), 1))
    with pytest.raises(AnswerError, match="no text"):
        client.complete(label_messages(grid_png(1), 1))
    with pytest.raises(LLMError, match="other than JSON"):
        client.complete(label_messages(grid_png(1), 1))


# -- settings and the command without an endpoint -----------------------------------------------------


def test_settings_from_env_hide_the_key_and_name_bad_variables():
    assert LLMSettings.from_env({}) is None
    env = {"NEURFLOW_LLM_BASE_URL": "http://127.0.0.1:8000/v1/", "NEURFLOW_LLM_MODEL": "qwen2-vl",
           "NEURFLOW_LLM_API_KEY": KEY, "NEURFLOW_LLM_MAX_TRIES": "2", "NEURFLOW_LLM_TEMPERATURE": "none"}
    found = LLMSettings.from_env(env)
    assert found is not None and found.endpoint == "http://127.0.0.1:8000/v1/chat/completions"
    assert found.retry.max_tries == 2 and found.temperature is None and found.api_key == KEY
    assert KEY not in repr(found) and KEY not in repr(ChatClient(found))
    with pytest.raises(ConfigError, match="NEURFLOW_LLM_MODEL"):
        LLMSettings.from_env({"NEURFLOW_LLM_BASE_URL": "http://127.0.0.1:8000/v1"})
    with pytest.raises(ConfigError, match="NEURFLOW_LLM_MAX_TRIES must be an integer, got 'many'"):
        LLMSettings.from_env({**env, "NEURFLOW_LLM_MAX_TRIES": "many"})
    with pytest.raises(ConfigError, match="must be an http"):
        LLMSettings.from_env({**env, "NEURFLOW_LLM_BASE_URL": "127.0.0.1:8000"})
    with_user = LLMSettings("https://user:pw@llm.example/v1?token=x", "m")
    assert with_user.safe_endpoint == "https://llm.example/v1/chat/completions"


def test_label_without_an_endpoint_says_how_to_configure_one(monkeypatch):
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(label, ["3"])
    assert result.exit_code == 1
    for needed in ("NEURFLOW_LLM_BASE_URL", "NEURFLOW_LLM_MODEL", "NEURFLOW_LLM_API_KEY", "--dry-run"):
        assert needed in result.output
    assert result.output.count("\n") == 1


def test_label_options_are_documented():
    result = CliRunner().invoke(label, ["--help"])
    assert result.exit_code == 0
    for option in ("--layers", "--run", "--force", "--dry-run", "--max-relations", "--bundle", "--data-dir"):
        assert option in result.output
