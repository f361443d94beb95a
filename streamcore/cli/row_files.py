"""The (entity, time) rows `streamcore backfill` reads, and the rows with features it writes.

CSV (the header names the columns), JSON lines (an object per line) or Parquet, by the
file's suffix. Parquet needs pyarrow (``pip install 'streamcore[parquet]'``); a Parquet
timestamp column is read as the instant it names, naive ones as UTC, as Parquet defines.
"""

from __future__ import annotations

import csv
import datetime
from pathlib import Path
from typing import Any

import orjson

from streamcore.base.errors import ConfigError
from streamcore.runtime.reset import iso_time_ms

TIME_COLUMNS = ("ts", "timestamp")


def read_rows(path: Path, entity: str) -> list[dict[str, Any]]:
    """The rows of `path`, each with its time as epoch ms in ``_at_ms``."""
    if not path.exists():
        raise ConfigError("--at", f"{path} does not exist")
    rows = _read(path)
    if not rows:
        raise ConfigError("--at", f"{path} has no rows")
    columns = set(rows[0])
    time_column = next((c for c in TIME_COLUMNS if c in columns), None)
    if entity not in columns and "entity" in columns:
        for row in rows:
            row[entity] = row["entity"]
    if entity not in rows[0] or time_column is None:
        raise ConfigError("--at", f"{path} needs a {entity!r} (or 'entity') column and a 'ts' or 'timestamp' column")
    for number, row in enumerate(rows, 1):
        row["_at_ms"] = _time_ms(row.get(time_column), f"{path} row {number}")
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    clean = [{k: v for k, v in row.items() if k != "_at_ms"} for row in rows]
    if path.suffix == ".jsonl":
        path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in clean))
    elif path.suffix == ".parquet":
        pyarrow, parquet = _pyarrow("--out")
        parquet.write_table(pyarrow.Table.from_pylist(clean), path)
    else:
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(clean[0]))
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in clean)


def _read(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        try:
            rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise ConfigError("--at", f"{path} is not JSON lines: {exc}") from None
        if not all(isinstance(row, dict) for row in rows):
            raise ConfigError("--at", f"{path}: every line must be a JSON object")
        return rows
    if path.suffix == ".parquet":
        _, parquet = _pyarrow("--at")
        rows_read: list[dict[str, Any]] = parquet.read_table(path).to_pylist()
        return rows_read
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _time_ms(value: Any, where: str) -> int:
    """A row's time: epoch ms (a number or its digits), an ISO datetime with zone, or a datetime."""
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
        return int(aware.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, str):
        return iso_time_ms(value, "--at", f"{where}: expected epoch milliseconds or an ISO datetime")
    raise ConfigError("--at", f"{where}: the time {value!r} is not epoch milliseconds or an ISO datetime")


def _pyarrow(setting: str) -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ConfigError(setting, "Parquet needs pyarrow: pip install 'streamcore[parquet]'") from None
    return pyarrow, pyarrow.parquet
