"""A small synchronous client for the REST API, turning API errors into readable CLI errors.

httpx (and ssl) are imported when a client is made, httpx_sse when events are followed: every ``corral``
invocation imports this module, and ``corral --help`` talks to no one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import ssl

    import httpx

DEFAULT_MASTER = "http://127.0.0.1:8080"


def default_master() -> str:
    return os.environ.get("CORRAL_MASTER", DEFAULT_MASTER)


TOKEN_FILES = (Path(".corral/admin.token"), Path.home() / ".config/corral/token")


def default_token() -> str:
    """CORRAL_TOKEN, else the file CORRAL_TOKEN_FILE names, else ./.corral/admin.token (written by
    ``corral up``), else ~/.config/corral/token; empty when there is none."""
    token = os.environ.get("CORRAL_TOKEN", "").strip()
    if token:
        return token
    named = os.environ.get("CORRAL_TOKEN_FILE", "")
    for path in [Path(named)] if named else TOKEN_FILES:
        with contextlib.suppress(OSError):
            token = path.read_text().strip()
            if token:
                return token
    return ""


def _origin(url: str) -> str:
    import httpx

    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.host}{port}"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        where = f" [{self.field}]" if self.field else ""
        return f"{self.code}: {self.message}{where}"


class Unreachable(Exception):
    pass


class _TlsOnFirstUse:
    """Stands in for an ``ssl.SSLContext`` and makes the real one when a connection first uses it.

    httpx builds its TLS context (reading a whole CA bundle, ~40 ms) when a client is made; a command
    talking plain HTTP to its master never needs it. Every attribute is the real context's, made by
    ``make`` — httpx's own default for ``verify=True`` — so an https master is verified exactly as before.
    """

    _make: Callable[[], ssl.SSLContext]
    _context: ssl.SSLContext | None

    def __init__(self, make: Callable[[], ssl.SSLContext]) -> None:
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_context", None)

    def _real(self) -> ssl.SSLContext:
        context = self._context
        if context is None:
            context = self._make()
            object.__setattr__(self, "_context", context)
        return context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._real(), name, value)


class Client:
    """Talks to the leader: given several masters (comma-separated), it tries each in turn, and a
    standby's redirect takes it to the leader."""

    def __init__(
        self, master: str, timeout: float = 30.0, token: str | None = None, ca_file: str | None = None
    ) -> None:
        import ssl

        import httpx

        self.masters = [m.strip().rstrip("/") for m in master.split(",") if m.strip()]
        self.master = self.masters[0]
        self.token = default_token() if token is None else token
        ca = ca_file or os.environ.get("CORRAL_CA_FILE")
        self.verify: ssl.SSLContext = (
            ssl.create_default_context(cafile=ca)
            if ca
            else cast("ssl.SSLContext", _TlsOnFirstUse(httpx.create_ssl_context))
        )
        self.headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        # Redirects are followed by hand: httpx drops the Authorization header across origins, and a
        # standby's redirect to the leader is exactly that.
        self.http = httpx.Client(timeout=timeout, headers=self.headers, verify=self.verify)

    def _send(self, method: str, path: str, *, again: bool = False, **kwargs: Any) -> httpx.Response:
        """Send to the master last found leading, then to each other one in turn. ``again``: the request
        may safely be sent twice (a read, or one carrying an Idempotency-Key), so with a single master a
        connection cut mid-request is retried once on it."""
        import httpx

        errors = []
        bases = [self.master, *(m for m in self.masters if m != self.master)]
        if again and len(bases) == 1:
            bases.append(self.master)
        for base in bases:
            try:
                response = self.http.request(method, base + path, **kwargs)
                self.master = base
                for _ in range(5):
                    if response.status_code not in (307, 308) or "location" not in response.headers:
                        break
                    self.master = _origin(response.headers["location"])  # the leader
                    response = self.http.request(method, response.headers["location"], **kwargs)
                return response
            except httpx.TransportError as e:
                errors.append(f"{base}: {e}")
        raise Unreachable(f"cannot reach the master at {'; '.join(errors)}")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"code": "http_error", "message": response.text[:200]}
            raise ApiError(
                response.status_code, body.get("code", "error"), body.get("message", ""), body.get("field")
            )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=params, again=True)

    def post(self, path: str, body: Any = None, idempotency_key: str = "", **params: Any) -> Any:
        """POST; with ``idempotency_key`` the request is sent again on a cut connection (to the next
        master, or once more to the only one): the master answers a repeat with what the first made."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.request(
            "POST",
            path,
            json=body,
            params={k: v for k, v in params.items() if v is not None},
            headers=headers,
            again=bool(idempotency_key),
        )

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def paged(self, path: str, limit: int | None = None, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following ``next`` cursors (up to ``limit`` items)."""
        after = None
        seen = 0
        while True:
            page = self.get(path, after=after, limit=min(1000, limit or 1000), **params)
            for item in page["items"]:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            after = page.get("next")
            if not after:
                return

    def stream_text(self, path: str, **params: Any) -> Iterator[str]:
        """A streamed plain-text response, piece by piece (API errors raised before the first piece)."""
        import httpx

        self._send("GET", "/api/v1/whoami")  # find the leader: streams are not redirected
        try:
            with (
                httpx.Client(
                    base_url=self.master,
                    timeout=httpx.Timeout(30.0, read=None),
                    headers=self.headers,
                    verify=self.verify,
                ) as http,
                http.stream(
                    "GET", path, params={k: v for k, v in params.items() if v is not None}
                ) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    body = response.json()
                    raise ApiError(response.status_code, body.get("code", "error"), body.get("message", ""))
                yield from response.iter_text()
        except httpx.TransportError as e:
            raise Unreachable(f"lost the stream from {self.master}: {e}") from e

    def events(self, job: str | None = None) -> Iterator[tuple[str, Any]]:
        import httpx
        from httpx_sse import connect_sse

        params = {"job": job} if job else {}
        self._send("GET", "/api/v1/whoami")  # find the leader: streams are not redirected
        try:
            with (
                httpx.Client(
                    base_url=self.master, timeout=None, headers=self.headers, verify=self.verify
                ) as http,
                connect_sse(http, "GET", "/api/v1/events", params=params) as source,
            ):
                for sse in source.iter_sse():
                    yield sse.event, sse.json()
        except httpx.TransportError as e:
            raise Unreachable(f"lost the event stream from {self.master}: {e}") from e
