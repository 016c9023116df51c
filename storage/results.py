"""What a succeeded job's result is: the facts the worker stores, per output.

A job's record keeps, for each output, its dtype, shape, nbytes, kind and the
object key of its `.npy` (written under a key unique to the run that computed
it), the size and CRC-32 of that file (so an `.npz` of all outputs can be
streamed without reading anything twice), and the key of a stored PNG for
images. Which formats a result offers is decided here and nowhere else.

Single-output jobs have one output, `result`; their record says `kind` "array"
or "image". Multi-output jobs say `kind` "outputs".
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arrayq.storage import keys
from arrayq.storage.errors import NotFound

SINGLE = "result"
DEFAULT_INLINE_MAX_BYTES = 1_048_576
# ARRAYQ_INLINE_MAX_BYTES of this process, set where its JobStore is built from
# the settings: the job document lists `json` for results up to this size.
_inline_limit = [DEFAULT_INLINE_MAX_BYTES]
OUTPUTS_KIND = "outputs"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class UnknownOutput(NotFound):
    type = "unknown_output"


def check_output_names(names: tuple[str, ...]) -> None:
    """Names of an op's outputs: identifiers (they name `.npy` entries and URL
    segments), unique, at least one."""
    if not names:
        raise ValueError("an op needs at least one output")
    bad = [name for name in names if not _NAME.fullmatch(name)]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"output names must be unique identifiers, got {list(names)}")


@dataclass(frozen=True)
class OutputFacts:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    kind: str  # "array" or "image"
    key: str  # the .npy object
    size: int = 0  # bytes of the .npy file (0: not recorded)
    crc32: int | None = None  # of the .npy file
    png_key: str | None = None  # a stored PNG (images)

    def record(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "nbytes": self.nbytes,
            "kind": self.kind,
            "key": self.key,
            "size": self.size,
            "crc32": self.crc32,
        }
        if self.png_key:
            fields["png_key"] = self.png_key
        return fields

    @property
    def renderable(self) -> bool:
        """PNG is offered for images and for 2-D bool/int/uint/float arrays."""
        return self.kind == "image" or (len(self.shape) == 2 and self.dtype_kind in "biuf")

    @property
    def dtype_kind(self) -> str:
        if self.dtype == "bool":
            return "b"
        return {"int": "i", "uint": "u", "float": "f", "complex": "c"}.get(
            self.dtype.rstrip("0123456789"), "?"
        )


@dataclass(frozen=True)
class ResultFacts:
    kind: str  # "array", "image" or "outputs"
    outputs: dict[str, OutputFacts]

    @property
    def multi(self) -> bool:
        return self.kind == OUTPUTS_KIND

    @property
    def nbytes(self) -> int:
        return sum(out.nbytes for out in self.outputs.values())

    def output(self, name: str) -> OutputFacts:
        """One output; `result` also names the only output of a single-output job."""
        found = self.outputs.get(name)
        if found is None:
            names = ", ".join(self.outputs)
            raise UnknownOutput(f"no output {name!r}; this job's outputs are: {names}")
        return found

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "outputs": {name: out.record() for name, out in self.outputs.items()},
        }


def from_record(record: Mapping[str, Any], *, tenant: str, job_id: str) -> ResultFacts:
    """The facts of a stored `result` field. Records written before outputs
    existed (dtype and shape at the top, the object at a fixed key) read as one
    output named `result`."""
    if "outputs" not in record:
        legacy = OutputFacts(
            name=SINGLE,
            dtype=record["dtype"],
            shape=tuple(record["shape"]),
            nbytes=int(record["nbytes"]),
            kind=record.get("kind", "array"),
            key=keys.legacy_result_object(tenant, job_id, "npy"),
            png_key=keys.legacy_result_object(tenant, job_id, "png")
            if record.get("kind") == "image"
            else None,
        )
        return ResultFacts(kind=legacy.kind, outputs={SINGLE: legacy})
    outputs = {
        name: OutputFacts(
            name=name,
            dtype=fields["dtype"],
            shape=tuple(fields["shape"]),
            nbytes=int(fields["nbytes"]),
            kind=fields.get("kind", "array"),
            key=fields["key"],
            size=int(fields.get("size") or 0),
            crc32=fields.get("crc32"),
            png_key=fields.get("png_key"),
        )
        for name, fields in record["outputs"].items()
    }
    return ResultFacts(kind=record["kind"], outputs=outputs)


def set_inline_limit(nbytes: int) -> None:
    _inline_limit[0] = nbytes


def inline_limit() -> int:
    return _inline_limit[0]


def output_formats(out: OutputFacts, inline_max_bytes: int) -> list[str]:
    formats = ["json"] if out.nbytes <= inline_max_bytes else []
    formats.append("npy")
    if out.renderable:
        formats.append("png")
    return formats


def result_formats(facts: ResultFacts, inline_max_bytes: int) -> list[str]:
    """The formats of `/result`: those of the only output, or for several outputs
    JSON when their sum fits inline, and `.npz`."""
    if not facts.multi:
        return output_formats(facts.outputs[SINGLE], inline_max_bytes)
    return (["json"] if facts.nbytes <= inline_max_bytes else []) + ["npz"]


def document_view(facts: ResultFacts, inline_max_bytes: int | None = None) -> dict[str, Any]:
    """The job document's `result`: facts and formats, no object keys."""
    if inline_max_bytes is None:
        inline_max_bytes = inline_limit()
    if not facts.multi:
        out = facts.outputs[SINGLE]
        return {**_public(out), "formats": output_formats(out, inline_max_bytes)}
    return {
        "kind": OUTPUTS_KIND,
        "nbytes": facts.nbytes,
        "formats": result_formats(facts, inline_max_bytes),
        "outputs": {
            name: {**_public(out), "formats": output_formats(out, inline_max_bytes)}
            for name, out in facts.outputs.items()
        },
    }


def _public(out: OutputFacts) -> dict[str, Any]:
    return {"dtype": out.dtype, "shape": list(out.shape), "nbytes": out.nbytes, "kind": out.kind}


def object_keys(facts: ResultFacts) -> list[str]:
    """Every object the result is made of."""
    found = []
    for out in facts.outputs.values():
        found.append(out.key)
        if out.png_key:
            found.append(out.png_key)
    return found
