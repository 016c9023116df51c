"""The API builds a producer-only Celery app: it sends the task by name and
loads none of the worker's modules (the task, the runner, maintenance)."""

import subprocess
import sys

SCRIPT = """
import sys
from arrayq.api.app import create_app
from arrayq.api.backends import Backends
from arrayq.storage.settings import Settings

create_app()
backends = Backends.from_settings(
    Settings(redis_url="redis://127.0.0.1:1/0", storage_url="file://{folder}")
)
assert "arrayq.run_job" not in backends.celery.tasks, "the API registered the worker's task"
print(" ".join(sorted(name for name in sys.modules if name.startswith("arrayq.worker"))))
"""


def test_the_api_loads_no_worker_module_but_the_op_registry_and_enqueue(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(folder=tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert loaded <= {
        "arrayq.worker",
        "arrayq.worker.builtin_ops",
        "arrayq.worker.celery_app",
        "arrayq.worker.enqueue",
        "arrayq.worker.ops",
    }, loaded
