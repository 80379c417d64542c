"""read_wedding_dates: the known wedding calendar from a CSV or JSON file.

The one module of the capacity package that reads files, so the advisor stays pure.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from wedsync_otel.calendar import parse_wedding_date

_DATE_KEYS: Final = ("wedding_date", "date")


def read_wedding_dates(path: str | Path) -> tuple[dt.date, ...]:
    """Wedding dates from a CSV or JSON file, sorted and without repeats.

    CSV: a header row with a ``wedding_date`` or ``date`` column (other columns are ignored).
    JSON: a list of ``"YYYY-MM-DD"`` strings, or of objects with a ``wedding_date`` or ``date``
    key. A bad value raises `ValueError` naming the file and the line or item.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return _dates_from_csv(file)
    if suffix == ".json":
        return _dates_from_json(file)
    raise ValueError(f"{file}: a weddings file must be .csv or .json")


def _dates_from_csv(file: Path) -> tuple[dt.date, ...]:
    with file.open(newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{file}: empty; expected a header with a wedding_date column")
        columns = [name.strip().lower() for name in header]
        column = next((columns.index(key) for key in _DATE_KEYS if key in columns), None)
        if column is None:
            raise ValueError(f"{file}:1: no wedding_date or date column in the header")
        dates = set()
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            value = row[column].strip() if column < len(row) else ""
            dates.add(_date(value, f"{file}:{reader.line_num}"))
    return tuple(sorted(dates))


def _dates_from_json(file: Path) -> tuple[dt.date, ...]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise ValueError(f"{file}: expected a JSON list of dates or of objects with a date")
    dates = set()
    for index, item in enumerate(data):
        where = f"{file}: item {index}"
        value: object = item
        if isinstance(item, Mapping):
            key = next((k for k in _DATE_KEYS if k in item), None)
            if key is None:
                raise ValueError(f"{where}: no wedding_date or date key")
            value = item[key]
        dates.add(_date(value, where))
    return tuple(sorted(dates))


def _date(value: object, where: str) -> dt.date:
    parsed = parse_wedding_date(value)
    if parsed is None:
        raise ValueError(f"{where}: not a date YYYY-MM-DD: {value!r}")
    return parsed
