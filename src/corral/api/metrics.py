"""``/metrics``: Prometheus text (what it holds: ``control/exporter.py``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import master_of
from corral.control.exporter import CONTENT_TYPE_LATEST, scrape

router = APIRouter(tags=["admin"])


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    master = master_of(request)
    if master is None:
        return Response(b"", media_type=CONTENT_TYPE_LATEST)
    return Response(scrape(master), media_type=CONTENT_TYPE_LATEST)
