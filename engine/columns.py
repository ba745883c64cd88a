"""Canonical column names: the one place every stage takes them from."""

# order lines
ORDER_ID = "order_id"
CUSTOMER_ID = "customer_id"
PRODUCT_ID = "product_id"
QUANTITY = "quantity"
UNIT_PRICE = "unit_price"
TIMESTAMP = "timestamp"
# other shapes of order lines: the line's total (unit price = total / quantity), discount
# amounts on the line, the undiscounted unit price, the line's or unit's cost
LINE_TOTAL = "line_total"
DISCOUNT = "discount"
REGULAR_PRICE = "regular_price"  # undiscounted unit price (kept lines)
UNIT_COST = "unit_cost"  # cost of one unit (kept lines)

# products
NAME = "name"
DESCRIPTION = "description"
CATEGORY = "category"
PRICE = "price"  # list price
COST = "cost"  # unit cost
IN_STOCK = "in_stock"

# customers
COUNTRY = "country"

# integer indices added by Dataset.from_frames
CUSTOMER_IDX = "customer_idx"
PRODUCT_IDX = "product_idx"

# provenance: 1-based row number in the source file (header is row 1, first data row is 2)
SOURCE_FILE = "source_file"
SOURCE_ROW = "source_row"

# observed results (adjustment)
BUNDLE_ID = "bundle_id"
PERIOD = "period"
UNITS = "units"
VISITORS = "visitors"

SEGMENT = "segment"

ORDER_LINE_COLUMNS = (ORDER_ID, CUSTOMER_ID, PRODUCT_ID, QUANTITY, UNIT_PRICE, TIMESTAMP)
# what order lines need: a price (UNIT_PRICE or LINE_TOTAL) besides these; without an
# order id an order is a customer's lines on one day (or at one time)
ORDER_LINE_REQUIRED = (CUSTOMER_ID, PRODUCT_ID, QUANTITY, TIMESTAMP)
ORDER_LINE_PRICES = (UNIT_PRICE, LINE_TOTAL)
PRODUCT_COLUMNS = (PRODUCT_ID, NAME, DESCRIPTION, CATEGORY, PRICE, COST)
CUSTOMER_COLUMNS = (CUSTOMER_ID,)
OBSERVED_COLUMNS = (BUNDLE_ID, PERIOD, PRICE, UNITS)

# exported price list, in this order. Money is per period (the segment's visitors in
# the data's period, or the analyst's visitors per segment); "bundle_" columns are the
# bundle's own sales, "segment_" columns the change in everything the segment buys
# against offering no bundle (bundle sales less the single sales they replace).
PRICE_LIST_COLUMNS = (
    "bundle_id",
    "segment",
    "product_ids",
    "product_names",
    "list_total",
    "bundle_price",
    "discount_pct",
    "expected_take_rate",
    "expected_units",
    "bundle_revenue",
    "bundle_profit",
    "bundle_margin_pct",
    "single_units_replaced",
    "segment_revenue_change",
    "segment_profit_change",
    "price_rule",
    "reason",
)
