"""The fast ingest paths give exactly what the plain ones give.

pyarrow reads a UTF-8 CSV (from the disk, from bytes, or as a zip or gzip is
unpacked) where pandas used to; the Dataset is built on the codes validation
made; independent column work runs on threads. Each is checked here against
the plain path it replaces, on the committed Online Retail sample reshaped the
ways real exports differ (BOM, CRLF, blank lines, ";" with decimal commas,
another code page, zipped, gzipped, shuffled, no order id, line totals).
"""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

import engine.data.reader as reader
from engine import columns as C
from engine.data import Dataset, InputFile, load_files, read_table
from engine.data.dataset import stable_argsort
from engine.errors import DataValidationError
from tests.conftest import REAL_SAMPLE


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(REAL_SAMPLE, dtype=str, keep_default_na=False)


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _exports(sample: pd.DataFrame) -> dict[str, bytes]:
    """{file name: bytes}: the sample as the shapes of export the loader meets."""
    csv = sample.to_csv(index=False).encode()
    lines = csv.split(b"\n")
    blank = b"\n".join([*lines[:40], b"", *lines[40:300], b",,,,,,,", *lines[300:]])
    decimal = sample.assign(UnitPrice=sample["UnitPrice"].str.replace(".", ",", regex=False))
    no_order = sample.drop(columns=["InvoiceNo"]).sample(frac=1.0, random_state=0)
    totals = sample.assign(line_total=(pd.to_numeric(sample["Quantity"])
                                       * pd.to_numeric(sample["UnitPrice"])).round(2).astype(str),
                           discount="0.05").drop(columns=["UnitPrice"])
    return {
        "plain.csv": csv,
        "bom_crlf.csv": b"\xef\xbb\xbf" + csv.replace(b"\n", b"\r\n"),
        "blank_lines.csv": blank,
        "semicolon.csv": decimal.to_csv(index=False, sep=";").encode(),
        "cp1252.csv": sample.to_csv(index=False).replace("HEART", "C\u0152UR").encode("cp1252"),
        "shuffled.csv": sample.sample(frac=1.0, random_state=1).to_csv(index=False).encode(),
        "no_order_id.csv": no_order.to_csv(index=False).encode(),
        "line_totals.csv": totals.to_csv(index=False).encode(),
        "two_members.zip": _zip({"small.csv": b"\n".join(lines[:50]) + b"\n", "lines.csv": csv}),
        "bom.csv.gz": gzip.compress(b"\xef\xbb\xbf" + csv),
        "ragged.csv": b"\n".join([*lines[:10], lines[10] + b",extra", *lines[11:]]),
    }


def _same(a, b, where: str = "") -> None:
    """Equal values, dtypes, column order and index; sparse matrices array by array."""
    if isinstance(a, pd.DataFrame):
        assert list(a.columns) == list(b.columns), where
        pd.testing.assert_frame_equal(a, b, check_dtype=True, obj=where)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, obj=where)
    elif hasattr(a, "tocsr"):
        assert a.shape == b.shape and a.dtype == b.dtype, where
        for part in ("data", "indices", "indptr"):
            x, y = getattr(a, part), getattr(b, part)
            assert x.dtype == y.dtype and np.array_equal(x, y), f"{where}.{part}"
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        same = (a == b) | (pd.isna(a) & pd.isna(b)) if a.dtype.kind in "fMO" else a == b
        assert np.all(same), where  # NaN and NaT equal themselves
    else:
        assert a == b, where


def _same_dataset(a: Dataset, b: Dataset) -> None:
    for field in ("lines", "products", "customers", "matrix", "baskets", "order_ids",
                  "order_customer", "order_time"):
        _same(getattr(a, field), getattr(b, field), field)


def _same_load(a, b) -> None:
    _same_dataset(a.dataset, b.dataset)
    assert a.report.to_dict() == b.report.to_dict()
    _same(a.report.set_aside_rows, b.report.set_aside_rows, "set_aside_rows")
    _same(a.report.non_merchandise, b.report.non_merchandise, "non_merchandise")
    _same(a.report.outliers, b.report.outliers, "outliers")


def _plain_reader(monkeypatch) -> None:
    """Every file through pandas, as before pyarrow read them directly."""
    monkeypatch.setattr(reader, "_read_csv_arrow", lambda *args, **kwargs: None)


def test_pyarrow_reads_what_pandas_reads(sample, tmp_path, monkeypatch):
    exports = _exports(sample)
    for name, data in exports.items():
        (tmp_path / name).write_bytes(data)
    fast = {name: (_read(tmp_path / name), _read(InputFile(name, data)))
            for name, data in exports.items()}
    _plain_reader(monkeypatch)
    for name, (from_disk, from_bytes) in fast.items():
        plain = _read(InputFile(name, exports[name]))
        for table in (from_disk, from_bytes):
            if isinstance(plain, list):  # the same error
                assert table == plain, name
                continue
            _same(table.frame, plain.frame, name)
            assert (table.encoding, table.delimiter, table.decimal_comma, table.warnings) == (
                plain.encoding, plain.delimiter, plain.decimal_comma, plain.warnings), name
    assert isinstance(fast["ragged.csv"][0], list)  # pandas' C parser names the line


def _read(source):
    """The table, or the issues of the error reading it."""
    try:
        return read_table(source)
    except DataValidationError as exc:
        return exc.issues


