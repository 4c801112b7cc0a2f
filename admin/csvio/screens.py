"""Screens: regular expressions over a file's bytes that find every field that could break
a rule on the text as written (csvio.tables.Check.screens), so that a file they find nothing
in can be copied into its table without the text (csvio.direct)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import BinaryIO

SCREEN_BLOCK = 1 << 20
# a screen's match is at most this long (a numeric scale is at most 1,000): blocks overlap by it
SCREEN_OVERLAP = 2048
LONG_BLANK = b" " * 32
# an upload's screens run on the event loop (Screen.take), a slice at a time (about 0.35 ms
# of searching for 64 KB), so the COPY being fed meanwhile waits no longer than that
SCREEN_SLICE = 64 << 10


def screen_patterns(screens: tuple[str, ...], delimiter: str) -> list[re.Pattern[bytes]]:
    """The screens, for a file with this delimiter (searched one by one: each starts with a
    character, which the search skips to at C speed)."""
    escaped = re.escape(delimiter)
    return [re.compile(s.replace("{d}", escaped).encode("ascii")) for s in screens]


def fold_table(delimiter: str) -> bytes:
    """How a file's bytes are folded for the folded screens: digits as 0, `-/.` as -, the
    delimiter, quotes and line breaks as \x01, other white space as a space (then dropped:
    see Screen)."""
    table = bytearray(range(256))
    for digit in b"0123456789":
        table[digit] = ord("0")
    for separator in b"-/.":
        table[separator] = ord("-")
    for space in b" \t\f\v":
        table[space] = ord(" ")
    for start in b'\r\n"' + delimiter.encode("ascii"):
        table[start] = 1
    return bytes(table)


class Screen:
    """The screens over a file's bytes, fed in order in blocks of any size (as they arrive
    or as they are read back); `hit` once any of them finds anything."""

    def __init__(self, screening: Screening) -> None:
        self.screening = screening
        self._patterns = screen_patterns(screening.screens, screening.delimiter)
        self._folded = [re.compile(s.encode("ascii")) for s in screening.folded_screens]
        self._table = fold_table(screening.delimiter)
        self._tail = b"\n"  # the file's first field starts a line
        self.hit = False

    def feed(self, block: bytes) -> None:
        # in slices: the search's copies (joined, folded, squeezed) stay small
        for start in range(0, len(block), SCREEN_SLICE):
            if self.hit:
                return
            self._feed_slice(block, start)

    async def take(self, block: bytes) -> None:
        """feed, on the event loop, letting other tasks run between slices.

        Run in a worker thread instead, the screens took the GIL from the loop while it fed
        an import's COPY: the loop stalled for 3-12 ms some fifty times per 90 MB, and the
        COPY's backend ran dry and waited (csvio.incoming)."""
        for start in range(0, len(block), SCREEN_SLICE):
            if self.hit:
                return
            self._feed_slice(block, start)
            await asyncio.sleep(0)

    def _feed_slice(self, block: bytes, start: int) -> None:
        data = self._tail + block[start : start + SCREEN_SLICE]
        self.hit = self._finds(data)
        self._tail = data[-SCREEN_OVERLAP:]

    def finish(self) -> bool:
        """Whether the screens found anything, once every byte was fed."""
        if not self.hit:
            self.hit = self._finds(self._tail + b"\n")  # the file's last field ends a line
            self._tail = b""
        return self.hit

    def _finds(self, data: bytes) -> bool:
        if any(p.search(data) for p in self._patterns):
            return True
        if self._folded:
            folded = data.translate(self._table)
            # with white space dropped, a screen needs no repetition to see past it (a
            # pattern led by a frequent byte and a repeat is ten times slower); a run longer
            # than anything the blocks' overlap could see past is a hit by itself
            if LONG_BLANK in folded:
                return True
            squeezed = folded.replace(b" ", b"")
            return any(p.search(squeezed) for p in self._folded)
        return False


@dataclass(frozen=True)
class Screening:
    """The screens an import needs, for a file with this delimiter."""

    screens: tuple[str, ...]
    folded_screens: tuple[str, ...]
    delimiter: str


def screen_hits(file: BinaryIO, screening: Screening) -> bool:
    """True when a screen finds anything in the file (read in blocks, from its start)."""
    screen = Screen(screening)
    file.seek(0)
    try:
        while block := file.read(SCREEN_BLOCK):
            screen.feed(block)
            if screen.hit:
                return True
        return screen.finish()
    finally:
        file.seek(0)
