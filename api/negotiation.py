"""Which representation of a result a request gets: facts in, a plan out.

`plan()` is pure: from what the worker stored (dtype, shape, nbytes, kind, per
output) and what the request asks for, it decides the one response to give.
The route only carries the plan out. Which formats a result offers at all is
`storage.results`' rule, used here and in the job document alike.
"""

from dataclasses import dataclass, replace
from enum import StrEnum

from arrayq.storage import slicing
from arrayq.storage.codecs import is_image_shape
from arrayq.storage.errors import ArrayqError, TooLarge
from arrayq.storage.results import SINGLE, OutputFacts, ResultFacts, output_formats, result_formats


class Format(StrEnum):
    JSON = "json"
    NPY = "npy"
    PNG = "png"
    NPZ = "npz"
    AUTO = "auto"  # no preference: JSON when small, else a redirect to .npy (.npz)


MEDIA_TYPES = {
    "application/json": Format.JSON,
    "application/x-npy": Format.NPY,
    "application/octet-stream": Format.NPY,
    "application/x-npz": Format.NPZ,
    "image/png": Format.PNG,
    "*/*": Format.AUTO,
    "application/*": Format.AUTO,
    "image/*": Format.PNG,
}


class NotAcceptable(ArrayqError):
    """No representation of the result matches the request; `links` lists those there are."""

    type = "not_acceptable"

    def __init__(self, message: str, links: dict[str, object]) -> None:
        super().__init__(message)
        self.links = links

    def body_fields(self) -> dict[str, object]:
        return {"links": self.links}


class SliceOfOutputs(slicing.InvalidSlice):
    pass


@dataclass(frozen=True)
class Ask:
    """What the request asks for, and the facts of the service that matter."""

    job_id: str
    fmt: Format | None  # None: nothing acceptable was offered
    output: str | None = None  # None: the job's /result
    slice_text: str | None = None
    redirect: bool = True
    local: bool = True  # the store has the files on this machine's disk
    inline_max_bytes: int = 1_048_576
    max_slice_bytes: int = 268_435_456

    @property
    def base(self) -> str:
        if self.output is None:
            return f"/jobs/{self.job_id}/result"
        return f"/jobs/{self.job_id}/outputs/{self.output}"


# The plans. Each names the output(s) it serves.


@dataclass(frozen=True)
class Inline:
    """ArrayJSON of one output, or `{"outputs": {...}}` of several."""

    outputs: tuple[OutputFacts, ...]
    several: bool = False


@dataclass(frozen=True)
class File:
    """The stored .npy from this machine's disk (byte ranges honoured)."""

    output: OutputFacts


@dataclass(frozen=True)
class Redirect:
    """307 to a presigned URL of the stored .npy."""

    output: OutputFacts


@dataclass(frozen=True)
class Stream:
    """The stored .npy streamed through the API (byte ranges honoured)."""

    output: OutputFacts


@dataclass(frozen=True)
class Npz:
    """An uncompressed .npz of every output, streamed from the store."""

    outputs: tuple[OutputFacts, ...]


@dataclass(frozen=True)
class Render:
    """PNG: the stored one (`stored`), the array itself (`encode`) or through a colormap."""

    output: OutputFacts
    mode: str  # "stored", "encode" or "colormap"


@dataclass(frozen=True)
class Sliced:
    """A sub-array in the given format (JSON, NPY or PNG)."""

    output: OutputFacts
    index: slicing.Index
    fmt: Format
    png_mode: str | None = None


@dataclass(frozen=True)
class SeeOther:
    location: str


Plan = Inline | File | Redirect | Stream | Npz | Render | Sliced | SeeOther


def plan(facts: ResultFacts, ask: Ask) -> Plan:
    """The response to give; raises `NotAcceptable` (406 with links),
    `UnknownOutput`, `InvalidSlice` or `TooLarge`."""
    if ask.output is not None:
        return _plan_output(facts.output(ask.output), ask)
    if not facts.multi:
        return _plan_output(facts.outputs[SINGLE], ask)
    return _plan_outputs(facts, ask)


def _plan_output(out: OutputFacts, ask: Ask) -> Plan:
    formats = output_formats(out, ask.inline_max_bytes)
    if ask.fmt is None:
        raise _refuse(
            ask, formats, "cannot serve the media types asked for; ask for JSON, .npy or PNG"
        )
    if ask.slice_text is not None:
        return _plan_slice(out, ask, formats)
    fmt = ask.fmt
    if fmt == Format.AUTO:
        if "json" not in formats:
            return SeeOther(f"{ask.base}?format=npy")
        fmt = Format.JSON
    if fmt == Format.JSON:
        if "json" not in formats:
            raise _refuse(
                ask,
                formats,
                f"the result takes {out.nbytes} bytes, over the inline JSON limit of "
                f"{ask.inline_max_bytes}; ask for application/x-npy or the URL",
            )
        return Inline((out,))
    return _plan_file(out, ask, fmt, formats)


