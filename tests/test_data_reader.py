"""Reading files as text: encodings, delimiters, spreadsheet row numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.data import InputFile, read_table
from engine.data.reader import decode, sniff_delimiter
from engine.errors import DataValidationError

TEXT = "id,name,price\n1,Café crème,2.50\n2,Thé,3.00\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"])
def test_decodes_common_encodings(encoding):
    text, _ = decode("f.csv", TEXT.encode(encoding))
    assert "Café crème" in text


def test_cp1252_only_bytes_decode():
    # 0x80 (euro) and 0x96 (en dash) are not valid UTF-8 and not printable latin-1
    text, enc = decode("f.csv", "name\n€5 – gift\n".encode("cp1252"))
    assert "€5 – gift" in text and enc.lower().replace("-", "") in {"cp1252", "windows1252"}


@pytest.mark.parametrize(("sep", "rows"), [(",", 3), (";", 3), ("\t", 3), ("|", 3)])
def test_sniffs_the_delimiter(sep, rows):
    text = "\n".join(sep.join(["a", "b, c", "d"]) if sep != "," else "a,b,d" for _ in range(rows))
    assert sniff_delimiter(text) == sep


def test_values_are_text_and_the_index_is_the_spreadsheet_row():
    table = read_table(InputFile("p.csv", b"id,qty,price\n00123,1,2.50\n456,,NA\n"))
    assert table.frame.index.tolist() == [2, 3]
    assert table.frame.loc[2, "id"] == "00123"  # leading zeros kept: text, not numbers
    assert table.frame.loc[3, "qty"] == "" and table.frame.loc[3, "price"] == "NA"


def test_blank_lines_keep_row_numbers():
    table = read_table(InputFile("p.csv", b"id,qty\n1,1\n\n3,3\n"))
    assert table.frame.index.tolist() == [2, 4]
    assert table.frame.loc[4, "id"] == "3"


def test_path_and_bytes_read_the_same(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(TEXT, encoding="cp1252")
    a, b = read_table(path), read_table(InputFile("p.csv", path.read_bytes()))
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.name == b.name == "p.csv"


def test_decimal_comma_is_detected_for_semicolon_files():
    table = read_table(InputFile("eu.csv", b"id;price\n1;2,55\n2;3,10\n"))
    assert table.delimiter == ";" and table.decimal_comma


def test_xlsx_picks_the_order_lines_sheet_and_names_the_others(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"note": ["x"]}).to_excel(xl, sheet_name="Read me", index=False)
        pd.DataFrame({"InvoiceNo": ["1"], "StockCode": ["A1"], "Quantity": [2]}).to_excel(
            xl, sheet_name="Lines", index=False)
        pd.DataFrame().to_excel(xl, sheet_name="Empty", index=False)
    table = read_table(path)
    assert table.sheet == "Lines"
    assert table.frame.loc[2, "Quantity"] == "2"
    assert "Read me" in table.warnings[0].message and "Empty" in table.warnings[0].message


@pytest.mark.parametrize(("data", "rule"), [
    (b"", "empty_file"),
    (b"   \n\n", "empty_file"),
    (b"a,b,c\n", "no_rows"),
    (b"\x00\x01\x02garbage\x00", "binary"),
    (b"PK\x03\x04not really a zip", "unreadable"),
])
def test_unreadable_inputs_raise_one_issue_naming_the_file(data, rule):
    with pytest.raises(DataValidationError) as exc:
        read_table(InputFile("upload.csv", data))
    assert [i.rule for i in exc.value.issues] == [rule]
    assert exc.value.issues[0].file == "upload.csv"


def test_missing_path_is_an_issue(tmp_path):
    with pytest.raises(DataValidationError) as exc:
        read_table(tmp_path / "nope.csv")
    assert exc.value.issues[0].rule == "unreadable" and exc.value.issues[0].file == "nope.csv"


def test_cyrillic_cp1251_is_not_forced_to_cp1252():
    text = "Привет мир, как дела? Это тест кириллицы в файле.\n" * 3
    decoded, enc = decode("ru.csv", text.encode("cp1251"))
    assert decoded == text and enc == "cp1251"
