"""JSON documents streamed from a file: JSON lines, or pretty-printed documents one after another.

Nothing here knows OTLP. A file is read a line, or a document, at a time and
never whole, whatever its size, and every byte read is reported once, so the
readers can count and show progress over files larger than memory.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Final

_CHUNK_BYTES: Final = 1 << 20
_NOT_SPACE: Final = re.compile(r"\S")
_TAIL_CHARS: Final = 64
"""A JSON error this close to the end of what was read may be a document cut off: read on."""


def documents(file: Path, tally: Callable[[int], None]) -> Iterator[tuple[int, object]]:
    """Each JSON document in ``file`` with its line: JSON lines, or (pretty) documents.

    Reads line by line; when the first line is not JSON on its own, the file is
    read again as a stream of documents, a chunk at a time. An unfinished last
    line (no newline yet: an exporter is writing it) is skipped. ``tally``
    hears of every byte read, once.
    """
    with file.open("rb") as stream:
        seen = False
        counted = 0
        for number, raw in enumerate(stream, start=1):
            tally(len(raw))
            counted += len(raw)
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{file}: not UTF-8 text") from None
            try:
                document = json.loads(text)
            except json.JSONDecodeError as exc:
                if seen and not raw.endswith(b"\n"):
                    return  # an unfinished last line: an exporter is still writing it
                if seen:
                    raise ValueError(f"{file}:{number}: not valid JSON ({exc.msg})") from None
                stream.seek(0)
                yield from _streamed_documents(file, stream, _recounted(tally, counted))
                return
            seen = True
            yield number, document


def _recounted(tally: Callable[[int], None], counted: int) -> Callable[[int], None]:
    """``tally`` for a second pass over a file, passing over the ``counted`` bytes it heard of."""
    remaining = counted

    def fresh(size: int) -> None:
        nonlocal remaining
        skipped = min(size, remaining)
        remaining -= skipped
        if size > skipped:
            tally(size - skipped)

    return fresh


def _streamed_documents(
    file: Path, stream: IO[bytes], tally: Callable[[int], None]
) -> Iterator[tuple[int, object]]:
    """Documents one after another (pretty-printed, or several on a line), a chunk at a time.

    Only the document being decoded is held, with at most a chunk beyond it:
    when the buffer ends inside a document, what was decoded is dropped and as
    much again as the buffer holds is read (so a large document costs a
    bounded number of attempts), then the document is decoded again.
    """
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8-sig")()
    buffer, position, line, eof = "", 0, 1, False

    def more(keep: str) -> str:
        nonlocal eof
        raw = stream.read(max(_CHUNK_BYTES, len(keep)))
        tally(len(raw))
        eof = not raw
        try:
            return keep + utf8.decode(raw, final=eof)
        except UnicodeDecodeError:
            raise ValueError(f"{file}: not UTF-8 text") from None

    while True:
        found = _NOT_SPACE.search(buffer, position)
        if found is None:
            line += buffer.count("\n", position)
            if eof:
                return
            buffer, position = more(""), 0
            continue
        line += buffer.count("\n", position, found.start())
        position = found.start()
        try:
            document, end = decoder.raw_decode(buffer, position)
        except json.JSONDecodeError as exc:
            cut_off = exc.pos >= len(buffer) - _TAIL_CHARS or exc.msg.startswith("Unterminated")
            if eof or not cut_off:
                where = line + buffer.count("\n", position, exc.pos)
                raise ValueError(f"{file}:{where}: not valid JSON ({exc.msg})") from None
            buffer, position = more(buffer[position:]), 0
            continue
        yield line, document
        line += buffer.count("\n", position, end)
        position = end
