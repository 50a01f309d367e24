"""A local SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it is given, for Apprise's mailto://.

Fixture `smtp_server`: import `smtp_server_fixture` into a test module (`# noqa: F401`), then take `smtp_server`;
`smtp_server.mailto(to)` is an Apprise URL that delivers to it in plain SMTP.
"""

import email
import socket
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller


class _Keeper:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        with socket.socket() as probe:  # aiosmtpd checks it is up by connecting: it needs a real port, not 0
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._keeper = _Keeper()
        self._controller = Controller(self._keeper, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Message]:
        return self._keeper.messages

    def mailto(self, to: str = "me@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from=bot@example.com&to={to}"

    def text_of(self, message: Message) -> str:
        """The plain-text part, decoded."""
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode(part.get_content_charset() or "utf-8")
        return ""

    def start(self) -> "SmtpServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()
