"""Bundles: beam-searched bundles per segment, ranked by the profit each adds at
its optimised price, with the search settings in one form, a card per bundle,
the co-purchase network of a chosen bundle, and bundles for one chosen customer."""

import streamlit as st

from engine.bundles import BeamConfig, bundles_frame
from ui import bundles as ub
from ui import state

ss = st.session_state
state.init_state()
ws = state.workspace()

# result key (no widget owns it): the bundles on show, as a frame, for export and tests
SHOWN = "bundles_shown"

st.title("Bundles")
st.caption(
    "Bundles per customer segment, grown one product at a time by beam search: products the "
    "segment likes, bought together more often than chance, never two substitutes. The final "
    "ranking adds the profit per visitor each bundle earns at its optimised price (the Pricing "
    "page's demand model)."
)

name, dataset, folder = state.require_dataset()
labels = dict(zip(dataset.product_ids, dataset.products["name"], strict=True))
product_ids = list(map(str, dataset.product_ids))


def _product_label(pid: str) -> str:
    return f"{pid} · {labels.get(pid, '')}"


with st.form("bundles_form"):
    left, mid, right = st.columns(3)
    n_segments = left.slider("Segments", 2, 12, 5, key="bundles_segments_widget")
    kmin, kmax = left.slider("Bundle size", 2, 6, (2, 3), key="bundles_size_widget")
    beam_width = mid.slider("Beam width", 1, 50, 20, key="bundles_beam_widget",
                            help="Partial bundles kept at each step")
    n_bundles = mid.slider("Bundles per segment", 1, 10, 5, key="bundles_n_widget")
    min_lift = right.number_input(
        "Minimum complementarity (lift, 0 = off)", 0.0, 20.0, 0.0, 0.1,
        key="bundles_min_lift_widget",
        help="Every product must be linked to the others by pairs bought together at least "
        "this many times more often than chance",
    )
    min_liking = right.number_input(
        "Least liking (× the segment's average product, 0 = off)", 0.0, 20.0, 1.0, 0.1,
        key="bundles_min_liking_widget",
        help="The segment must like the bundle's products (anchors aside) on average at least "
        "this many times as much as its average product: a pair bought together often is not "
        "offered to a segment that does not want it",
    )
    one_per_category = right.checkbox("At most one product per category",
                                      key="bundles_one_per_cat_widget")
    in_stock_only = right.checkbox("In-stock products only", key="bundles_in_stock_widget")
    use_text = right.checkbox(
        "Detect substitutes from product text", value=True, key="bundles_text_widget",
        help="Encodes product texts once (cached); alike products rarely bought together are "
        "never bundled",
    )
    anchor = st.multiselect("Products every bundle must include", product_ids,
                            format_func=_product_label, key="bundles_anchor_widget",
                            max_selections=3)
    exclude = st.multiselect("Products to leave out", product_ids, format_func=_product_label,
                             key="bundles_exclude_widget")
    st.form_submit_button("Find bundles", type="primary")

try:
    config = BeamConfig(
        kmin=kmin, kmax=kmax, beam_width=beam_width, n_bundles=n_bundles, anchor=tuple(anchor),
        exclude=tuple(exclude), one_per_category=one_per_category, in_stock_only=in_stock_only,
        min_complementarity=min_lift or None, min_affinity_ratio=min_liking or None,
    )
except ValueError as err:
    st.error(str(err))
    st.stop()

cache_dir = ub.workspace_cache_dir(ws.root) if use_text else None
args = (name, folder, n_segments, 0, cache_dir)
try:
    bundles = ub.run_beam(*args, config, _dataset=dataset)
except (ValueError, KeyError) as err:
    st.error(f"No bundles with these settings: {err}")
    st.stop()
inputs = ub.bundle_inputs(*args, _dataset=dataset)
model = ub.segment_model(name, folder, n_segments, 0, dataset)

segment = st.selectbox("Segment", range(n_segments), format_func=lambda s: model.names[s],
                       key="bundles_segment_widget")
mine = [b for b in bundles if b.segment == segment]
ss[SHOWN] = bundles_frame(mine)
if not mine:
    st.warning("No bundle meets these settings for this segment: loosen a constraint.")
    st.stop()


def card(i: int, b) -> None:
    with st.container(border=True):
        st.markdown(f"**Bundle {i}** · {' + '.join(b.names)}")
        c1, c2, c3 = st.columns([1, 1, 2])
        c1.metric("List total", f"{b.list_total:,.2f}")
        c1.metric("Profit per visitor", f"{ub.profit_per_visitor(b, inputs):,.3f}",
                  help="What offering the bundle at its optimised price adds to the profit "
                  "of the singles, per visitor of the segment (simulated)")
        c2.metric("Score", f"{b.total:.3f}", help="Weighted sum of the terms; the ranking")
        c3.dataframe(ub.terms_frame(b), hide_index=True, width="stretch",
                     column_config={"value": st.column_config.NumberColumn(format="%.3f")})
        st.caption(b.reason)


st.subheader(f"Bundles for segment {model.names[segment]}")
for i, b in enumerate(mine, start=1):
    card(i, b)

st.subheader("Why these go together")
pick = st.selectbox("Bundle", range(len(mine)), format_func=lambda i: f"Bundle {i + 1}",
                    key="bundles_network_widget")
st.plotly_chart(ub.network_figure(inputs, mine[pick]), key="chart_bundle_network")

st.subheader("Bundles for one customer")
members = [c for c, s in enumerate(model.labels) if s == segment][:2000]
shown_ids = dict(zip(members, ws.pseudonymise(dataset.customer_ids[members]), strict=True))
customer = st.selectbox("Customer (of this segment)", members,
                        format_func=lambda c: str(shown_ids[c]),
                        key="bundles_customer_widget")
if customer is not None:
    personal = ub.customer_bundles(*args, config, int(customer), _dataset=dataset)
    st.caption("Beam search run on this customer's own purchases blended with the segment's "
               "taste.")
    st.dataframe(
        bundles_frame(personal)[
            ["rank", "product_names", "list_total", "profit_proxy", "total", "reason"]
        ].rename(columns={"profit_proxy": "profit per visitor ÷ median price"}),
        hide_index=True, width="stretch",
    )
