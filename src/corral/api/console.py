"""The web console: static files shipped in the package (``corral/web``), served at ``/`` and ``/ui``.

Nothing is built at run time; the page reads the public API and the event stream like any client.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)
WEB = files("corral") / "web"


@router.get("/", response_class=HTMLResponse)
async def console() -> HTMLResponse:
    return HTMLResponse((WEB / "index.html").read_text(), headers={"Cache-Control": "no-cache"})


def static_files() -> StaticFiles:
    return StaticFiles(packages=[("corral", "web")])
