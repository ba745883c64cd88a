"""Export: the recommended bundle price list and the per-customer offer list,
previewed and downloadable as CSV, XLSX and JSON."""

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
# the Pricing page's latest scenario (its own result keys)
PRICING_RUN, PRICING_LIST = "pricing_run", "pricing_price_list"

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

st.title("Export")
st.caption(
    "The recommended bundle prices and which customers are offered which bundles, as files "
    "for the shop system. Formula-like cells are escaped so spreadsheets show them as text."
)

name, dataset, folder = state.require_dataset()

done = pipeline.priced(name, folder, _dataset=dataset)
if not done.bundles:
    st.warning("No bundles for this dataset: loosen the settings on the Bundles page.")
    st.stop()

# the analyst's scenario on the Pricing page wins over the default guardrails
scenario = ss.get(PRICING_LIST)
if scenario is not None and set(scenario["bundle_id"]) == set(done.bundle_ids):
    prices = scenario
    st.info("Prices from your latest scenario on the Pricing page.", icon=":material/tune:")
else:
    prices = export.price_list(
        dataset, [b.products for b in done.bundles], done.run.results, done.run.simulation,
        bundle_ids=done.bundle_ids, segment_names=list(done.segments.names),
    )
    st.caption("Prices at the default guardrails (set your own on the Pricing page).")
ss[PRICE_LIST] = prices

st.subheader("Bundle price list")
left, mid, right = st.columns(3)
left.metric("Bundles", f"{len(prices):,}")
mid.metric("Mean discount", f"{prices['discount_pct'].mean():.1f}%")
right.metric("Expected profit per period", f"{prices['expected_profit'].sum():,.0f}")
st.dataframe(prices, hide_index=True, width="stretch", key="export_price_preview")
d = st.columns(3)
d[0].download_button("Price list CSV", export.to_csv_bytes(prices), "price_list.csv",
                     "text/csv", key="export_dl_csv", icon=":material/download:")
d[1].download_button("Price list XLSX", export.to_xlsx_bytes(prices), "price_list.xlsx", XLSX,
                     key="export_dl_xlsx", icon=":material/download:")
d[2].download_button("Price list JSON", export.to_json_bytes(prices), "price_list.json",
                     "application/json", key="export_dl_json", icon=":material/download:")

st.subheader("Offers per customer")
hide = st.checkbox(
    "Pseudonymise customer ids", value=False, key="export_pseudo_widget",
    help="Off: the shop's own customer ids, to load back into the shop system. On: the "
    "workspace's salted pseudonyms, for sharing outside the shop.",
)
segments = done.segments
offers = done.offers_by_segment()


def _pseudonyms(ids) -> dict[str, str]:
    ids = [str(c) for c in ids]
    return dict(zip(ids, map(str, ws.pseudonymise(ids)), strict=True))


lookup = _pseudonyms(dataset.customer_ids)
own = export.offer_list(dataset.customer_ids, segments.segment_labels, offers,
                        list(segments.names))
hidden = export.offer_list(dataset.customer_ids, segments.segment_labels, offers,
                           list(segments.names), pseudonymise=lookup.__getitem__)
offer_file = hidden if hide else own
ss[OFFERS] = offer_file
# the dashboard shows pseudonyms whatever the file holds
st.dataframe(hidden.head(200), hide_index=True, width="stretch", key="export_offer_preview",
             column_config={C.CUSTOMER_ID: st.column_config.TextColumn("customer (pseudonym)")})
st.caption(f"{len(own):,} customers; preview shows the first 200 with pseudonymised ids.")
o = st.columns(3)
o[0].download_button("Offers CSV", export.to_csv_bytes(offer_file), "offers.csv", "text/csv",
                     key="export_dl_offers_csv", icon=":material/download:")
o[1].download_button("Offers XLSX", export.to_xlsx_bytes(offer_file, "offers"), "offers.xlsx",
                     XLSX, key="export_dl_offers_xlsx", icon=":material/download:")
o[2].download_button("Offers JSON", export.to_json_bytes(offer_file), "offers.json",
                     "application/json", key="export_dl_offers_json",
                     icon=":material/download:")
