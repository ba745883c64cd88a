"""Readable product names when the catalogue has no name column; its attribute columns are kept."""

from __future__ import annotations

import pandas as pd

from engine import columns as C
from engine.data import InputFile, load_files
from engine.data.dataset import name_columns, product_names


def _csv(name: str, frame: pd.DataFrame) -> InputFile:
    return InputFile(name, frame.to_csv(index=False).encode())


def _lines(products: list[str], name: list[str] | None = None) -> InputFile:
    n = len(products)
    frame = pd.DataFrame({
        "order_id": [f"o{i // 2}" for i in range(n)],
        "customer_id": [f"c{i % 3}" for i in range(n)],
        "product_id": products,
        "quantity": ["1"] * n,
        "unit_price": ["2.50"] * n,
        "timestamp": ["2024-03-01 10:00"] * n,
    })
    if name is not None:
        frame["description"] = name  # order lines: "description" is the product name
    return _csv("lines.csv", frame)


# a grocery export as many shops have it: attributes, no name column
CATALOGUE = pd.DataFrame({
    "product_id": ["101", "102", "103", "104", "105"],
    "department": ["Grocery", "Grocery", "Produce", "Dairy", ""],
    "brand": ["Brand", "Acme", "Acme", "", ""],
    "commodity_desc": ["Commodity", "Frozen pizza", "Apples", "", ""],
    "sub_commodity_desc": ["Sub commodity", "Pizza premium", "Apples gala", "", ""],
    "curr_size_of_product": ["12 OZ", "", " 3 LB ", "", ""],
    "price": ["3.99", "5.49", "2.00", "1.00", "0.50"],
})


def _products(*files: InputFile) -> pd.DataFrame:
    return load_files(list(files)).dataset.products.set_index(C.PRODUCT_ID)


def test_names_are_built_from_the_catalogue_attributes():
    products = _products(_csv("catalogue.csv", CATALOGUE), _lines(["101", "102", "103", "104", "105"]))
    names = products[C.NAME]
    assert names["101"] == "Brand Sub commodity 12 OZ"
    assert names["102"] == "Acme Pizza premium"  # empty size skipped
    assert names["103"] == "Acme Apples gala 3 LB"  # values stripped
    # nothing but a category: the id, with the category
    assert names["104"] == "104 (Dairy)"
    # nothing at all is known: the id is all there is
    assert names["105"] == "105"


def test_attribute_columns_survive_into_the_dataset():
    products = _products(_csv("catalogue.csv", CATALOGUE), _lines(["101", "102"]))
    for col in ("brand", "commodity_desc", "sub_commodity_desc", "curr_size_of_product"):
        assert col in products.columns
    assert products.loc["101", "commodity_desc"] == "Commodity"
    assert products.loc["103", "curr_size_of_product"] == "3 LB"
    assert products.loc["101", C.CATEGORY] == "Grocery"  # department is the category
    assert products.loc["101", C.PRICE] == 3.99


def test_identifiers_numbers_and_flags_are_not_name_parts():
    catalogue = CATALOGUE.assign(
        manufacturer=["69", "2", "69", "5", "7"],
        upc=["A0001", "A0002", "A0003", "A0004", "A0005"],
        organic=["yes", "no", "no", "yes", "no"],
    )
    assert name_columns(catalogue.rename(columns={"department": C.CATEGORY})) == [
        "brand", "sub_commodity_desc", "curr_size_of_product"
    ]
    products = _products(_csv("catalogue.csv", catalogue), _lines(["101"]))
    assert products.loc["101", C.NAME] == "Brand Sub commodity 12 OZ"
    assert products.loc["101", "upc"] == "A0001"  # kept as an attribute all the same


def test_a_column_the_analyst_drops_is_neither_kept_nor_named():
    res = load_files([_csv("catalogue.csv", CATALOGUE), _lines(["101"])],
                     mapping={"catalogue.csv": {"brand": ""}})
    products = res.dataset.products.set_index(C.PRODUCT_ID)
    assert "brand" not in products.columns
    assert products.loc["101", C.NAME] == "Sub commodity 12 OZ"


def test_line_text_still_names_products_and_comes_before_attributes():
    lines_only = _products(_lines(["101", "102", "102"], ["Heart holder", "Tea towel", "tea towel "]))
    assert lines_only.loc["101", C.NAME] == "Heart holder"
    assert lines_only.loc["102", C.NAME] in {"Tea towel", "tea towel"}
    both = _products(_csv("catalogue.csv", CATALOGUE), _lines(["101", "102"], ["Heart holder", ""]))
    assert both.loc["101", C.NAME] == "Heart holder"  # the shop's own name for it
    assert both.loc["102", C.NAME] == "Acme Pizza premium"


def test_a_catalogue_name_is_kept_as_given_and_a_description_is_a_last_resort():
    frame = pd.DataFrame({
        C.PRODUCT_ID: ["a", "b", "c"],
        C.NAME: ["Mug  large", "", None],
        C.DESCRIPTION: ["", "A sturdy stoneware mug that keeps coffee warm for a long long time\nDishwasher safe",
                        "Short one"],
        C.CATEGORY: ["Kitchen", "Kitchen", ""],
    })
    names = product_names(frame)
    assert names[0] == "Mug  large"
    assert names[1].endswith("…") and len(names[1]) <= 60 and names[1].startswith("A sturdy stoneware mug")
    assert names[2] == "Short one"


def test_the_data_page_keeps_unrecognised_catalogue_columns_by_default(tmp_path):
    """The Data page's mapping leaves a column it does not recognise to the loader
    (kept as an attribute), so the names are built from it there too."""
    from engine.workspace import Workspace
    from ui import data as ud

    catalogue = _csv("catalogue.csv", CATALOGUE)
    lines = _lines(["101", "102", "103"])
    info = ud.inspect_file(ud.sha256(catalogue.data), catalogue.name, catalogue.data)
    chosen = {c: info.mapping.get(c, ud.KEEP) for c in info.columns}
    assert chosen["brand"] == ud.KEEP
    mapping = {catalogue.name: ud.chosen_mapping(chosen)}
    ws = Workspace(tmp_path / "ws")
    outcome = ud.load_into_workspace(
        ws, "grocery", [(catalogue.name, catalogue.data), (lines.name, lines.data)], mapping)
    assert outcome.ok, outcome.issues
    products = ws.load("grocery")[0].products.set_index(C.PRODUCT_ID)
    assert products.loc["101", C.NAME] == "Brand Sub commodity 12 OZ"
    # an analyst who sets a column to "(ignore)" still leaves it out
    chosen["brand"] = ud.IGNORE
    mapping = {catalogue.name: ud.chosen_mapping(chosen)}
    ud.load_into_workspace(
        ws, "grocery2", [(catalogue.name, catalogue.data), (lines.name, lines.data)], mapping)
    assert "brand" not in ws.load("grocery2")[0].products
