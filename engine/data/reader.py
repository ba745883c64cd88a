"""Reading order-line, catalogue and customer files into frames of strings.

Everything is read as text first (no type inference) so that validation can
name the exact row whose value is bad. Row numbers are as a spreadsheet shows
them: the header is row 1, the first data row is row 2; ``read_table`` keeps
them in the frame's index.
"""

from __future__ import annotations

import codecs
import gzip
import io
import logging
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from engine.errors import DataValidationError, Issue

log = logging.getLogger(__name__)

DELIMITERS = (",", ";", "\t", "|")
_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls


@dataclass(frozen=True)
class InputFile:
    """An uploaded file: its name (for messages) and its raw bytes."""

    name: str
    data: bytes = field(repr=False)


Source = str | Path | InputFile


@dataclass(frozen=True)
class Table:
    """One file read as text.

    ``frame`` holds strings only ("" for empty cells); its index is the
    spreadsheet row number (header = row 1). ``decimal_comma`` is True when the
    file uses ";" with "2,55"-style numbers, so numeric columns parse with ",".
    """

    name: str
    frame: pd.DataFrame
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal_comma: bool = False
    sheet: str | None = None
    warnings: tuple[Issue, ...] = ()


def source_name(source: Source) -> str:
    return source.name if isinstance(source, InputFile) else Path(source).name


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, InputFile):
        return source.data
    return Path(source).read_bytes()


def read_table(source: Source, sheet: str | None = None) -> Table:
    """Read a CSV, XLSX or Parquet file (path or uploaded bytes) as text.

    Raises DataValidationError with one Issue naming the file when it cannot
    be read (missing, empty, binary, unreadable).
    """
    name = source_name(source)
    table = None if isinstance(source, InputFile) else _read_csv_file(name, Path(source))
    if table is not None:
        return _checked(table, ())
    try:
        data = _read_bytes(source)
    except OSError as exc:
        raise _fail(name, "unreadable", f"cannot open the file ({exc.strerror or exc})",
                    "check the path and that the file is readable") from exc
    if not data or data.isspace():  # isspace stops at the first character that is not
        raise _fail(name, "empty_file", "the file is empty",
                    "export the order lines again, with a header row and data rows")
    try:
        table, warnings = _read_packed_csv(name, data)
        if table is None:
            data, warnings = _unpack(name, data)
            table = _read_unpacked(name, data, sheet)
    except DataValidationError:
        raise
    except Exception as exc:  # any parser failure becomes an issue naming the file
        log.info("reading %s failed", name, exc_info=True)
        raise _fail(name, "unreadable", f"the file could not be read as CSV or XLSX ({exc})",
                    "save it as UTF-8 CSV or as XLSX") from exc
    return _checked(table, warnings)


def _checked(table: Table, warnings: tuple[Issue, ...]) -> Table:
    if table.frame.empty:
        raise _fail(table.name, "no_rows", "the file has a header but no data rows",
                    "export the data rows too")
    if warnings:
        table = replace(table, warnings=(*warnings, *table.warnings))
    return table


