"""A JSON object read member by member from a text stream, for documents too big to hold whole
(a 100k-pod Workflow status is about 250 MB of JSON, several GB as Python objects).

    s = Stream(f)
    for key in s.members():      # the keys of the object here, in order
        if key == "nodes":
            for node_id in s.members():
                node = s.value()   # one member's value, decoded by json's C decoder
        else:
            s.value()              # every key's value must be read (value or members) in turn

The text is read in chunks (CHUNK characters, more while one value is longer than the buffer, so
a long value costs linear time); each value is decoded by json.JSONDecoder.raw_decode where it
starts. Malformed text is a DataError naming the character where it went wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Protocol

from .errors import DataError

CHUNK = 1 << 20
_SPACE = re.compile(r"[ \t\n\r]*")
_KEY = re.compile(r'[ \t\n\r]*"([^"\\]*)"[ \t\n\r]*:[ \t\n\r]*')  # a key without escapes
_NEXT = re.compile(r"[ \t\n\r]*([,}])")


class Readable(Protocol):
    def read(self, n: int, /) -> str: ...


class Stream:
    def __init__(self, f: Readable, what: str = "the input", chunk: int = CHUNK):
        self.f, self.what, self.chunk = f, what, chunk
        self.buf, self.pos, self.offset, self.eof = "", 0, 0, False
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        """Read on; False at the end of the text."""
        if self.eof:
            return False
        try:
            data = self.f.read(max(self.chunk, len(self.buf) - self.pos))
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.what} is not UTF-8 text: {exc.reason}") from None
        if not data:
            self.eof = True
            return False
        self.buf, self.offset, self.pos = self.buf[self.pos :] + data, self.offset + self.pos, 0
        return True

    def _peek(self) -> str:
        """The next character that is not white space ("" at the end)."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def _bad(self, expected: str) -> DataError:
        found = self._peek()
        where = f"character {self.offset + self.pos}"
        got = repr(found) if found else "the end of the text"
        return DataError(f"{self.what} is not the JSON expected: {expected} at {where}, got {got}")

    def peek(self) -> str:
        """The first character of the next value: '{' for an object, '[' for a list, ..."""
        return self._peek()

    def value(self) -> Any:
        self._peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self._more():  # the value may run on past the buffer
                    continue
                where = self.offset + exc.pos
                raise DataError(
                    f"{self.what} is not JSON: {exc.msg} at character {where}"
                ) from None
            if end == len(self.buf) and self._more():  # a number may go on in the next chunk
                continue
            self.pos = end
            return value

    def members(self) -> Iterator[str]:
        """The keys of the object that starts here; after each, read its value."""
        if not self._open():
            return
        while True:
            yield self._key()
            if self._close():
                return

    def items(self) -> Iterator[tuple[str, Any]]:
        """(key, value) of each member of the object that starts here: members() and value(),
        twice as fast on many small members (a status's nodes) by matching keys and commas with
        one regular expression each, where the buffer holds the whole member."""
        if not self._open():
            return
        decode, buf = self.decoder.raw_decode, self.buf
        while True:
            key = _KEY.match(buf, self.pos)
            if key is not None and key.end() < len(buf):
                try:
                    value, end = decode(buf, key.end())
                except json.JSONDecodeError:
                    end = len(buf)  # perhaps cut by the buffer's end: the slow way
                following = _NEXT.match(buf, end) if end < len(buf) else None
                if following is not None:
                    self.pos = following.end()
                    yield key.group(1), value
                    if following.group(1) == "}":
                        return
                    continue
            done, member = self._member()
            yield member
            if done:
                return
            buf = self.buf

    def _member(self) -> tuple[bool, tuple[str, Any]]:
        """One member read the slow way, across chunks: (the object ended, (key, value))."""
        key = self._key()
        value = self.value()
        return self._close(), (key, value)

    def _open(self) -> bool:
        """Into the object that starts here; False (and past it) if it is empty."""
        if self._peek() != "{":
            raise self._bad("an object")
        self.pos += 1
        if self._peek() == "}":
            self.pos += 1
            return False
        return True

    def _key(self) -> str:
        """A member's key, and the colon after it."""
        if self._peek() != '"':
            raise self._bad("a key")
        key = self.value()
        if self._peek() != ":":
            raise self._bad("':'")
        self.pos += 1
        return key

    def _close(self) -> bool:
        """Past the comma or brace after a member's value: True if the object ended."""
        following = self._peek()
        if following not in (",", "}"):
            raise self._bad("',' or '}'")
        self.pos += 1
        return following == "}"

    def end(self) -> None:
        """Nothing but white space may follow the document."""
        if self._peek():
            raise self._bad("the end of the text")
