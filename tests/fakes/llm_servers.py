"""Fake DeepSeek and Anthropic HTTP servers on 127.0.0.1, for testing the real SDKs end to end.

Point a provider's `base_url` at `server.url`, queue what the next requests get, then inspect `server.requests`:

    deepseek_server.queue(answer({"action": "HOLD", ...}), rate_limited(retry_after=3))
    ... provider calls ...
    assert deepseek_server.requests[0].body["tool_choice"] == ...

Each request takes the next queued scenario; with none queued it gets a 500 naming the problem. Scenarios are
protocol-neutral and rendered in each API's wire format, shaped by what the request asked for (a tool call, or
Anthropic Structured Outputs in a text block). `hang()` holds the response until `server.release()` (or the
server closes), for client-timeout tests without sleeps.

Fixtures `deepseek_server` and `anthropic_server`: import `deepseek_server_fixture` / `anthropic_server_fixture`
into a test module (`# noqa: F401`), then take `deepseek_server` / `anthropic_server` as test arguments.
"""

import json
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

import pytest

# A hung request gives up on its own after this long, so a test that forgets to release cannot wedge the run.
HANG_LIMIT_SECONDS = 10.0
WRONG_TYPES_ARGUMENTS = {
    "action": "BUY",
    "confidence": "very high",
    "entry_price": "cheap",
    "stop_loss": None,
    "take_profit": None,
    "horizon_bars": "a while",
    "reasoning": 42,
    "key_factors": "rsi",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or the raw text when the body was not JSON


@dataclass(frozen=True)
class Scenario:
    kind: str
    arguments: Any = None
    text: str = ""
    status: int = 200
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    without_usage: bool = False  # send no usage object at all
    more_arguments: tuple[Any, ...] = ()  # further tool calls in the same answer


def answer(arguments: Any, *, usage: dict[str, Any] | None = None, without_usage: bool = False) -> Scenario:
    """A valid answer: a tool call, or (Anthropic Structured Outputs) a JSON text block, with these arguments."""
    return Scenario("answer", arguments=arguments, usage=usage, without_usage=without_usage)


def several_calls(*arguments: Any) -> Scenario:
    """One answer holding several tool calls (tool_calls entries / tool_use blocks), one per argument object."""
    return Scenario("answer", arguments=arguments[0], more_arguments=tuple(arguments[1:]))


def wrong_types() -> Scenario:
    """Well-formed JSON whose values have the wrong types: only semantic validation can catch it."""
    return answer(WRONG_TYPES_ARGUMENTS)


def malformed_arguments(text: str = '{"action": "BUY", "confidence": ') -> Scenario:
    """Tool arguments (or the structured-output text) that are not valid JSON, as when output is cut off."""
    return Scenario("raw_arguments", text=text)


def prose(text: str = "I would buy here, the trend looks strong.") -> Scenario:
    """A plain-text answer with no tool call."""
    return Scenario("prose", text=text)


def empty() -> Scenario:
    return Scenario("empty")


def refusal() -> Scenario:
    """Anthropic's safety classifiers declining the request (stop_reason "refusal")."""
    return Scenario("refusal")


def not_json() -> Scenario:
    """A 200 whose body is not JSON, as from a misconfigured proxy."""
    return Scenario("not_json", text="<html><body>Bad gateway</body></html>")


def hang() -> Scenario:
    """Hold the response until `server.release()`: the client's timeout fires first."""
    return Scenario("hang")


def error(status: int, message: str = "", *, retry_after: int | None = None) -> Scenario:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    return Scenario("error", status=status, message=message or f"fake error {status}", headers=headers)


def rate_limited(retry_after: int = 7) -> Scenario:
    return error(429, "Rate limit reached for requests", retry_after=retry_after)


def server_error() -> Scenario:
    return error(500, "Internal server error")


def overloaded() -> Scenario:
    return error(529, "Overloaded")


def unauthorized(message: str = "invalid x-api-key") -> Scenario:
    return error(401, message)


def bad_request(message: str = "invalid request") -> Scenario:
    return error(400, message)


def deepseek_usage(*, hit: int, miss: int, completion: int, reasoning: int = 0) -> dict[str, Any]:
    """A DeepSeek usage object: the cache split adds up to prompt_tokens; reasoning is part of completion."""
    return {
        "prompt_tokens": hit + miss,
        "completion_tokens": completion,
        "total_tokens": hit + miss + completion,
        "prompt_tokens_details": {"cached_tokens": hit},
        "prompt_cache_hit_tokens": hit,
        "prompt_cache_miss_tokens": miss,
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def anthropic_usage(
    *, uncached: int, cache_write: int, cache_read: int, output: int, thinking: int | None = None
) -> dict[str, Any]:
    """An Anthropic usage object: `input_tokens` counts only the uncached input."""
    usage: dict[str, Any] = {
        "input_tokens": uncached,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": output,
    }
    if thinking is not None:
        usage["output_tokens_details"] = {"thinking_tokens": thinking}
    return usage


class FakeLLMServer:
    """The HTTP plumbing; subclasses render scenarios in their API's wire format."""

    paths: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._scenarios: deque[Scenario] = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        # A short poll keeps shutdown (and so each fixture teardown) fast; the default waits up to 0.5 s.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def queue(self, *scenarios: Scenario) -> None:
        with self._lock:
            self._scenarios.extend(scenarios)

    def release(self) -> None:
        self._released.set()

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def respond(self, request: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        known_path = request.path in self.paths
        with self._lock:
            self.requests.append(request)
            scenario = self._scenarios.popleft() if self._scenarios and known_path else None
        if not known_path:
            return self.render_error(error(404, f"fake server has no route {request.method} {request.path}"))
        if scenario is None:
            return self.render_error(error(500, "fake server: no scenario queued for this request"))
        if scenario.kind == "hang":
            self._released.wait(HANG_LIMIT_SECONDS)
            return self.render_error(error(500, "released after hanging"))
        if scenario.kind == "error":
            return self.render_error(scenario)
        if scenario.kind == "not_json":
            return 200, {"content-type": "application/json"}, scenario.text.encode()
        return 200, {"content-type": "application/json"}, json.dumps(self.render(scenario, request)).encode()

    def render(self, scenario: Scenario, request: RecordedRequest) -> dict[str, Any]:
        raise NotImplementedError

    def render_error(self, scenario: Scenario) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError


class FakeDeepSeekServer(FakeLLMServer):
    """OpenAI chat-completions wire format with DeepSeek's usage extras; /beta serves strict tools."""

    paths = frozenset({"/chat/completions", "/beta/chat/completions"})
    ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}

    def render(self, scenario: Scenario, request: RecordedRequest) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": ""}
        finish_reason = "stop"
        if scenario.kind in ("answer", "raw_arguments"):
            first = scenario.text if scenario.kind == "raw_arguments" else json.dumps(scenario.arguments)
            every = [first, *(json.dumps(more) for more in scenario.more_arguments)]
            name = _deepseek_tool_name(request.body)
            message["tool_calls"] = [
                {"index": i, "id": f"call_fake_{i}", "type": "function", "function": {"name": name, "arguments": text}}
                for i, text in enumerate(every)
            ]
            finish_reason = "tool_calls"
        elif scenario.kind == "prose":
            message["content"] = scenario.text
        elif scenario.kind == "refusal":
            finish_reason = "content_filter"
        body: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_763_700_000,
            "model": request.body.get("model"),
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": scenario.usage or deepseek_usage(hit=1024, miss=176, completion=85),
        }
        if scenario.without_usage:
            del body["usage"]
        return body

    def render_error(self, scenario: Scenario) -> tuple[int, dict[str, str], bytes]:
        error_type = self.ERROR_TYPES.get(scenario.status, "server_error" if scenario.status >= 500 else "api_error")
        body = {"error": {"message": scenario.message, "type": error_type, "param": None, "code": error_type}}
        return scenario.status, {"content-type": "application/json", **scenario.headers}, json.dumps(body).encode()


class FakeAnthropicServer(FakeLLMServer):
    """Anthropic Messages wire format: tool_use blocks, JSON text blocks for Structured Outputs, cache usage."""

    paths = frozenset({"/v1/messages"})
    ERROR_TYPES = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }

    def render(self, scenario: Scenario, request: RecordedRequest) -> dict[str, Any]:
        structured = "format" in (request.body.get("output_config") or {})
        content: list[dict[str, Any]] = []
        stop_reason = "end_turn"
        if scenario.kind in ("answer", "raw_arguments"):
            payload = scenario.text if scenario.kind == "raw_arguments" else scenario.arguments
            if structured:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                content.append({"type": "text", "text": text})
            else:
                name = request.body["tool_choice"].get("name") or request.body["tools"][0]["name"]
                for i, each in enumerate([payload, *scenario.more_arguments]):
                    content.append({"type": "tool_use", "id": f"toolu_fake_{i}", "name": name, "input": each})
                stop_reason = "tool_use"
        elif scenario.kind == "prose":
            content.append({"type": "text", "text": scenario.text})
        elif scenario.kind == "refusal":
            stop_reason = "refusal"
        body: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": request.body.get("model"),
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": scenario.usage or anthropic_usage(uncached=180, cache_write=0, cache_read=2100, output=90),
        }
        if scenario.without_usage:
            del body["usage"]
        return body

    def render_error(self, scenario: Scenario) -> tuple[int, dict[str, str], bytes]:
        error_type = self.ERROR_TYPES.get(scenario.status, "api_error")
        body = {"type": "error", "error": {"type": error_type, "message": scenario.message}, "request_id": "req_fake"}
        headers = {"content-type": "application/json", "request-id": "req_fake", **scenario.headers}
        return scenario.status, headers, json.dumps(body).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeLLMServer


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        request = RecordedRequest(
            method="POST",
            path=urlsplit(self.path).path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        assert isinstance(self.server, _Server)
        status, headers, payload = self.server.fake.respond(request)
        try:
            self.send_response(status)
            for name, value in {**headers, "content-length": str(len(payload))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nobody is left to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; requests are recorded on the server instead


def _deepseek_tool_name(body: dict[str, Any]) -> str:
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return choice["function"]["name"]
    return body["tools"][0]["function"]["name"]


def unreachable_url() -> str:
    """A 127.0.0.1 URL where nothing listens, for connection-error tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(name="deepseek_server")
def deepseek_server_fixture() -> Iterator[FakeDeepSeekServer]:
    with FakeDeepSeekServer() as server:
        yield server


@pytest.fixture(name="anthropic_server")
def anthropic_server_fixture() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server