def _read_csv_file(name: str, path: Path) -> Table | None:
    """A plain UTF-8 CSV file read by pyarrow from the disk, without reading it
    into Python first; None for anything else (packed, binary, another encoding,
    unreadable...), which ``read_table`` then reads as before."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
        if not head or head.isspace() or head.startswith(
                (_GZIP_MAGIC, _ZIP_MAGIC, _PARQUET_MAGIC, _OLE_MAGIC)):
            return None
        with pa.OSFile(str(path)) as stream:
            return _read_csv_arrow(name, head, len(head) < _HEAD_BYTES, stream)
    except Exception:
        log.debug("could not read %s directly", name, exc_info=True)
        return None


def _read_unpacked(name: str, data: bytes, sheet: str | None) -> Table:
    if data.startswith(_ZIP_MAGIC):
        return _read_xlsx(name, data, sheet)
    if data.startswith(_PARQUET_MAGIC):
        return _with_row_index(name, pd.read_parquet(io.BytesIO(data)))
    if data.startswith(_OLE_MAGIC):
        raise _fail(name, "unsupported_format", "legacy .xls files are not supported",
                    "save the sheet as .xlsx or .csv")
    return _read_csv(name, data)


_GZIP_MAGIC = b"\x1f\x8b"
_TEXT_MEMBERS = (".csv", ".txt", ".tsv", ".parquet", ".xlsx")


def _unpack(name: str, data: bytes) -> tuple[bytes, tuple[Issue, ...]]:
    """The file inside a gzip or a zip archive (an XLSX, itself a zip, stays as it
    is); a note says which member was read when the archive holds several."""
    if data.startswith(_GZIP_MAGIC):
        try:
            return gzip.decompress(data), ()
        except (OSError, EOFError) as exc:
            raise _fail(name, "unreadable", f"the gzip file could not be unpacked ({exc})",
                        "export it again, or upload the CSV itself") from exc
    member = _zip_member(name, data)
    if member is None:
        return data, ()
    archive, chosen, notes = member
    return archive.read(chosen), notes


def _zip_member(name: str, data: bytes) -> tuple[zipfile.ZipFile, str, tuple[Issue, ...]] | None:
    """The archive and the member of it that is read, with the note on the others;
    None for a file that is not a zip or is an XLSX workbook."""
    if not data.startswith(_ZIP_MAGIC) or name.lower().endswith((".xlsx", ".xlsm")):
        return None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise _fail(name, "unreadable", f"the zip file could not be opened ({exc})",
                    "export it again, or upload the CSV itself") from exc
    members = archive.namelist()
    if "[Content_Types].xml" in members:  # an XLSX workbook
        return None
    tables = [m for m in members if m.lower().endswith(_TEXT_MEMBERS)
              and not m.startswith(("__MACOSX/", "."))]
    if not tables:
        raise _fail(name, "no_table_in_zip", f"the zip holds no CSV, XLSX or Parquet file "
                    f"(it holds {members[:5]})", "zip the CSV export itself")
    chosen = max(tables, key=lambda m: archive.getinfo(m).file_size)
    notes = ()
    if len(tables) > 1:
        notes = (Issue(name, None, "zip_members", f"read {chosen!r}, the largest of "
                       f"{len(tables)} files in the archive; ignored {[t for t in tables if t != chosen]}",
                       hint="zip one table per file, or upload the files themselves"),)
    return archive, chosen, notes


def _read_packed_csv(name: str, data: bytes) -> tuple[Table | None, tuple[Issue, ...]]:
    """A zipped or gzipped UTF-8 CSV read by pyarrow as it is unpacked (the two
    overlap, on two threads), with the zip's note; (None, ()) for anything
    ``_unpack`` and the readers after it take, and for any failure, which they
    then report as before."""
    if data.startswith(_GZIP_MAGIC):
        def opener():
            return gzip.GzipFile(fileobj=io.BytesIO(data))
        notes = ()
    else:
        member = _zip_member(name, data)  # raises as _unpack would
        if member is None:
            return None, ()
        archive, chosen, notes = member

        def opener():
            return archive.open(chosen)
    try:
        with opener() as stream:
            head = stream.read(_HEAD_BYTES)
        if head.startswith((_ZIP_MAGIC, _PARQUET_MAGIC, _OLE_MAGIC)):
            return None, ()
        with opener() as stream:
            table = _read_csv_arrow(name, head, len(head) < _HEAD_BYTES, stream)
    except Exception:  # a broken archive: _unpack names what is wrong
        log.debug("could not stream %s", name, exc_info=True)
        return None, ()
    return table, (notes if table is not None else ())


def _fail(name: str, rule: str, message: str, hint: str, column: str | None = None,
          rows: tuple[int, ...] = ()) -> DataValidationError:
    return DataValidationError([Issue(name, column, rule, message, rows, hint)])


def decode(name: str, data: bytes) -> tuple[str, str]:
    """Text of the file and the encoding used.

    UTF-8 (with or without BOM) and UTF-16 with BOM are recognised directly;
    otherwise charset-normalizer guesses from the start of the file, with
    cp1252 then latin-1 (which decodes any byte) as fallbacks, since shop
    exports from Excel are mostly one of those.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    head = data[:8192]
    if b"\x00" in head:
        raise _fail(name, "binary", "the file is binary, not text (CSV) or XLSX",
                    "upload the order lines as CSV or XLSX")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    candidates = []
    try:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(data[:200_000]))
        if matches:
            # on short text many code pages tie, or none shows a language; then
            # prefer cp1252, the code page of most Western shop exports
            rank = {m.encoding: (m.chaos, -m.coherence) for m in matches}
            top = min(rank.values())
            tied = [e for e, r in rank.items() if r == top]
            weak = -top[1] < 0.2
            candidates.append("cp1252" if "cp1252" in tied or weak else tied[0])
    except Exception:  # the guess is only a hint
        log.debug("charset-normalizer failed on %s", name, exc_info=True)
    for enc in [*candidates, "cp1252", "latin-1"]:
        try:
            return data.decode(enc), enc
        except (UnicodeDecodeError, LookupError):
            continue
    raise AssertionError("latin-1 decodes any byte string")  # pragma: no cover


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\r\n\t")
    return control > max(5, len(sample) // 50)


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the same number (> 1) of fields."""
    lines = [ln for ln in text[:65536].splitlines()[:20] if ln.strip()]
    if not lines:
        return ","
    best, best_score = ",", 0
    for delim in DELIMITERS:
        counts = [ln.count(delim) for ln in lines]
        if counts[0] == 0:
            continue
        # consistent counts win over frequent ones (a comma inside text is not a delimiter)
        score = sum(c == counts[0] for c in counts) * 1000 + counts[0]
        if score > best_score:
            best, best_score = delim, score
    return best


_HEAD_BYTES = 4 * 65536  # at least the 65,536 characters sniff_delimiter looks at


def _read_csv_fast(name: str, data: bytes) -> Table | None:
    """The common case read with pyarrow's CSV reader straight into arrow strings:
    UTF-8 text (checked by arrow, which is far faster than decoding it in Python)
    that pyarrow parses. None for anything else (another encoding, binary content,
    ragged rows, empty or repeated header names), which ``_read_csv`` reads as
    before; what comes out is what that path gives for the same file."""
    buffer = pa.py_buffer(data)
    whole = pa.Array.from_buffers(
        pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, len(data)], np.int64)), buffer])
    try:
        whole.cast(pa.large_string())  # validates UTF-8
    except pa.ArrowInvalid:
        return None
    return _read_csv_arrow(name, data[:_HEAD_BYTES], len(data) <= _HEAD_BYTES,
                           pa.BufferReader(buffer))


def _read_csv_arrow(name: str, head: bytes, whole: bool, source) -> Table | None:
    """pyarrow's read of ``source`` (a buffer, or a stream that starts with ``head``)
    when the head looks like UTF-8 text, as ``_read_csv`` would read it; None
    where that could differ. Text that is not UTF-8 further on fails pyarrow's
    own check, so a stream needs no check of its own."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head[:8192]:
        return None
    try:  # the head decodes the same as the start of the whole text
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=whole)
    except UnicodeDecodeError:
        return None
    if _looks_binary(text):
        return None
    delimiter = sniff_delimiter(text)
    if head.startswith(codecs.BOM_UTF8):
        if isinstance(source, pa.BufferReader):
            source.seek(len(codecs.BOM_UTF8))
        else:
            source.read(len(codecs.BOM_UTF8))
    try:
        # as pandas' engine="pyarrow" with dtype=str, keep_default_na=False and
        # skip_blank_lines=False reads it
        arrow = pacsv.read_csv(
            source,
            parse_options=pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                default_column_type=pa.large_string(), null_values=[], strings_can_be_null=False),
        )
    except Exception:  # the slow path reads it, or names what is wrong
        log.debug("pyarrow could not read %s directly", name, exc_info=True)
        return None
    names = arrow.column_names
    if "" in names or len(set(names)) < len(names):  # pandas renames these; the slow path does
        return None
    # one chunk per column: arrow's take on a chunked column first joins the chunks,
    # and validation takes rows from these columns several times
    table = _with_row_index(name, arrow.combine_chunks().to_pandas())
    decimal_comma = delimiter == ";" and _has_decimal_comma(table.frame)
    return Table(name, table.frame, "utf-8", delimiter, decimal_comma)


