"""The dump file: backup writes it, inspect_dump checks it, restore loads it.

The format (``contextstore-dump``, version :data:`DUMP_FORMAT_VERSION`) is
described in the package docstring.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from contextstore.errors import ContextStoreError, ValidationError

from .copy import (
    _checks,
    _clear,
    _counts,
    _insert,
    _Mismatch,
    _opened,
    _prepare_target,
    _readable,
    _require_file,
    _reset_identities,
    _revisions,
    _source_revision,
)
from .reader import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_CHARS,
    Fetch,
    ProgressSink,
    _check_batch_size,
    _digests,
    _fetch_from,
    _fetch_on,
    _KeysetReader,
    _NoProgress,
)
from .tables import SPECS, DataReport, TableDigest, _Digester, _Spec

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from contextstore.settings import Settings

DUMP_FORMAT = "contextstore-dump"
DUMP_FORMAT_VERSION = 1
_GZIP_LEVEL = 6
_LINE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class DumpInfo:
    """A checked dump file: its header and what its trailer vouches for."""

    path: str
    header: Mapping[str, Any]
    digests: Mapping[str, TableDigest]

    @property
    def revision(self) -> str:
        return str(self.header["schema_revision"])


# -- backup --------------------------------------------------------------


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contextstore")
    except PackageNotFoundError:
        return "unknown"


def _header(revision: str, dialect: str) -> dict[str, Any]:
    return {
        "format": DUMP_FORMAT,
        "format_version": DUMP_FORMAT_VERSION,
        "schema_revision": revision,
        "contextstore_version": _version(),
        "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "dialect": dialect,
        "tables": {spec.name: [col.name for col in spec.columns] for spec in SPECS},
    }


async def backup(
    settings: Settings,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressSink | None = None,
) -> DataReport:
    """Write every table of the database to a dump file, then check the file.

    The file appears only when complete (written beside it, then renamed); it
    is read back and its counts and checksums compared with what was written.

    Raises:
        ContextStoreError: the file exists (and not ``overwrite``), cannot be
            written, or the database cannot be read.
    """
    _check_batch_size(batch_size)
    sink = progress or _NoProgress()
    started = time.perf_counter()
    final = Path(path)
    _check_new_file(final, overwrite)
    _require_file(settings, "database")
    partial = final.with_name(f".{final.name}.partial")
    async with _opened(settings) as (db,):
        revision = await _source_revision(db, "database")
        totals = await _counts(db)
        try:
            with _open_dump_for_writing(partial) as out:
                out.write(_LINE.encode(_header(revision, db.dialect)) + "\n")
                written: dict[str, TableDigest] = {}
                for spec in SPECS:
                    sink.begin(spec.name, totals[spec.name])
                    written[spec.name] = await _dump_table(
                        _fetch_from(db), out, spec, batch_size, sink
                    )
                trailer = {
                    "rows": {name: d.rows for name, d in written.items()},
                    "sha256": {name: d.sha256 for name, d in written.items()},
                }
                out.write(_LINE.encode({"trailer": trailer}) + "\n")
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    sink.begin("check file", sum(totals.values()))
    try:
        info = inspect_dump(partial, progress=sink, label="check file")
        _rename(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return DataReport(
        "backup",
        settings.safe_url,
        str(final),
        revision,
        _checks(written, info.digests),
        True,
        time.perf_counter() - started,
    )


def _check_new_file(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise ContextStoreError(f"{path} already exists; pass --force to overwrite it")


@contextlib.contextmanager
def _open_dump_for_writing(path: Path) -> Iterator[TextIO]:
    try:
        # opened apart from the `with` below: an error opening is not an error writing
        raw = gzip.open(  # noqa: SIM115
            path, "wt", encoding="utf-8", newline="\n", compresslevel=_GZIP_LEVEL
        )
    except OSError as exc:
        raise ContextStoreError(
            f"cannot write {path.name} in {path.parent}: {exc.strerror}"
        ) from exc
    try:
        with raw:
            yield raw
    except OSError as exc:
        raise ContextStoreError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _rename(partial: Path, final: Path) -> None:
    try:
        partial.replace(final)
    except OSError as exc:
        raise ContextStoreError(f"cannot write {final}: {exc.strerror or exc}") from exc


async def _dump_table(
    fetch: Fetch, out: TextIO, spec: _Spec, batch_size: int, progress: ProgressSink
) -> TableDigest:
    digester = _Digester()
    reader = _KeysetReader(fetch, spec, batch_size)
    prefix = f'{{"table":{json.dumps(spec.name)},"row":'
    async with contextlib.aclosing(reader.batches()) as batches:
        async for rows in batches:
            lines: list[str] = []
            for row in rows:
                encoded = spec.encode(row)
                line = spec.canonical(encoded)
                reader.observe(line)
                digester.add(line)
                lines.append(f"{prefix}{_LINE.encode(encoded)}}}\n")
            out.write("".join(lines))
            progress.advance(spec.name, len(rows))
    return digester.result()


# -- reading a dump ------------------------------------------------------


class _DumpReader:
    """Reads and checks a dump file line by line (bounded memory).

    ``rows()`` yields ``(spec, values, line length)`` in file order and checks the table
    order, every row, and the trailer (counts and checksums of the rows read).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header: dict[str, Any] = {}
        self.digests: dict[str, TableDigest] = {}
        self._lineno = 0

    def _where(self) -> str:
        return f"{self.path.name} line {self._lineno}"

    def _bad(self, problem: str) -> ValidationError:
        return ValidationError(f"{self._where()}: {problem}")

    @contextlib.contextmanager
    def _file(self) -> Iterator[TextIO]:
        try:
            raw = gzip.open(self.path, "rt", encoding="utf-8", newline="\n")  # noqa: SIM115
        except OSError as exc:
            raise ValidationError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        try:
            with raw:
                yield raw
        except gzip.BadGzipFile as exc:
            if self._lineno == 0:
                raise ValidationError(
                    f"{self.path} is not a {DUMP_FORMAT} file (not gzip-compressed)"
                ) from exc
            raise ValidationError(
                f"{self.path} is damaged (after line {self._lineno}): {exc}"
            ) from exc
        except (EOFError, zlib.error, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"{self.path} is damaged or truncated (after line {self._lineno}): "
                f"{_describe_read_error(exc)}"
            ) from exc
        except OSError as exc:
            raise ValidationError(f"cannot read {self.path}: {exc.strerror or exc}") from exc

    def _parse(self, line: str) -> Any:
        try:
            return json.loads(line)
        except ValueError:
            raise self._bad("not a JSON line (damaged file?)") from None

    def _check_header(self, line: str) -> dict[str, Any]:
        try:
            header = json.loads(line)
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != DUMP_FORMAT:
            raise ValidationError(f"{self.path} is not a {DUMP_FORMAT} file (no header line)")
        version = header.get("format_version")
        if version != DUMP_FORMAT_VERSION:
            raise ValidationError(
                f"{self.path}: dump format version {version!r} is not supported "
                f"(this contextstore reads version {DUMP_FORMAT_VERSION})"
            )
        _baseline, head, known = _revisions()
        revision = header.get("schema_revision")
        if not isinstance(revision, str) or not _readable(revision, head):
            kind = "an older" if revision in known else "an unknown"
            raise ValidationError(
                f"{self.path} was made at {kind} schema revision {revision!r}; this "
                f"contextstore restores dumps of revision {head} and of the revisions it "
                "reads as that one only. Restore it with "
                "the contextstore release that made it, run 'db upgrade', and back up again"
            )
        expected = {spec.name: [col.name for col in spec.columns] for spec in SPECS}
        if header.get("tables") != expected:
            raise ValidationError(
                f"{self.path}: the header's tables and columns differ from revision {head}'s"
            )
        return header

    def rows(self) -> Iterator[tuple[_Spec, dict[str, Any], int]]:
        with self._file() as lines:
            first = lines.readline()
            self._lineno = 1
            self.header = self._check_header(first)
            order = {spec.name: index for index, spec in enumerate(SPECS)}
            digesters = {spec.name: _Digester() for spec in SPECS}
            current = -1
            trailer: Any = None
            for line in lines:
                self._lineno += 1
                if trailer is not None:
                    raise self._bad("data after the trailer")
                item = self._parse(line)
                if not isinstance(item, dict):
                    raise self._bad("expected a JSON object")
                if item.keys() == {"trailer"}:
                    trailer = item["trailer"]
                    continue
                if item.keys() != {"table", "row"} or item["table"] not in order:
                    raise self._bad('expected {"table": <contextstore table>, "row": {...}}')
                position = order[item["table"]]
                if position < current:
                    raise self._bad(f"{item['table']} rows after {SPECS[current].name} rows")
                current = position
                spec = SPECS[position]
                values = spec.decode(item["row"], self._where())
                digesters[spec.name].add(spec.line(values))
                yield spec, values, len(line)
            if trailer is None:
                raise ValidationError(
                    f"{self.path} is truncated: no trailer after line {self._lineno}"
                )
            self.digests = {name: d.result() for name, d in digesters.items()}
            self._check_trailer(trailer)

    def _check_trailer(self, trailer: Any) -> None:
        try:
            vouched = {
                spec.name: TableDigest(
                    int(trailer["rows"][spec.name]), str(trailer["sha256"][spec.name])
                )
                for spec in SPECS
            }
        except (KeyError, TypeError, ValueError):
            raise self._bad("the trailer must hold rows and sha256 for every table") from None
        wrong = [name for name, digest in vouched.items() if self.digests[name] != digest]
        if wrong:
            raise ValidationError(
                f"{self.path}: the rows read do not match the trailer's counts and checksums "
                f"for {', '.join(wrong)} (damaged or edited file)"
            )


