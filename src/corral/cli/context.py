"""What every command shares: the master URL, JSON output, and uniform error handling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import typer
from rich.markup import escape

from corral.cli.client import ApiError, Client, Unreachable
from corral.cli.output import errors

T = TypeVar("T")


@dataclass(slots=True)
class Settings:
    master: str
    json: bool = False
    token: str | None = None  # None: the default (CORRAL_TOKEN, token files)
    ca_file: str | None = None

    def client(self) -> Client:
        return Client(self.master, token=self.token, ca_file=self.ca_file)


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if not isinstance(obj, Settings):
        raise RuntimeError("settings missing")
    return obj


@contextmanager
def api_errors() -> Iterator[None]:
    """Turn API and connection errors into one red line and a non-zero exit."""
    try:
        yield
    except ApiError as e:
        errors.print(f"[red]error[/red] {escape(str(e))}")
        raise typer.Exit(1) from e
    except Unreachable as e:
        errors.print(
            f"[red]error[/red] {e}\n  (is a master running? start one with `corral up`; set --master)"
        )
        raise typer.Exit(2) from e


def call(fn: Callable[[], T]) -> T:
    with api_errors():
        return fn()
