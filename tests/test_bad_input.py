"""A corpus of bad input files, generated here. Each case ends in a correct
load (the numbers are asserted) or a DataValidationError whose issues name the
file and, where it applies, the column and rows; never another exception.
The CLI exits 2 on each failing case with a message naming the file."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import columns as C
from engine.__main__ import main
from engine.data import InputFile, load_files
from engine.errors import DataValidationError

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
          "CustomerID", "Country"]
# 6 good lines: 3 orders, 2 customers, 4 products
GOOD = [
    ["5001", "85123A", "WHITE HEART", "6", "2011-01-02 10:00:00", "2.55", "17850.0", "United Kingdom"],
    ["5001", "71053", "METAL LANTERN", "2", "2011-01-02 10:00:00", "3.39", "17850.0", "United Kingdom"],
    ["5002", "84406B", "CUPID HANGER", "8", "2011-01-03 11:30:00", "2.75", "13047.0", "France"],
    ["5002", "85123A", "WHITE HEART", "1", "2011-01-03 11:30:00", "2.95", "13047.0", "France"],
    ["5003", "22633", "HAND WARMER", "3", "2011-01-04 09:15:00", "1.85", "17850.0", "United Kingdom"],
    ["5003", "71053", "METAL LANTERN", "4", "2011-01-04 09:15:00", "3.39", "17850.0", "United Kingdom"],
]


def csv_text(rows, header=HEADER, sep=",") -> str:
    return "\n".join(sep.join(r) for r in [header, *rows]) + "\n"


def with_row(i: int, **changes) -> list[list[str]]:
    """GOOD with line i (0-based; spreadsheet row i + 2) changed."""
    rows = [list(r) for r in GOOD]
    for col, value in changes.items():
        rows[i][HEADER.index(col)] = value
    return rows


@dataclass
class Ok:
    rows_kept: int
    set_aside: dict = field(default_factory=dict)
    check: object = None  # callable(LoadResult) with further assertions


@dataclass
class Err:
    rule: str
    file: str
    column: str | None = None
    rows: tuple = ()


def write(tmp: Path, name: str, data: bytes | str) -> Path:
    path = tmp / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --------------------------------------------------------------------- cases
# each returns (files, expectation)


def case_cp1252(tmp):
    rows = with_row(0, Description="CAFÉ £5 MUG – NOËL")
    f = write(tmp, "cp1252.csv", csv_text(rows).encode("cp1252"))

    def check(res):
        assert "CAFÉ £5 MUG – NOËL" in set(res.dataset.products[C.NAME])
    return [f], Ok(6, check=check)


def case_utf16_bom(tmp):
    return [write(tmp, "utf16.csv", csv_text(GOOD).encode("utf-16"))], Ok(6)


def case_utf8_bom(tmp):
    f = write(tmp, "bom.csv", b"\xef\xbb\xbf" + csv_text(GOOD).encode())

    def check(res):
        assert res.report.mapping["bom.csv"]["InvoiceNo"] == C.ORDER_ID
    return [f], Ok(6, check=check)


def case_semicolon_decimal_comma(tmp):
    rows = [[v.replace(".", ",") if k == 5 else v for k, v in enumerate(r)] for r in GOOD]
    f = write(tmp, "semicolon.csv", csv_text(rows, sep=";"))

    def check(res):
        lines = res.dataset.lines
        assert sorted(lines[C.UNIT_PRICE].round(2)) == sorted([2.55, 3.39, 2.75, 2.95, 1.85, 3.39])
    return [f], Ok(6, check=check)


def case_tab(tmp):
    return [write(tmp, "tab.tsv", csv_text(GOOD, sep="\t"))], Ok(6)


def case_pipe(tmp):
    return [write(tmp, "pipe.csv", csv_text(GOOD, sep="|"))], Ok(6)


def case_txt_extension(tmp):
    return [write(tmp, "export.txt", csv_text(GOOD))], Ok(6)


def case_missing_column(tmp):
    header = [h for h in HEADER if h != "UnitPrice"]
    rows = [[v for h, v in zip(HEADER, r, strict=True) if h != "UnitPrice"] for r in GOOD]
    return [write(tmp, "noprice.csv", csv_text(rows, header))], Err(
        "missing_column", "noprice.csv", C.UNIT_PRICE)


def case_empty(tmp):
    return [write(tmp, "empty.csv", b"")], Err("empty_file", "empty.csv")


def case_blank_lines_only(tmp):
    return [write(tmp, "blank.csv", "\n\n  \n")], Err("empty_file", "blank.csv")


def case_header_only(tmp):
    return [write(tmp, "header.csv", ",".join(HEADER) + "\n")], Err("no_rows", "header.csv")


def case_nan_price(tmp):
    return [write(tmp, "nanprice.csv", csv_text(with_row(2, UnitPrice="NaN")))], Ok(
        5, {"bad_price": 1}, check=_rows_aside("bad_price", [4]))


def case_empty_price(tmp):
    return [write(tmp, "noprice_cell.csv", csv_text(with_row(0, UnitPrice="")))], Ok(
        5, {"bad_price": 1}, check=_rows_aside("bad_price", [2]))


def case_negative_price(tmp):
    return [write(tmp, "negprice.csv", csv_text(with_row(1, UnitPrice="-11062.06")))], Ok(
        5, {"bad_price": 1}, check=_rows_aside("bad_price", [3]))


def case_huge_price(tmp):
    return [write(tmp, "hugeprice.csv", csv_text(with_row(5, UnitPrice="9e12")))], Ok(
        5, {"bad_price": 1}, check=_rows_aside("bad_price", [7]))


def case_text_price(tmp):
    return [write(tmp, "textprice.csv", csv_text(with_row(3, UnitPrice="two pounds")))], Ok(
        5, {"bad_price": 1}, check=_rows_aside("bad_price", [5]))


def case_huge_quantity(tmp):
    return [write(tmp, "hugeqty.csv", csv_text(with_row(0, Quantity="50000000")))], Ok(
        5, {"bad_quantity": 1}, check=_rows_aside("bad_quantity", [2]))


def case_text_quantity(tmp):
    return [write(tmp, "textqty.csv", csv_text(with_row(4, Quantity="six")))], Ok(
        5, {"bad_quantity": 1}, check=_rows_aside("bad_quantity", [6]))


def case_fraction_and_zero_quantity(tmp):
    rows = with_row(4, Quantity="2.5")
    rows[5][3] = "0"
    return [write(tmp, "fracqty.csv", csv_text(rows))], Ok(
        4, {"bad_quantity": 2}, check=_rows_aside("bad_quantity", [6, 7]))


def case_return_and_cancelled(tmp):
    rows = with_row(0, Quantity="-6")
    rows[1][0], rows[1][3] = "C5001", "-2"
    return [write(tmp, "returns.csv", csv_text(rows))], Ok(
        4, {"return": 1, "cancelled": 1})


def case_missing_customer(tmp):
    return [write(tmp, "nocust.csv", csv_text(with_row(2, CustomerID="")))], Ok(
        5, {"missing_customer": 1}, check=_rows_aside("missing_customer", [4]))


def case_duplicate_lines(tmp):
    rows = [*GOOD, GOOD[2], GOOD[2]]
    return [write(tmp, "dups.csv", csv_text(rows))], Ok(
        6, {"duplicate": 2}, check=_rows_aside("duplicate", [8, 9]))


def case_bad_dates(tmp):
    rows = with_row(1, InvoiceDate="not a date")
    rows[2][4] = "2011-02-30 10:00:00"  # no 30 February
    return [write(tmp, "baddate.csv", csv_text(rows))], Ok(
        4, {"bad_date": 2}, check=_rows_aside("bad_date", [3, 4]))


def case_day_first_dates(tmp):
    rows = [list(r) for r in GOOD]
    for r, d in zip(rows, ["13/01/2011 10:00", "13/01/2011 10:00", "14/02/2011 11:30",
                           "14/02/2011 11:30", "25/12/2011 09:15", "25/12/2011 09:15"], strict=True):
        r[4] = d

    def check(res):
        assert res.dataset.lines[C.TIMESTAMP].max() == pd.Timestamp("2011-12-25 09:15")
    return [write(tmp, "dayfirst.csv", csv_text(rows))], Ok(6, check=check)


def case_formula_and_html_names(tmp):
    names = ["=SUM(A1)", "+cmd|' /C calc'!A0", "@HYPERLINK(\"x\")", "-2+3",
             "<script>alert(1)</script>", "<b>bold</b> &amp; more"]
    rows = [list(r) for r in GOOD]
    for k, (r, n) in enumerate(zip(rows, names, strict=True)):
        r[1], r[2] = f"9000{k}", '"' + n.replace('"', '""') + '"'

    def check(res):
        assert set(res.dataset.products[C.NAME]) == set(names)
    return [write(tmp, "formulas.csv", csv_text(rows))], Ok(6, check=check)


def case_quoted_comma_names(tmp):
    rows = with_row(0, Description='"HEART, WHITE, LARGE"')

    def check(res):
        assert "HEART, WHITE, LARGE" in set(res.dataset.products[C.NAME])
    return [write(tmp, "quoted.csv", csv_text(rows))], Ok(6, check=check)


def case_newline_inside_quoted_name(tmp):
    rows = with_row(1, Description='"METAL\nLANTERN"')
    rows[3][5] = "0"  # a spreadsheet shows this line as row 5, whatever the file's line count

    def check(res):
        assert "METAL\nLANTERN" in set(res.dataset.lines[C.NAME])
        _rows_aside("bad_price", [5])(res)
    return [write(tmp, "multiline.csv", csv_text(rows) + "\n\n")], Ok(5, {"bad_price": 1},
                                                                      check=check)


def case_ragged_row(tmp):
    text = csv_text(GOOD).splitlines()
    text[3] += ",extra,fields"
    return [write(tmp, "ragged.csv", "\n".join(text) + "\n")], Err(
        "malformed_rows", "ragged.csv", rows=(4,))


def case_short_row(tmp):
    text = csv_text(GOOD).splitlines()
    text[2] = "5001,71053,METAL LANTERN,2"  # the last four cells missing
    return [write(tmp, "short.csv", "\n".join(text) + "\n")], Ok(
        5, {"bad_price": 1}, check=_rows_aside("bad_price", [3]))


def case_two_order_files(tmp):
    a = write(tmp, "jan.csv", csv_text(GOOD[:4]))
    b = write(tmp, "feb.csv", csv_text([GOOD[3], *GOOD[4:]]))  # one line in both files

    def check(res):
        aside = res.report.set_aside_rows
        assert aside[[C.SOURCE_FILE, C.SOURCE_ROW, "reason"]].astype(str).values.tolist() == [
            ["feb.csv", "2", "duplicate"]]
        assert set(res.dataset.lines[C.SOURCE_FILE].astype(str)) == {"jan.csv", "feb.csv"}
        assert res.report.rows_read == 7
    return [a, b], Ok(6, {"duplicate": 1}, check=check)


def case_blank_line_keeps_row_numbers(tmp):
    text = csv_text(with_row(3, UnitPrice="0")).splitlines()
    text.insert(2, "")  # a blank spreadsheet row 3; the zero price moves to row 6
    return [write(tmp, "gaps.csv", "\n".join(text) + "\n")], Ok(
        5, {"bad_price": 1}, check=_rows_aside("bad_price", [6]))


def case_xlsx_two_sheets(tmp):
    path = tmp / "book.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"About": ["exported by the shop", "do not edit"]}).to_excel(
            xl, sheet_name="Notes", index=False)
        pd.DataFrame(GOOD, columns=HEADER).to_excel(xl, sheet_name="Orders", index=False)

    def check(res):
        w = [i for i in res.report.warnings if i.rule == "sheets_ignored"]
        assert w and w[0].file == "book.xlsx" and "Notes" in w[0].message
        assert res.dataset.n_orders == 3
    return [path], Ok(6, check=check)


def case_xlsx_typed_cells(tmp):
    frame = pd.DataFrame(GOOD, columns=HEADER)
    frame["Quantity"] = frame["Quantity"].astype(int)
    frame["UnitPrice"] = frame["UnitPrice"].astype(float)
    frame["CustomerID"] = frame["CustomerID"].astype(float)
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    path = tmp / "typed.xlsx"
    frame.to_excel(path, index=False)

    def check(res):
        assert set(res.dataset.customers[C.CUSTOMER_ID]) == {"17850", "13047"}
    return [path], Ok(6, check=check)


def case_binary_garbage(tmp):
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return [write(tmp, "garbage.csv", b"\x00\x01" + data)], Err("binary", "garbage.csv")


def case_zip_not_xlsx(tmp):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    return [write(tmp, "fake.xlsx", buf.getvalue())], Err("unreadable", "fake.xlsx")


def case_legacy_xls(tmp):
    return [write(tmp, "old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)], Err(
        "unsupported_format", "old.xls")


def case_all_set_aside(tmp):
    rows = [[("C" + r[0])] + r[1:] for r in GOOD]
    return [write(tmp, "allcancelled.csv", csv_text(rows))], Err("nothing_left", "allcancelled.csv")


def case_catalogue_only(tmp):
    text = "sku,name,price\n85123A,WHITE HEART,2.95\n71053,METAL LANTERN,3.39\n"
    return [write(tmp, "catalogue.csv", text)], Err("no_order_lines", "catalogue.csv")


def case_catalogue_bad_prices_and_duplicates(tmp):
    lines = write(tmp, "lines.csv", csv_text(GOOD))
    cat = write(tmp, "cat.csv", "sku,name,price\n85123A,Heart,2.95\n71053,Lantern,three\n"
                                "85123A,Heart again,3\n")

    def check(res):
        rules = {(i.rule, i.file, i.column, i.rows) for i in res.report.warnings}
        assert ("not_a_number", "cat.csv", C.PRICE, (3,)) in rules
        assert ("duplicate_id", "cat.csv", C.PRODUCT_ID, (4,)) in rules
        prods = res.dataset.products.set_index(C.PRODUCT_ID)
        assert prods.loc["85123A", C.NAME] == "Heart"
        assert prods.loc["71053", C.PRICE] == pytest.approx(3.39)  # unknown → typical paid
    return [cat, lines], Ok(6, check=check)


def case_foreign_names_mapped(tmp):
    header = ["Bestellnummer", "Artikelnummer", "Bezeichnung", "Menge", "Datum", "Einzelpreis",
              "Kundennummer", "Land"]
    mapping = {"Bestellnummer": C.ORDER_ID, "Artikelnummer": C.PRODUCT_ID, "Bezeichnung": C.NAME,
               "Menge": C.QUANTITY, "Datum": C.TIMESTAMP, "Einzelpreis": C.UNIT_PRICE,
               "Kundennummer": C.CUSTOMER_ID, "Land": C.COUNTRY}
    f = write(tmp, "bestellungen.csv", csv_text(GOOD, header))

    def check(res):
        assert res.report.mapping["bestellungen.csv"] == mapping
        assert res.dataset.n_customers == 2
    return [f], Ok(6, check=check), {"bestellungen.csv": mapping}


def case_foreign_names_unmapped(tmp):
    header = ["Bestellnummer", "Artikelnummer", "Bezeichnung", "Menge", "Datum", "Einzelpreis",
              "Kundennummer", "Land"]
    # the order id is optional (an order is then a customer's lines on one day): the
    # first column it misses is the customer
    return [write(tmp, "bestellungen.csv", csv_text(GOOD, header))], Err(
        "missing_column", "bestellungen.csv", C.CUSTOMER_ID)


def case_synonym_names(tmp):
    header = ["order_number", "sku", "product_name", "qty", "created_at", "price_paid", "client_id",
              "country"]
    return [write(tmp, "shopify.csv", csv_text(GOOD, header))], Ok(6)


def case_non_merchandise_codes(tmp):
    rows = [*GOOD,
            ["5003", "POST", "POSTAGE", "1", "2011-01-04 09:15:00", "18", "17850.0", "France"],
            ["5003", "gift_0001_20", "Gift voucher", "1", "2011-01-04 09:15:00", "20", "17850.0", "X"],
            ["5003", "AMAZONFEE", "AMAZON FEE", "1", "2011-01-04 09:15:00", "5", "17850.0", "X"]]

    def check(res):
        nm = res.report.non_merchandise.set_index(C.PRODUCT_ID)["lines"].to_dict()
        assert nm == {"POST": 1, "gift_0001_20": 1, "AMAZONFEE": 1}
    return [write(tmp, "fees.csv", csv_text(rows))], Ok(6, {"non_merchandise": 3}, check=check)


def case_customers_file_only(tmp):
    return [write(tmp, "people.csv", "customer_id,country\n1,UK\n2,FR\n")], Err(
        "no_order_lines", "people.csv")


def case_50mb(tmp):
    n = 560_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "InvoiceNo": (500_000 + np.arange(n) // 8).astype(str),
        "StockCode": (10_000 + rng.integers(0, 3000, n)).astype(str),
        "Description": "A REASONABLY LONG PRODUCT DESCRIPTION TEXT",
        "Quantity": rng.integers(1, 24, n).astype(str),
        "InvoiceDate": pd.Timestamp("2011-01-01") + pd.to_timedelta(np.arange(n) // 8, unit="min"),
        "UnitPrice": rng.integers(10, 2000, n) / 100,
        "CustomerID": (12_000 + (np.arange(n) // 8) % 4000).astype(str) + ".0",
        "Country": "United Kingdom",
    })
    path = tmp / "big.csv"
    frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    assert path.stat().st_size > 50e6
    want_dups = int(frame.astype(str).duplicated().sum())
    return [path], Ok(n - want_dups, {"duplicate": want_dups})


def _rows_aside(reason, rows):
    def check(res):
        aside = res.report.set_aside_rows
        assert sorted(aside.loc[aside["reason"] == reason, C.SOURCE_ROW]) == rows
        w = [i for i in res.report.warnings if i.rule == reason]
        assert w and w[0].rows == tuple(rows)
    return check


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}
SLOW = {"50mb"}


def _params():
    return [pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k for k in CASES]


def _build(name, tmp):
    out = CASES[name](tmp)
    files, expect = out[0], out[1]
    mapping = out[2] if len(out) > 2 else None
    return files, expect, mapping


def test_corpus_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", _params())
def test_bad_input_case(name, tmp_path):
    files, expect, mapping = _build(name, tmp_path)
    if isinstance(expect, Err):
        with pytest.raises(DataValidationError) as exc:
            load_files(files, mapping=mapping)
        issues = exc.value.issues
        match = [i for i in issues if i.rule == expect.rule]
        assert match, f"expected rule {expect.rule}, got {[str(i) for i in issues]}"
        issue = match[0]
        assert expect.file in issue.file
        if expect.column:
            assert issue.column == expect.column
        if expect.rows:
            assert issue.rows == expect.rows
        if expect.rule == "missing_column":  # lists expected and found columns
            assert "expected" in issue.message and "found" in issue.message
            assert all(str(c) in issue.message for c in pd.read_csv(files[0], nrows=0).columns)
        return
    res = load_files(files, mapping=mapping)
    rep = res.report
    assert rep.rows_kept == expect.rows_kept == len(res.dataset.lines)
    for reason, count in expect.set_aside.items():
        assert rep.set_aside[reason] == count, reason
    others = {k: v for k, v in rep.set_aside.items() if k not in expect.set_aside}
    assert not any(others.values()), others
    assert rep.rows_read == rep.rows_kept + sum(rep.set_aside.values())
    if expect.check:
        expect.check(res)


@pytest.mark.parametrize("name", [k for k in CASES if k not in SLOW])
def test_uploaded_bytes_behave_like_paths(name, tmp_path):
    files, expect, mapping = _build(name, tmp_path)
    uploads = [InputFile(Path(f).name, Path(f).read_bytes()) for f in files]
    try:
        by_path = load_files(files, mapping=mapping).report.to_dict()
    except DataValidationError as exc:
        by_path = [i.to_dict() for i in exc.issues]
    try:
        by_bytes = load_files(uploads, mapping=mapping).report.to_dict()
    except DataValidationError as exc:
        by_bytes = [i.to_dict() for i in exc.issues]
    assert by_bytes == by_path


@pytest.mark.parametrize("name", [k for k in CASES if k not in SLOW])
def test_cli_exits_2_naming_the_file_without_traceback(name, tmp_path, capsys):
    files, expect, mapping = _build(name, tmp_path)
    argv = ["validate", *map(str, files)]
    for fname, cols in (mapping or {}).items():
        argv += [arg for theirs, canon in cols.items() for arg in ("--map", f"{fname}:{theirs}={canon}")]
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if isinstance(expect, Err):
        assert code == 2
        assert expect.file in err and err.startswith("error: ")
    else:
        assert code == 0 and err == ""
        assert f"order lines kept: {expect.rows_kept:,}" in out


def test_cli_json_on_failure_still_prints_the_errors(tmp_path, capsys):
    import json

    files, _, _ = _build("missing_column", tmp_path)
    code = main(["validate", "--json", str(files[0])])
    out, err = capsys.readouterr()
    payload = json.loads(out)
    assert code == 2 and "noprice.csv" in err
    assert payload["errors"][0]["file"] == "noprice.csv"
    assert payload["errors"][0]["column"] == C.UNIT_PRICE
    assert {"file", "column", "rule", "rows", "hint", "message"} <= set(payload["errors"][0])


def test_cli_subprocess_bad_file(tmp_path):
    files, _, _ = _build("binary_garbage", tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "engine", "validate", str(files[0])],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert proc.returncode == 2
    assert "garbage.csv" in proc.stderr and "Traceback" not in proc.stderr


NASTY = ["", " ", "0", "-1", "1e9", "2.5", "abc", "=SUM(A1)", "<script>", "NaN", "None", "C123",
         "17850.0", "2011-02-30", "31/12/2011 10:00", "£3.50", "1,000", "\u00e9\u00e8", "\t", '"']


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7), st.sampled_from(NASTY)),
                      max_size=12),
       encoding=st.sampled_from(["utf-8", "cp1252", "utf-16"]),
       sep=st.sampled_from([",", ";", "\t"]))
def test_any_dirt_ends_in_a_load_or_a_validation_error(cells, encoding, sep):
    """Property: whatever cells are spoiled, the loader never raises anything else,
    and every line read is either kept or set aside for exactly one reason."""
    rows = [list(r) for r in GOOD]
    for i, j, value in cells:
        rows[i][j] = value
    frame = pd.DataFrame(rows, columns=HEADER)
    data = frame.to_csv(index=False, sep=sep).encode(encoding, errors="replace")
    try:
        res = load_files([InputFile("fuzz.csv", data)])
    except DataValidationError as exc:
        assert exc.issues and all(i.file for i in exc.issues)
        return
    rep = res.report
    assert rep.rows_read == 6
    assert rep.rows_kept + sum(rep.set_aside.values()) == 6
    assert len(res.dataset.lines) == rep.rows_kept
    assert (res.dataset.lines[C.QUANTITY] > 0).all() and (res.dataset.lines[C.UNIT_PRICE] > 0).all()