def _read_csv(name: str, data: bytes) -> Table:
    fast = _read_csv_fast(name, data)
    if fast is not None:
        return fast
    text, encoding = decode(name, data)
    if _looks_binary(text):
        raise _fail(name, "binary", "the file is binary, not text (CSV) or XLSX",
                    "upload the order lines as CSV or XLSX")
    delimiter = sniff_delimiter(text)
    raw = data if encoding == "utf-8" else text.encode("utf-8")
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        # pyarrow's reader is several times faster; blank lines are kept as empty
        # rows (dropped below) so the row numbers stay those of the file
        try:
            frame = pd.read_csv(io.BytesIO(raw), sep=delimiter, dtype=str, keep_default_na=False,
                                skip_blank_lines=False, engine="pyarrow")
        except Exception:  # ragged rows, quoted newlines: the C parser, which names the line
            log.debug("pyarrow could not read %s; using the C parser", name, exc_info=True)
            frame = pd.read_csv(io.BytesIO(raw), sep=delimiter, dtype=str, keep_default_na=False,
                                na_filter=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError as exc:
        raise _fail(name, "empty_file", "the file is empty",
                    "export the order lines again, with a header row") from exc
    except pd.errors.ParserError as exc:
        # the C parser names the file line, which is the spreadsheet row (header = line 1)
        line = re.search(r"line (\d+)", str(exc))
        raise _fail(name, "malformed_rows", f"rows do not all have the same number of fields ({exc})",
                    f"check quoting and that the delimiter {delimiter!r} is not inside unquoted text",
                    rows=(int(line.group(1)),) if line else ()) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    table = _with_row_index(name, frame)
    decimal_comma = delimiter == ";" and _has_decimal_comma(table.frame)
    return Table(name, table.frame, encoding, delimiter, decimal_comma)


def _has_decimal_comma(frame: pd.DataFrame) -> bool:
    """True when some column looks like "2,55" numbers (European export)."""
    head = frame.head(200)
    for col in head.columns:
        values = head[col].astype(str)
        values = values[values != ""]
        if len(values) and values.str.fullmatch(r"-?\d+,\d+").mean() > 0.5:
            return True
    return False


def _with_row_index(name: str, frame: pd.DataFrame) -> Table:
    """Strings everywhere, "" for missing, spreadsheet row numbers as the index."""
    # the frame was just read and is ours: no copy
    frame.columns = [str(c).strip() for c in frame.columns]
    for col in frame.columns:
        s = frame[col]
        if not (pd.api.types.is_string_dtype(s) and not s.hasnans):
            s = s.astype(object).where(s.notna(), "").astype(str)
        frame[col] = s
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="source_row")
    # blank lines carry no data; drop them but keep the row numbers of the rest
    if len(frame.columns):
        maybe = frame.iloc[:, 0] == ""  # cheap first look, full check on those rows only
        if maybe.any():
            blank = frame.loc[maybe].eq("").all(axis=1)
            if blank.any():
                frame = frame.drop(index=blank.index[blank])
    return Table(name, frame)


