"""Opening the lip-sync stream: a service that accepts the connection but never answers is a bounded 504."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import anyio
import pytest
from starlette.types import Receive, Scope, Send

from comps.core.errors import Timeout
from megaservice.lipsync import open_lipsync


async def never_accepts(scope: Scope, receive: Receive, send: Send) -> None:
    """An in-process animation service that takes the handshake and then hangs."""
    await receive()  # websocket.connect
    await anyio.sleep_forever()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port whose listener completes connections in the kernel and never answers (a stopped process)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.anyio
async def test_an_in_process_service_that_never_accepts_is_a_timeout_naming_the_stage() -> None:
    with anyio.fail_after(30):  # the guard of this test, not a measurement: the bound is 0.3 s
        with pytest.raises(Timeout) as raised:
            await open_lipsync(base_url="http://t", app=never_accepts, options={}, connect_timeout_s=5, timeout_s=0.3)
    assert raised.value.status == 504
    assert raised.value.code == "upstream_timeout"
    assert str(raised.value).startswith("animation: no answer within 0.3 s")


@pytest.mark.anyio
async def test_a_remote_service_that_never_answers_the_handshake_is_a_timeout(silent_port: int) -> None:
    with anyio.fail_after(30):
        with pytest.raises(Timeout) as raised:
            await open_lipsync(
                base_url=f"http://127.0.0.1:{silent_port}", app=None, options={}, connect_timeout_s=5, timeout_s=0.3
            )
    assert raised.value.code == "upstream_timeout"
