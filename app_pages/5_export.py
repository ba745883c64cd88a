"""Export: the bundle price list and the per-customer offer list, previewed and
downloadable as CSV, XLSX and JSON, and the settings that made them (TOML):
``python -m engine run FILES --config settings.toml`` writes the same price list."""

import streamlit as st

from engine import columns as C
from engine import export
from ui import pipeline, state

ss = st.session_state
state.init_state()
ws = state.workspace()

# result keys (no widget owns them): what the downloads hold, for tests
PRICE_LIST = "export_price_list"
OFFERS = "export_offer_list"
SETTINGS = "export_settings_toml"

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

st.title("Export")
st.caption(
    "The recommended bundle prices and which customers are offered which bundles, as files "
    "for the shop system, with the settings of the Preferences, Bundles and Pricing pages. "
    "Formula-like cells are escaped so spreadsheets show them as text."
)

name, dataset, folder = state.require_dataset()
ds = pipeline.DatasetRef(name, folder, dataset)
config = state.run_config()
_, _, report = state.current_dataset()

found = pipeline.bundles(ds, config)
if not len(found):
    st.warning("No bundles for this dataset: loosen the settings on the Bundles page.")
    st.stop()
prices = pipeline.price_list(ds, config)
ss[PRICE_LIST] = prices


def download(slot, label: str, data: bytes, file_name: str, mime: str, key: str) -> None:
    # on_click="ignore": a download must not re-run the page (a rerun cancels the next one)
    slot.download_button(label, data, file_name, mime, key=key, on_click="ignore",
                         icon=":material/download:")


st.subheader("Bundle price list")
left, mid, right = st.columns(3)
left.metric("Bundles", f"{len(prices):,}")
mid.metric("Mean discount", f"{prices['discount_pct'].mean():.1f}%")
right.metric("Segment profit change per period", f"{prices['segment_profit_change'].sum():+,.0f}",
             help="Bundle sales less the single sales they replace, against offering no bundle")
st.dataframe(prices, hide_index=True, width="stretch", key="export_price_preview")
d = st.columns(3)
download(d[0], "Price list CSV", export.to_csv_bytes(prices), "price_list.csv", "text/csv",
         "export_dl_csv")
download(d[1], "Price list XLSX", export.to_xlsx_bytes(prices), "price_list.xlsx", XLSX,
         "export_dl_xlsx")
download(d[2], "Price list JSON", export.to_json_bytes(prices), "price_list.json",
         "application/json", "export_dl_json")

st.subheader("Offers per customer")
hide = st.checkbox(
    "Pseudonymise customer ids", value=False, key="export_pseudo_widget",
    help="Off: the shop's own customer ids, to load back into the shop system. On: the "
    "workspace's salted pseudonyms, for sharing outside the shop.",
)
ids = [str(c) for c in dataset.customer_ids]
lookup = dict(zip(ids, map(str, ws.pseudonymise(ids)), strict=True))
hidden = pipeline.offers(ds, config, pseudonymise=lookup.__getitem__)
offer_file = hidden if hide else pipeline.offers(ds, config)
ss[OFFERS] = offer_file
# the dashboard shows pseudonyms whatever the file holds
st.dataframe(hidden.head(200), hide_index=True, width="stretch", key="export_offer_preview",
             column_config={C.CUSTOMER_ID: st.column_config.TextColumn("customer (pseudonym)")})
st.caption(f"{len(offer_file):,} customers; preview shows the first 200 with pseudonymised ids.")
o = st.columns(3)
download(o[0], "Offers CSV", export.to_csv_bytes(offer_file), "offers.csv", "text/csv",
         "export_dl_offers_csv")
download(o[1], "Offers XLSX", export.to_xlsx_bytes(offer_file, "offers"), "offers.xlsx", XLSX,
         "export_dl_offers_xlsx")
download(o[2], "Offers JSON", export.to_json_bytes(offer_file), "offers.json",
         "application/json", "export_dl_offers_json")

st.subheader("These settings")
settings = pipeline.settings_for(ds, config, report).to_toml()
ss[SETTINGS] = settings
st.caption("Every setting behind these files, with this dataset's column mapping: "
           "`python -m engine run FILES --config settings.toml --out DIR` on the same files "
           "writes the same price list.")
download(st, "Download these settings", settings.encode("utf-8"), "settings.toml",
         "application/toml", "export_dl_settings")
with st.expander("Show the settings"):
    st.code(settings, language="toml")
