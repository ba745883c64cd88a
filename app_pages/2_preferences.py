"""Preferences: segments and what they prefer, one customer's recommendations and
reasons, similar products, and offline quality against baselines."""

import dataclasses
from pathlib import Path

import numpy as np
import streamlit as st

from engine import columns as C
from engine.pipeline import stages
from ui import pipeline, state
from ui import preferences as up

st.title("Preferences")
name, dataset, folder = state.require_dataset()
ws = state.workspace()
ds = pipeline.DatasetRef(name, folder, dataset)
config = state.run_config()

segs = pipeline.segments(ds, config)
prefs = segs.preferences
if stages.has_text(dataset):
    st.caption(f"Product texts encoded ({dataset.n_products:,} products) with "
               f"{Path(config.encoder.model_name).name}; customers fitted and segmented.")
else:
    st.info(f"Text encoder off: {stages.NO_TEXT}.", icon=":material/text_fields:")
choice = prefs.k_choice
suggested = int(choice.suggested)
lo, hi = config.preferences.k_range


def _set_k() -> None:
    k = int(st.session_state["prefs_k_widget"])
    # the suggested k stays "chosen from the data", so a new dataset gets its own
    chosen = None if k == suggested else k
    state.set_slice(preferences=dataclasses.replace(config.preferences, n_segments=chosen))


k_now = config.preferences.n_segments or suggested
st.slider("Number of segments", min_value=lo, max_value=hi, value=int(k_now),
          key="prefs_k_widget", on_change=_set_k,
          help=f"Suggested by held-out purchases: {suggested}. The Bundles, Pricing and "
          "Export pages use the same segments.")

st.metric("Segments", prefs.n_segments)
st.caption(choice.reason, help="Each customer's latest orders are held out; segments fitted "
           "on the earlier ones score them by their segment's product shares. Held out: "
           f"{choice.held_out_purchases:,} purchases of {choice.held_out_customers:,} customers.")
if len(choice.curve):
    st.plotly_chart(up.k_curve_figure(choice.curve, prefs.n_segments, suggested),
                    key="prefs_k_curve")
# the names the Bundles, Pricing and Export pages and the files give the same segments
names = segs.names
left, right = st.columns([1, 2])
left.plotly_chart(up.segment_sizes_figure(prefs.segment_sizes(), names), key="prefs_sizes")
right.plotly_chart(up.category_heatmap(prefs.category_affinity, names), key="prefs_heatmap")

st.subheader("How recommendations are scored for this shop")
weights, weights_note = up.weights_table(prefs.model)
st.dataframe(weights, hide_index=True, key="prefs_weights")
st.caption(weights_note)
st.caption(up.next_purchase_note(prefs.model))

st.subheader("A customer")
shown_ids = ws.pseudonymise(dataset.customer_ids)
pick = st.selectbox("Customer", np.arange(dataset.n_customers),
                    format_func=lambda i: f"{shown_ids[i]} (segment {names[prefs.segment_labels[i]]})",
                    key="prefs_customer_widget")
emb = pipeline.embeddings(ds, config)
history, next_recs, new_recs = up.customer_view(prefs, dataset, emb, int(pick))
hcol, rcol = st.columns([1, 2])
hcol.caption("What they bought: in how many orders, days since the last, usual interval")
hcol.dataframe(history, hide_index=True, key="prefs_history")
next_tab, new_tab = rcol.tabs(["Next purchase (bought products included)", "New to this customer"])
next_tab.caption("Score: chance of buying it in the next weeks; repeat: bought before.")
next_tab.dataframe(next_recs, hide_index=True, key="prefs_next")
new_tab.caption("Products the customer has not bought yet; score: the hybrid's.")
new_tab.dataframe(new_recs, hide_index=True, key="prefs_new")

st.subheader("Similar products")
product = st.selectbox("Product", np.arange(dataset.n_products),
                       format_func=lambda i: dataset.products[C.NAME].iloc[i],
                       key="prefs_product_widget")
text_df, co_df = up.similar_products(prefs, dataset, emb, int(product))
tcol, ccol = st.columns(2)
tcol.caption("Reads alike (text)")
tcol.dataframe(text_df, hide_index=True)
ccol.caption("Bought together (co-purchase)")
ccol.dataframe(co_df, hide_index=True)

st.subheader("Offline quality")
st.caption("The last 8 weeks held out, each list against its own baselines fitted on the "
           "same earlier orders.")
if st.button("Evaluate", key="prefs_evaluate_widget") or st.session_state.get("prefs_evaluated"):
    st.session_state["prefs_evaluated"] = True
    result = up.evaluation(name, folder, config.preferences, 8, 20, dataset, emb)
    protocol = result.protocol
    st.caption(f"Next purchase: everything bought after {protocol['cut']}, repeats included "
               f"({protocol['next_purchase_customers']:,} customers)")
    st.dataframe(result.next_purchase, hide_index=True, key="prefs_eval_next")
    st.caption(f"New products: what customers bought for the first time "
               f"({protocol['test_customers']:,} customers), bought products left out")
    st.dataframe(result.new_products, hide_index=True, key="prefs_eval_table")
    st.caption(
        f"Cold start: {protocol['cold_products']} products "
        + ("hidden from training to test cold start" if protocol["cold_simulated"]
           else "sold for the first time in the hold-out")
        + f", ranked in the whole catalogue for the {protocol['cold_customers']:,} customers "
        "who bought them")
    st.dataframe(result.cold_start, hide_index=True, key="prefs_eval_cold")