def _read_xlsx(name: str, data: bytes, sheet: str | None) -> Table:
    """The sheet that looks like order lines (or the first with data)."""
    from engine.columns import ORDER_LINE_COLUMNS
    from engine.data.mapping import detect_mapping

    try:
        sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, dtype=str, engine="openpyxl")
    except Exception as exc:
        raise _fail(name, "unreadable", f"the file is a zip archive but not a readable XLSX ({exc})",
                    "save it as .xlsx or .csv from the spreadsheet program") from exc
    filled = {k: v for k, v in sheets.items() if not v.dropna(how="all").empty}
    if sheet is not None:
        if sheet not in sheets:
            raise _fail(name, "missing_sheet", f"no sheet named {sheet!r}; sheets: {list(sheets)}",
                        "pick one of the sheets listed")
        chosen = sheet
    elif not filled:
        raise _fail(name, "no_rows", f"no sheet has data rows (sheets: {list(sheets)})",
                    "put the order lines on a sheet with a header row")
    else:
        # the sheet with the most order-line columns; ties (e.g. none) go to the first
        found = {k: len(set(detect_mapping(v.columns, kind="order_lines").values())
                        & set(ORDER_LINE_COLUMNS)) for k, v in filled.items()}
        chosen = max(found, key=lambda k: (found[k], -list(filled).index(k)))
    warnings = ()
    ignored = [k for k in sheets if k != chosen]
    if ignored:
        warnings = (Issue(name, None, "sheets_ignored",
                          f"read sheet {chosen!r}; ignored sheets {ignored}",
                          hint="put each table in its own file to load it"),)
    table = _with_row_index(name, sheets[chosen])
    return Table(name, table.frame, "xlsx", "", False, chosen, warnings)
