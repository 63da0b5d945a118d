"""A small synchronous client for the REST API, turning API errors into readable CLI errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import connect_sse

DEFAULT_MASTER = "http://127.0.0.1:8080"


def default_master() -> str:
    return os.environ.get("CORRAL_MASTER", DEFAULT_MASTER)


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


class Client:
    """Talks to the leader: given several masters (comma-separated), it tries each in turn, and a
    standby's redirect takes it to the leader."""

    def __init__(self, master: str, timeout: float = 30.0) -> None:
        self.masters = [m.strip().rstrip("/") for m in master.split(",") if m.strip()]
        self.master = self.masters[0]
        self.http = httpx.Client(timeout=timeout, follow_redirects=True)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        errors = []
        for base in [self.master, *(m for m in self.masters if m != self.master)]:
            try:
                response = self.http.request(method, base + path, **kwargs)
                self.master = base
                break
            except httpx.TransportError as e:
                errors.append(f"{base}: {e}")
        else:
            raise Unreachable(f"cannot reach the master at {'; '.join(errors)}")
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
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request(
            "POST", path, json=body, params={k: v for k, v in params.items() if v is not None}
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
        try:
            with (
                httpx.Client(
                    base_url=self.master, timeout=httpx.Timeout(30.0, read=None), follow_redirects=True
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
        params = {"job": job} if job else {}
        try:
            with (
                httpx.Client(base_url=self.master, timeout=None, follow_redirects=True) as http,
                connect_sse(http, "GET", "/api/v1/events", params=params) as source,
            ):
                for sse in source.iter_sse():
                    yield sse.event, sse.json()
        except httpx.TransportError as e:
            raise Unreachable(f"lost the event stream from {self.master}: {e}") from e
