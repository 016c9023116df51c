"""The benchmark suite's quick mode runs end to end, so the benchmark code cannot rot."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.service import REPO_ROOT

SECTIONS = (
    "## 1. Inline JSON",
    "## 2. Result download",
    "## 3. Job overhead",
    "## 4. Upload",
    "## 5. PNG",
    "## 6. Zarr view",
    "## 7. Cost as work grows",
    "## 8. Waiting in one request",
    "## 9. Against the peers",  # skipped, and says so, without bench/.peers-venv
)


@pytest.mark.timeout(540)  # seven sections; a shared 2-core machine can double the time
def test_quick_bench_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = output.read_text()
    for heading in ("## Machine", "## Targets", *SECTIONS):
        assert heading in results
    assert "| numpy |" in results
    targets = results.split("## Targets")[1].split("## 1.")[0]
    for section in ("1", "2", "3", "4"):
        assert f"| {section}. " in targets
