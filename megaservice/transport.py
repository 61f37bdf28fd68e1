"""An httpx transport on aiohttp's connection pool, for the remote hops of the shared client.

httpx stays the API everywhere (one `httpx.AsyncClient`, its timeouts, its exceptions); only the
socket work moves to aiohttp, whose C HTTP parser and pool cost several times less CPU per
request than httpcore's under load (bench/orchestrator.py measures the whole pipeline).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
from yarl import URL

# aiohttp failures -> the httpx exceptions the orchestrator translates (unreachable, timeout, broken reply).
_CONNECT_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError, ConnectionRefusedError)


class _Body(httpx.AsyncByteStream):
    """The response body, read from aiohttp as it arrives."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise httpx.RemoteProtocolError(str(exc), request=self._request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc), request=self._request) from exc

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests through one aiohttp session (created lazily in the running event loop)."""

    def __init__(self, *, connect_timeout_s: float, max_connections: int) -> None:
        """Keep up to `max_connections` keep-alive connections; connecting gives up after `connect_timeout_s`."""
        self.connect_timeout_s = connect_timeout_s
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}  # parsed once: nodes post to the same few URLs over and over

    def _url(self, url: httpx.URL) -> URL:
        text = str(url)
        parsed = self._urls.get(text)
        if parsed is None:
            if len(self._urls) > 1024:
                self._urls.clear()
            parsed = self._urls[text] = URL(text, encoded=True)
        return parsed

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, auto_decompress=False, trust_env=False, skip_auto_headers=()
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request; the body streams back through httpx."""
        body = await request.aread()
        try:
            response = await self._client().request(
                request.method,
                self._url(request.url),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                compress=None,
            )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connect timed out: {exc}", request=request) from exc
        except _CONNECT_ERRORS as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            request=request,
        )

    async def aclose(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