def _plan_file(out: OutputFacts, ask: Ask, fmt: Format, formats: list[str]) -> Plan:
    if fmt == Format.PNG:
        mode = png_mode(out)
        if mode is None:
            raise _refuse(ask, formats, f"no PNG for a result of shape {list(out.shape)}")
        return Render(out, mode)
    if fmt == Format.NPZ:
        raise _refuse(ask, formats, ".npz is for a job with several outputs; ask for .npy")
    if ask.local:
        return File(out)
    return Redirect(out) if ask.redirect else Stream(out)


def _plan_slice(out: OutputFacts, ask: Ask, formats: list[str]) -> Sliced:
    assert ask.slice_text is not None and ask.fmt is not None
    index = slicing.parse_slice(ask.slice_text, out.shape)
    nbytes = slicing.sliced_nbytes(out.shape, _itemsize(out.dtype), index)
    if nbytes > ask.max_slice_bytes:
        raise TooLarge(
            f"the slice takes {nbytes} bytes, over the limit of {ask.max_slice_bytes}; slice less"
        )
    fmt = ask.fmt
    if fmt == Format.AUTO:
        fmt = Format.JSON if nbytes <= ask.inline_max_bytes else Format.NPY
    if fmt == Format.JSON and nbytes > ask.inline_max_bytes:
        raise _refuse(ask, formats, f"the slice takes {nbytes} bytes, over the inline JSON limit")
    if fmt == Format.NPZ:
        raise _refuse(ask, formats, ".npz is for a job with several outputs; ask for .npy")
    if fmt != Format.PNG:
        return Sliced(out, index, fmt)
    shape = slicing.sliced_shape(out.shape, index)
    mode = png_mode(replace(out, shape=shape, png_key=None))
    if mode is None:
        raise _refuse(ask, formats, f"no PNG for a slice of shape {list(shape)}")
    return Sliced(out, index, fmt, png_mode=mode)


def _plan_outputs(facts: ResultFacts, ask: Ask) -> Plan:
    formats = result_formats(facts, ask.inline_max_bytes)
    if ask.fmt is None:
        raise _refuse(ask, formats, "cannot serve the media types asked for; ask for JSON or .npz")
    if ask.slice_text is not None:
        raise SliceOfOutputs(
            f"a job with several outputs is sliced one output at a time: {_outputs_hint(ask)}"
        )
    fmt = ask.fmt
    if fmt == Format.AUTO:
        if "json" not in formats:
            return SeeOther(f"{ask.base}?format=npz")
        fmt = Format.JSON
    if fmt == Format.JSON:
        if "json" not in formats:
            raise _refuse(
                ask,
                formats,
                f"the outputs take {facts.nbytes} bytes, over the inline JSON limit of "
                f"{ask.inline_max_bytes}; ask for application/x-npz or one output",
                facts,
            )
        return Inline(tuple(facts.outputs.values()), several=True)
    if fmt == Format.NPZ:
        return Npz(tuple(facts.outputs.values()))
    raise _refuse(
        ask,
        formats,
        f"a job with several outputs has no single {fmt.value}; "
        f"ask one output: {_outputs_hint(ask)}",
        facts,
    )


def png_mode(out: OutputFacts) -> str | None:
    """How to make a PNG of an output: its stored PNG, the image array encoded,
    a colormap; None when there is no PNG for it."""
    if out.kind == "image" and is_image_shape(out.dtype, out.shape):
        return "stored" if out.png_key else "encode"
    if out.renderable and len(out.shape) == 2:
        return "colormap"
    return None


def links(ask: Ask, formats: list[str], facts: ResultFacts | None = None) -> dict[str, object]:
    """Where the formats there are can be had."""
    found: dict[str, object] = {fmt: f"{ask.base}?format={fmt}" for fmt in formats}
    if facts is not None and facts.multi and ask.output is None:
        found["outputs"] = {name: f"/jobs/{ask.job_id}/outputs/{name}" for name in facts.outputs}
    else:
        found["url"] = f"{ask.base}/url"
    return found


def _refuse(
    ask: Ask, formats: list[str], message: str, facts: ResultFacts | None = None
) -> NotAcceptable:
    return NotAcceptable(message, links(ask, formats, facts))


def _outputs_hint(ask: Ask) -> str:
    return f"/jobs/{ask.job_id}/outputs/{{name}}"


def _itemsize(dtype: str) -> int:
    import numpy as np

    return np.dtype(dtype).itemsize


def choose_format(query_format: str | None, accept: str | None) -> Format | None:
    """The format asked for: `?format=` wins over `Accept`. None when nothing
    acceptable is offered (406)."""
    if query_format:
        try:
            return Format(query_format)
        except ValueError:
            return None
    if not accept or not accept.strip():
        return Format.AUTO
    for media_type in _by_preference(accept):
        if media_type in MEDIA_TYPES:
            return MEDIA_TYPES[media_type]
    return None


def _by_preference(accept: str) -> list[str]:
    """Media types of an Accept header, highest q first (stable), q=0 dropped."""
    ranked = []
    for position, item in enumerate(accept.split(",")):
        media_type, *options = (part.strip() for part in item.split(";"))
        quality = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_type and quality > 0:
            ranked.append((-quality, position, media_type.lower()))
    return [media_type for _, _, media_type in sorted(ranked)]