def _describe_read_error(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "the compressed stream ends early"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(exc) or type(exc).__name__


def inspect_dump(
    path: str | os.PathLike[str],
    *,
    progress: ProgressSink | None = None,
    label: str = "check file",
) -> DumpInfo:
    """Read a whole dump file and check it; nothing is written anywhere.

    Raises:
        ValidationError: the file is unreadable, not a dump, of another format
            version or schema revision, damaged, truncated, or its rows do
            not match its trailer.
    """
    sink = progress or _NoProgress()
    reader = _DumpReader(Path(path))
    pending = 0
    for _spec, _values, _size in reader.rows():
        pending += 1
        if pending == DEFAULT_BATCH_SIZE:
            sink.advance(label, pending)
            pending = 0
    sink.advance(label, pending)
    return DumpInfo(str(path), reader.header, reader.digests)


# -- restore -------------------------------------------------------------


async def restore(
    settings: Settings,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressSink | None = None,
) -> DataReport:
    """Load a dump file into the database, verified against the file's trailer.

    The file is checked whole before the database is touched. The database is
    migrated to the newest revision; clearing (``force``), every insert and
    the verification run in one transaction.

    Raises:
        ValidationError: the file is not a good dump (see :func:`inspect_dump`);
            nothing was written.
        ConflictError: the database holds rows and ``force`` is False.
        ContextStoreError: a database error (the transaction rolled back).
    """
    _check_batch_size(batch_size)
    sink = progress or _NoProgress()
    started = time.perf_counter()
    source = Path(path)
    sink.begin("check file", None)
    info = inspect_dump(source, progress=sink, label="check file")
    counts = {name: digest.rows for name, digest in info.digests.items()}
    async with _opened(settings) as (db,):
        filled = await _prepare_target(db, force=force)
        try:
            async with db.transaction() as conn:
                if filled:
                    await _clear(conn)
                await _load_dump(conn, _DumpReader(source), counts, batch_size, sink)
                found = await _digests(_fetch_on(conn), counts, batch_size, sink, "verify")
                checks = _checks(info.digests, found)
                if not all(check.ok for check in checks):
                    raise _Mismatch(checks)
        except _Mismatch as failed:
            return DataReport(
                "restore",
                str(source),
                settings.safe_url,
                info.revision,
                failed.checks,
                False,
                time.perf_counter() - started,
            )
        await _reset_identities(db)
    return DataReport(
        "restore",
        str(source),
        settings.safe_url,
        info.revision,
        checks,
        True,
        time.perf_counter() - started,
    )


async def _load_dump(
    conn: AsyncConnection,
    reader: _DumpReader,
    counts: Mapping[str, int],
    batch_size: int,
    progress: ProgressSink,
) -> None:
    batch: list[dict[str, Any]] = []
    chars = 0
    current: _Spec | None = None

    async def flush() -> None:
        nonlocal batch, chars
        if current is not None and batch:
            await conn.execute(_insert(conn, current), current.derive(batch))
            progress.advance(current.name, len(batch))
        batch, chars = [], 0

    for spec, values, size in reader.rows():
        if spec is not current:
            await flush()
            current = spec
            progress.begin(spec.name, counts[spec.name])
        batch.append(values)
        chars += size
        if len(batch) >= batch_size or chars >= MAX_BATCH_CHARS:
            await flush()
    await flush()
