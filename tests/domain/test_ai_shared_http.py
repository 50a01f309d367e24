"""One httpx client per provider SDK and process (ai.providers.shared_http), shared by every provider instance:
each call still carries its own key, the SDK's timeouts and our no-retry setting stay, and no cookie is shared.
The real SDKs talk to the loopback fakes; the cookie check talks to an httpx2 mock transport."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx2
import openai
import pytest

from ai.models import default_model
from ai.providers import claude, deepseek
from ai.providers.base import SignalRequest
from ai.providers.claude import ClaudeProvider
from ai.providers.deepseek import DeepSeekProvider
from ai.providers.shared_http import SharedHttpClient
from ai.signal import Signal
from tests.fakes.llm_servers import (
    FakeAnthropicServer,
    FakeDeepSeekServer,
    answer,
    anthropic_server_fixture,  # noqa: F401 - pytest fixture
    deepseek_server_fixture,  # noqa: F401 - pytest fixture
)

HOLD = {
    "action": "HOLD",
    "confidence": 40,
    "entry_price": None,
    "stop_loss": None,
    "take_profit": None,
    "horizon_bars": 1,
    "reasoning": "No edge.",
    "key_factors": ["rsi"],
}
USERS = 8


def signal_request(model: str, user_prompt: str) -> SignalRequest:
    return SignalRequest(
        model=model,
        system_prompt="Static instructions.",
        user_prompt=user_prompt,
        schema=Signal.tool_schema(),
        tool_name="trading_signal",
        tool_description="Record one trading signal.",
        max_output_tokens=400,
        timeout_seconds=5.0,
    )


def test_deepseek_providers_share_one_http_client_yet_each_call_carries_its_own_key(
    deepseek_server: FakeDeepSeekServer,
):
    deepseek_server.queue(*[answer(HOLD)] * USERS)

    def call(user: int) -> DeepSeekProvider:
        provider = DeepSeekProvider(f"sk-user-{user}", deepseek_server.url)
        response = provider.complete(signal_request("deepseek-flash", f"user {user}"))
        assert response.arguments == HOLD
        return provider

    with ThreadPoolExecutor(max_workers=USERS) as pool:
        providers = list(pool.map(call, range(USERS)))

    assert len({id(provider._http_client) for provider in providers}) == 1
    assert providers[0]._http_client is deepseek.SHARED_HTTP_CLIENT.get()
    sent = {sent.body["messages"][1]["content"]: sent.headers["authorization"] for sent in deepseek_server.requests}
    assert sent == {f"user {user}": f"Bearer sk-user-{user}" for user in range(USERS)}


def test_claude_providers_share_one_http_client_yet_each_call_carries_its_own_key(
    anthropic_server: FakeAnthropicServer,
):
    anthropic_server.queue(*[answer(HOLD)] * USERS)
    model = default_model("claude")

    def call(user: int) -> ClaudeProvider:
        provider = ClaudeProvider(f"sk-ant-user-{user}", anthropic_server.url)
        response = provider.complete(signal_request(model, f"user {user}"))
        assert response.arguments == HOLD
        return provider

    with ThreadPoolExecutor(max_workers=USERS) as pool:
        providers = list(pool.map(call, range(USERS)))

    assert len({id(provider._client._client) for provider in providers}) == 1
    assert providers[0]._client._client is claude.SHARED_HTTP_CLIENT.get()
    sent = {sent.body["messages"][0]["content"]: sent.headers["authorization"] for sent in anthropic_server.requests}
    assert sent == {f"user {user}": f"Bearer sk-ant-user-{user}" for user in range(USERS)}


def test_the_sdk_clients_keep_their_own_timeouts_and_no_retries():
    deepseek_client = DeepSeekProvider("sk-a", "http://127.0.0.1:9")._client("http://127.0.0.1:9")
    claude_client = ClaudeProvider("sk-b", "http://127.0.0.1:9")._client
    # What each SDK client had when it built its own httpx client: the SDK's default timeout, and retries left to us.
    assert deepseek_client.timeout == openai.OpenAI(api_key="sk-a", max_retries=0).timeout
    assert claude_client.timeout == anthropic.Anthropic(api_key="sk-b", max_retries=0).timeout
    assert deepseek_client.max_retries == 0 and claude_client.max_retries == 0


def test_an_explicit_http_client_wins_over_the_shared_one():
    with httpx2.Client() as own:
        assert DeepSeekProvider("sk-a", "http://127.0.0.1:9", http_client=own)._http_client is own
        assert ClaudeProvider("sk-b", "http://127.0.0.1:9", http_client=own)._client._client is own


def test_the_shared_client_keeps_no_cookie_between_users():
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(
            200,
            headers={"set-cookie": "session=first-users; Path=/"},
            json={"id": "x", "object": "list", "data": []},
        )

    shared = SharedHttpClient(
        lambda **options: openai.DefaultHttpxClient(transport=httpx2.MockTransport(handler), **options)
    )
    for key in ("sk-first", "sk-second"):
        openai.OpenAI(
            api_key=key, base_url="https://llm.example", max_retries=0, http_client=shared.get()
        ).models.list()

    assert [request.headers["authorization"] for request in seen] == ["Bearer sk-first", "Bearer sk-second"]
    assert "cookie" not in seen[1].headers
    assert len(shared.get().cookies) == 0


def test_the_shared_client_is_built_once_across_threads_and_again_when_closed_or_in_a_forked_child(monkeypatch):
    built: list[httpx2.Client] = []
    gate = threading.Barrier(USERS)

    def build(**options: object) -> httpx2.Client:
        client = httpx2.Client(**options)  # type: ignore[arg-type]
        built.append(client)
        return client

    shared = SharedHttpClient(build)

    def get(_: int) -> httpx2.Client:
        gate.wait()
        return shared.get()

    with ThreadPoolExecutor(max_workers=USERS) as pool:
        clients = set(pool.map(get, range(USERS)))
    assert clients == {built[0]} and len(built) == 1

    built[0].close()
    assert shared.get() is built[1]

    parent = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: parent + 1)
    assert shared.get() is built[2]
    assert shared.get() is built[2]
    for client in built:
        client.close()


@pytest.mark.parametrize("module", [deepseek, claude])
def test_each_sdk_has_a_shared_client_of_its_own_defaults(module):
    client = module.SHARED_HTTP_CLIENT.get()
    sdk = openai if module is deepseek else anthropic
    assert isinstance(client, sdk.DefaultHttpxClient)
    assert client is module.SHARED_HTTP_CLIENT.get()
