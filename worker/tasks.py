"""The one Celery task: a thin wrapper that hands the job id to the runner."""

from celery import shared_task

from arrayq.worker.celery_app import TASK_NAME
from arrayq.worker.context import worker_context
from arrayq.worker.runner import run_job as run


@shared_task(name=TASK_NAME, ignore_result=True)
def run_job(job_id: str) -> None:
    run(worker_context(), job_id)
