"""The dashboard page: three static files, no build step.

The page is public because it holds no data: its script calls the API with the
key the user types in.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from arrayq.api.errors import Missing

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob:; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}

router = APIRouter(tags=["ui"], include_in_schema=False)


@router.get("/ui")
def dashboard() -> FileResponse:
    return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html", headers=HEADERS)


@router.get("/ui/{asset}")
def dashboard_asset(asset: str) -> FileResponse:
    media_type = ASSETS.get(asset)
    if media_type is None:
        raise Missing(f"no dashboard file {asset!r}")
    return FileResponse(STATIC_DIR / asset, media_type=media_type, headers=HEADERS)
