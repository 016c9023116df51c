"""One error table: every named error the API can raise has its status in
api/errors.py's table, and no code picks a status where it raises."""

import re
from pathlib import Path

import arrayq.api.app  # noqa: F401  (imports every module that defines errors)
from arrayq.api.errors import STATUS_BY_ERROR, Problem, status_of
from arrayq.storage.errors import ArrayqError, JobFailure

ROOT = Path(__file__).resolve().parents[2]


def subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *subclasses(sub)}
    return found


def test_every_named_error_has_a_status_in_the_table():
    import arrayq.worker.runner  # noqa: F401  (its job failures must stay out of the table)

    failures = subclasses(JobFailure) | {JobFailure}  # recorded in a job, never answered
    named = subclasses(ArrayqError) - {Problem} - failures  # Problem: the base of the API's own
    missing = [cls.__name__ for cls in named if _status(cls) == 500]
    assert missing == []
    assert all(400 <= status < 600 for status in STATUS_BY_ERROR.values())


def test_no_status_number_is_chosen_where_an_error_is_raised():
    raises = re.compile(r"(ApiError|HTTPException)\(\s*\d{3}")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("api", "storage", "worker")
        for path in (ROOT / folder).rglob("*.py")
        if raises.search(path.read_text())
    ]
    assert offenders == []


def _status(cls: type[ArrayqError]) -> int:
    error = cls.__new__(cls)
    return status_of(error)


def test_job_failures_are_no_http_answers():
    import arrayq.worker.runner  # noqa: F401

    assert subclasses(JobFailure)
    assert not any(cls in STATUS_BY_ERROR for cls in subclasses(JobFailure))
