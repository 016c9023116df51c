"""The dashboard page in a real headless Chromium (Debian's `chromium`, driven
by Playwright) against the real service.

`ARRAYQ_SAVE_SCREENSHOT=1` also writes docs/dashboard.png.
"""

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.browser import TIMEOUT_MS, browser, needs_chromium
from tests.support.service import REPO_ROOT, Service, start_service

SCREENSHOT = REPO_ROOT / "docs" / "dashboard.png"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
TIMES = "\N{MULTIPLICATION SIGN}"  # between the sizes of a shape
__all__ = ["browser"]  # a fixture, used by name


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh page; the test fails on any uncaught JavaScript error."""
    context = browser.new_context(viewport={"width": 1360, "height": 600}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


@pytest.fixture(scope="module")
def keyed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = start_service(
        tmp_path_factory.mktemp("dashboard-keys"),
        workers=1,
        extra_env={"ARRAYQ_API_KEYS": "ui-key:tenant-ui"},
    )
    try:
        yield running
    finally:
        running.stop()


def submit_from_form(page: Any, op: str, **params: str) -> str:
    """Fill the form for `op`, submit it, and return the new job's id."""
    page.select_option("#op", op)
    for name, value in params.items():
        page.fill(f'#params [name="{name}"]', value)
    page.click("#submit-job")
    status = page.locator("#submit-status")
    expect_attribute(status, "data-job-id", JOB_ID)
    return status.get_attribute("data-job-id")


def expect_attribute(locator: Any, name: str, value: Any) -> None:
    from playwright.sync_api import expect

    expect(locator).to_have_attribute(name, value, timeout=TIMEOUT_MS)


def job_row(page: Any, job_id: str) -> Any:
    return page.locator(f'tr[data-job-id="{job_id}"]')


def wait_for_status(page: Any, job_id: str, status: str) -> Any:
    row = job_row(page, job_id)
    expect_attribute(row, "data-status", status)
    return row


def image_size(row: Any) -> list[int]:
    image = row.locator(".preview img")
    image.wait_for()
    row.page.wait_for_function(
        "image => image.complete && image.naturalWidth > 0", arg=image.element_handle()
    )
    return image.evaluate("image => [image.naturalWidth, image.naturalHeight]")


# the page itself, over plain HTTP


def test_page_and_assets_are_served_without_a_key(keyed_service):
    with keyed_service.client() as http:
        page = http.get("/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        script = http.get("/ui/dashboard.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert http.get("/ui/dashboard.css").headers["content-type"].startswith("text/css")
        missing = http.get("/ui/app.py")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
        assert http.get("/jobs").status_code == 401


# in the browser


@needs_chromium
def test_mandelbrot_from_the_form_reaches_succeeded_with_its_image(page, service):
    page.goto(f"{service.url}/ui")
    job_id = submit_from_form(page, "mandelbrot", width="150", height="100", max_iter="60")
    row = wait_for_status(page, job_id, "succeeded")
    assert image_size(row) == [150, 100]
    assert f"100 {TIMES} 150 {TIMES} 3" in row.locator(".result").inner_text()
    link = row.locator(".actions a")
    assert link.get_attribute("href") == f"/jobs/{job_id}/result?format=npy"
    with service.client() as http:
        document = http.get(f"/jobs/{job_id}").json()
    assert document["params"]["width"] == 150 and document["params"]["max_iter"] == 60


@needs_chromium
def test_array_input_from_the_form_and_a_values_preview(page, service):
    page.goto(f"{service.url}/ui")
    page.select_option("#op", "svd")
    page.fill("#input-x", '{"dtype": "float64", "shape": [2, 2], "data": [[3, 0], [0, 2]]}')
    page.click("#submit-job")
    status = page.locator("#submit-status")
    expect_attribute(status, "data-job-id", JOB_ID)
    row = wait_for_status(page, status.get_attribute("data-job-id"), "succeeded")
    preview = row.locator(".preview code")
    preview.wait_for()
    assert preview.inner_text() == "[3, 2]"
    assert "2 float64" in row.locator(".result").inner_text()


@needs_chromium
def test_params_are_built_from_the_schema(page, service):
    page.goto(f"{service.url}/ui")
    page.select_option("#op", "random")
    shape = page.locator('#params [name="shape"]')
    assert shape.get_attribute("required") is not None
    assert page.locator('#params select[name="distribution"] option').all_inner_texts() == [
        "normal",
        "uniform",
    ]
    assert page.locator('#params [name="seed"]').get_attribute("type") == "number"
    page.select_option("#op", "mandelbrot")
    assert page.locator('#params [name="max_iter"]').input_value() == "100"


@needs_chromium
def test_a_failed_job_shows_its_error(page, service):
    page.goto(f"{service.url}/ui")
    job_id = submit_from_form(page, "fail", message="shown in the table")
    row = wait_for_status(page, job_id, "failed")
    assert "RuntimeError: shown in the table" in row.locator(".result").inner_text()


@needs_chromium
def test_progress_updates_live(page, service):
    page.goto(f"{service.url}/ui")
    job_id = submit_from_form(page, "sleep", seconds="2.5")
    row = job_row(page, job_id)
    row.wait_for()
    page.wait_for_function(
        "row => row.dataset.status === 'running' && row.querySelector('progress').value > 0.3",
        arg=row.element_handle(),
    )
    if os.environ.get("ARRAYQ_SAVE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    wait_for_status(page, job_id, "succeeded")
    assert row.locator("progress").evaluate("bar => bar.value") == 1


@needs_chromium
def test_with_api_keys_the_page_asks_for_one(page, keyed_service, tmp_path):
    page.goto(f"{keyed_service.url}/ui")
    page.locator("#key-form").wait_for()
    page.fill("#api-key", "wrong")
    page.click("#key-form button")
    page.get_by_text("That API key was refused.").wait_for()
    page.fill("#api-key", "ui-key")
    page.click("#key-form button")
    job_id = submit_from_form(page, "random", shape="4, 5", seed="3")
    row = wait_for_status(page, job_id, "succeeded")
    assert image_size(row) == [5, 4]
    with page.expect_download() as download:
        row.locator(".actions a").click()
    saved = tmp_path / "result.npy"
    download.value.save_as(saved)
    array = np.load(io.BytesIO(saved.read_bytes()), allow_pickle=False)
    assert np.array_equal(array, np.random.default_rng(3).standard_normal((4, 5)))