@pytest.mark.parametrize("orders", ["day", "timestamp"])
def test_loads_match_the_plain_reader_and_dataset(sample, tmp_path, monkeypatch, orders):
    """load_files with pyarrow, validation's codes and threads against pandas' reader,
    ``Dataset._from_frames_plain`` and one thread."""
    exports = _exports(sample)
    del exports["ragged.csv"]  # the same as plain.csv but for one line (the C parser's)
    files = []
    for name, data in exports.items():
        (tmp_path / name).write_bytes(data)
        files.append(tmp_path / name)
    fast = {f.name: load_files([f], orders=orders) for f in files}
    both = load_files([files[0], files[6]], orders=orders)  # one file with order ids, one without
    _plain_reader(monkeypatch)
    monkeypatch.setenv("ENGINE_THREADS", "1")
    monkeypatch.setattr(Dataset, "_build", classmethod(
        lambda cls, lines, products=None, customers=None, keys=None:
        cls._from_frames_plain(lines, products, customers)))
    for f in files:
        _same_load(fast[f.name], load_files([f], orders=orders))
    _same_load(both, load_files([files[0], files[6]], orders=orders))


def _frames(sample: pd.DataFrame) -> list[tuple]:
    lines = load_files([InputFile("s.csv", sample.to_csv(index=False).encode())]).dataset.lines
    base = lines[[C.ORDER_ID, C.CUSTOMER_ID, C.PRODUCT_ID, C.QUANTITY, C.UNIT_PRICE,
                  C.TIMESTAMP, C.NAME]]
    text_time = base.assign(**{C.TIMESTAMP: base[C.TIMESTAMP].astype(str),
                               C.ORDER_ID: base[C.ORDER_ID].astype(object)})
    some_nat = base.assign(**{C.TIMESTAMP: base[C.TIMESTAMP].where(np.arange(len(base)) % 37 > 0)})
    numbers = pd.DataFrame({C.ORDER_ID: [1, 1, 2, 3], C.CUSTOMER_ID: [10, 10, 11, 10],
                            C.PRODUCT_ID: [5, 6, 5, 5], C.QUANTITY: [1, 2, 1, 1],
                            C.UNIT_PRICE: [1.0, 2.0, 1.5, 1.0],
                            C.TIMESTAMP: ["2024-01-02", "2024-01-02", "2024-01-01", "2024-01-02"]})
    catalogue = pd.DataFrame({C.PRODUCT_ID: ["6", "7"], C.NAME: ["six", ""], C.PRICE: [2.0, np.nan]})
    return [
        (base, None, None),
        (base.sample(frac=1.0, random_state=2), None, None),
        (lines.iloc[::3], None, None),  # a subset, with the indices of the dataset it came from
        (pd.concat([base.head(200), base.head(200)]), None, None),  # repeated index labels
        (text_time, None, None),
        (some_nat, None, None),
        (base.drop(columns=[C.NAME]), None, None),
        (numbers, None, None),
        (numbers, catalogue, pd.DataFrame({C.CUSTOMER_ID: ["10"], "tier": ["gold"]})),
        (base, lines.groupby(C.PRODUCT_ID, as_index=False)[C.NAME].first().head(300), None),
    ]


def test_dataset_on_codes_matches_the_plain_build(sample):
    for i, (lines, products, customers) in enumerate(_frames(sample)):
        fast = Dataset.from_frames(lines, products, customers)
        plain = Dataset._from_frames_plain(lines, products, customers)
        try:
            _same_dataset(fast, plain)
        except AssertionError as exc:
            raise AssertionError(f"frames #{i}: {exc}") from exc


def test_stable_argsort_is_numpy_stable_argsort():
    rng = np.random.default_rng(0)
    for high in (10, 1 << 16, 1 << 20, 1 << 32, 1 << 40):
        key = rng.integers(0, high, 50_000)
        assert np.array_equal(stable_argsort(key), np.argsort(key, kind="stable")), high
    assert np.array_equal(stable_argsort(np.array([3, -1, 3, 0])), [1, 3, 0, 2])
    assert len(stable_argsort(np.zeros(0, np.int64))) == 0


def test_repeated_rows_is_dataframe_duplicated():
    from engine.data.validate import _repeated_rows

    rng = np.random.default_rng(0)
    for width in (2, 50, 1 << 20):  # wide columns make the key renumber before overflowing
        columns = [rng.integers(-1, width, 5_000) for _ in range(6)]
        want = pd.DataFrame(dict(enumerate(columns))).duplicated(keep="first").to_numpy()
        assert want.any() or width > 2
        assert np.array_equal(_repeated_rows(columns), want), width


def test_top_pairs_counts_the_products_with_several_texts():
    from engine.data.dataset import _top_pairs

    rng = np.random.default_rng(1)
    product = rng.integers(0, 40, 2_000)
    text = np.where(product < 20, product % 7, rng.integers(0, 7, 2_000))  # 20 with one text
    ranks = rng.permutation(7)
    got = dict(zip(*_top_pairs(product, text, ranks, 45), strict=True))
    frame = pd.DataFrame({"p": product, "t": text, "r": ranks[text]})
    counts = frame.groupby(["p", "t", "r"]).size().rename("k").reset_index()
    want = counts.sort_values(["p", "k", "r"], ascending=[True, False, True]).drop_duplicates("p")
    assert got == dict(zip(want["p"], want["t"], strict=True))
    assert len(got) == 40  # products 40-44 have no line
