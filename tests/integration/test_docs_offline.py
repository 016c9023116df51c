"""/docs and /redoc render in headless Chromium with every request that leaves
the API refused: their scripts and styles come from the API itself."""

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.browser import TIMEOUT_MS, browser, needs_chromium
from tests.support.service import Service

__all__ = ["browser"]  # a fixture, used by name
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture
def offline_page(browser: Any, service: Service) -> Iterator[tuple[Any, list[str]]]:
    """A page whose requests to anywhere but the API are aborted and recorded."""
    api = urlsplit(service.url).netloc
    context = browser.new_context()
    refused: list[str] = []

    def only_the_api(route: Any) -> None:
        if urlsplit(route.request.url).netloc == api:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_the_api)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page, refused
    context.close()
    assert errors == []


def test_the_assets_are_served_by_the_api(service: Service) -> None:
    with service.client() as http:
        page = http.get("/docs").text
        assert "/docs/assets/swagger-ui-bundle.js" in page and "cdn" not in page
        assert "/docs/assets/redoc.standalone.js" in http.get("/redoc").text
        script = http.get("/docs/assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert int(script.headers["content-length"]) > 100_000
        missing = http.get("/docs/assets/core.py")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
        assert "/docs/assets/{name}" not in http.get("/openapi.json").json()["paths"]


@needs_chromium
def test_swagger_ui_renders_offline(offline_page: tuple[Any, list[str]], service: Service) -> None:
    page, refused = offline_page
    page.goto(f"{service.url}/docs")
    page.locator(".opblock-summary-path", has_text="/jobs/{job_id}/result").first.wait_for()
    assert page.locator(".opblock").count() > 10
    assert page.locator(".info .title").inner_text().startswith("arrayq")
    assert refused == []


@needs_chromium
def test_redoc_renders_offline(offline_page: tuple[Any, list[str]], service: Service) -> None:
    page, refused = offline_page
    page.goto(f"{service.url}/redoc")
    page.locator("h2", has_text="Submit a job").first.wait_for()
    page.locator("h1", has_text="arrayq").first.wait_for()
    # ReDoc's "powered by" logo is the one thing it fetches from its CDN; when that
    # fails it takes the image away (its onError), and nothing else is missing.
    assert set(refused) <= {REDOC_LOGO}
    page.wait_for_function(f"() => !document.querySelector('img[src=\"{REDOC_LOGO}\"]')")
