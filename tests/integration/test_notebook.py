"""The client in a real Jupyter kernel (ipykernel, run by nbclient) against the
real service: what a notebook user sees in the cell outputs."""

import base64
import io
import re
from typing import Any

import nbclient
import nbformat
from PIL import Image

from tests.support.service import REPO_ROOT, Service


def run_notebook(service: Service, *cells: str) -> list[list[dict[str, Any]]]:
    """Run the cells in a fresh kernel; each cell's outputs, updates applied."""
    setup = f"from arrayq import Client\nclient = Client({service.url!r})"
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in (setup, *cells)]
    )
    runner = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": REPO_ROOT}}
    )
    runner.execute()
    return [cell["outputs"] for cell in notebook.cells[1:]]


def bundles(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [output["data"] for output in outputs if "data" in output]


def test_a_job_in_a_notebook(service: Service) -> None:
    progress, shown, sliced = run_notebook(
        service,
        'job = client.submit("sleep", {"seconds": 1.5})\njob.wait(progress=True);',
        'image = client.submit("random", {"shape": [500, 300], "seed": 1})\nimage.wait()\nimage',
        'image.result(slice="0:10, ::2").shape',
    )
    # The progress bar is one display, updated in place to its end (no widget needed).
    (bar,) = bundles(progress)
    assert re.search(r"sleep \w+ succeeded .*100%", bar["text/plain"])
    assert "<pre" in bar["text/html"]
    assert not [output for output in progress if output.get("name") == "stderr"]

    (rich,) = bundles(shown)
    page = rich["text/html"]
    assert "succeeded" in page and "random" in page and "float64 (500" in page
    png = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert png, page
    assert Image.open(io.BytesIO(base64.b64decode(png.group(1)))).size == (150, 250)
    assert rich["text/plain"].startswith("<Job ") and "succeeded" in rich["text/plain"]

    assert bundles(sliced)[0]["text/plain"] == "(10, 150)"


def test_an_image_result_displays_as_png(service: Service) -> None:
    (shown,) = run_notebook(
        service,
        'fractal = client.submit("mandelbrot", {"width": 80, "height": 60, "max_iter": 20})\n'
        "fractal.wait()\nfractal",
    )
    (rich,) = bundles(shown)
    png = base64.b64decode(rich["image/png"])
    assert Image.open(io.BytesIO(png)).size == (80, 60)
