"""The one Celery task: a thin wrapper that hands the job id to the runner."""

from celery import shared_task
from celery.exceptions import Ignore

from arrayq.worker.celery_app import TASK_NAME
from arrayq.worker.context import worker_context
from arrayq.worker.runner import run_job as run


@shared_task(name=TASK_NAME, ignore_result=True)
def run_job(job_id: str) -> str:
    outcome = run(worker_context(), job_id)
    if outcome != "succeeded":
        # Acknowledged like a success, but Celery logs "ignored", not "succeeded":
        # the runner has logged what happened to the job.
        raise Ignore()
    return outcome
