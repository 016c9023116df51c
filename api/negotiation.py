"""Which representation of a result a request asks for. Nothing else."""

from enum import StrEnum


class Format(StrEnum):
    JSON = "json"
    NPY = "npy"
    PNG = "png"
    AUTO = "auto"  # no preference: JSON when small, else a redirect to .npy


MEDIA_TYPES = {
    "application/json": Format.JSON,
    "application/x-npy": Format.NPY,
    "application/octet-stream": Format.NPY,
    "image/png": Format.PNG,
    "*/*": Format.AUTO,
    "application/*": Format.AUTO,
    "image/*": Format.PNG,
}


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
