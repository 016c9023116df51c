"""The op registry and the `@op` decorator.

An op is a plain function `f(params, progress, **inputs)` returning one array,
or, for an op declared with `outputs=[...]`, a dict by output name or a tuple in
that order. It must not touch HTTP, Redis or storage, so that a unit test can
call it with arrays.
"""

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from arrayq.storage.results import SINGLE, check_output_names

ResultKind = Literal["array", "image"]
Progress = Callable[[float], None]
# Whether a job's result may come from the cache: always, never, or decided by
# its validated params (`random` is a function of its params only with a seed).
CachePolicy = bool | Callable[[Any], bool]


class OpFunction(Protocol):
    def __call__(self, params: Any, progress: Progress, /, **inputs: np.ndarray) -> Any: ...


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Op:
    name: str
    func: OpFunction
    params: type[BaseModel]
    inputs: tuple[str, ...]
    result: ResultKind
    summary: str
    queue: str = "default"
    soft_time_limit: float | None = None
    hard_time_limit: float | None = None
    # Optional upper bound of the result size in bytes, computed from the params
    # and the input shapes before anything is allocated (shape bombs fail fast).
    result_nbytes: Callable[[Any, dict[str, tuple[int, ...]]], int] | None = field(
        default=None, compare=False
    )
    outputs: tuple[str, ...] = (SINGLE,)
    version: str = "1"
    cache: CachePolicy = field(default=True, compare=False)

    def cacheable(self, params: BaseModel) -> bool:
        return self.cache(params) if callable(self.cache) else self.cache

    @property
    def multi_output(self) -> bool:
        return self.outputs != (SINGLE,)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "params": self.params.model_json_schema(),
            "inputs": list(self.inputs),
            "result": self.result,
            "outputs": list(self.outputs),
            "queue": self.queue,
            "version": self.version,
            "cache": self.cache is not False,
        }


class UnknownOp(KeyError):
    """No op of that name is registered."""


_REGISTRY: dict[str, Op] = {}


def op(
    name: str,
    *,
    params: type[BaseModel] = NoParams,
    inputs: Iterable[str] = (),
    result: ResultKind = "array",
    queue: str = "default",
    soft_time_limit: float | None = None,
    hard_time_limit: float | None = None,
    result_nbytes: Callable[[Any, dict[str, tuple[int, ...]]], int] | None = None,
    outputs: Iterable[str] | None = None,
    version: str = "1",
    cache: CachePolicy = True,
) -> Callable[[OpFunction], OpFunction]:
    """Register `func` as the op `name`. `queue="long"` keeps slow ops off the short
    queue. A new `version` never reuses results cached under an older one;
    `cache=False` for ops whose result is not a function of params and inputs."""
    names = tuple(outputs) if outputs is not None else (SINGLE,)
    check_output_names(names)

    def register(func: OpFunction) -> OpFunction:
        doc = (func.__doc__ or "").strip()
        _REGISTRY[name] = Op(
            name=name,
            func=func,
            params=params,
            inputs=tuple(inputs),
            result=result,
            summary=doc.splitlines()[0] if doc else name,
            queue=queue,
            soft_time_limit=soft_time_limit,
            hard_time_limit=hard_time_limit,
            result_nbytes=result_nbytes,
            outputs=names,
            version=str(version),
            cache=cache,
        )
        return func

    return register


def load_ops(module_names: Iterable[str] = ()) -> dict[str, Op]:
    """Import the built-in ops and the modules of `ARRAYQ_OPS_MODULES`; return the registry."""
    importlib.import_module("arrayq.worker.builtin_ops")
    for module_name in module_names:
        importlib.import_module(module_name)
    return dict(_REGISTRY)


def get_op(name: str) -> Op:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownOp(name) from None
