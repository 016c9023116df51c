"""Server-sent events, parsed line by line (the subset of the spec the API sends)."""

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class Event:
    event: str
    data: str

    def json(self) -> Any:
        return orjson.loads(self.data)


@dataclass
class EventParser:
    """Feed it lines without their line ending; it returns an event at each blank line."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> Event | None:
        event = Event(self._event or "message", "\n".join(self._data)) if self._data else None
        self._event, self._data = "", []
        return event
