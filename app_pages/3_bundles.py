"""Bundles: beam-searched bundles per segment, ranked by the profit each adds at
its best price, with the search settings in one form, a card per bundle with
its price, the co-purchase network of a chosen bundle, and bundles for one
chosen customer. These settings reach the Pricing and Export pages."""

import dataclasses

import streamlit as st

from engine.bundles import bundles_frame
from engine.errors import ConfigError
from engine.pipeline import stages
from ui import bundles as ub
from ui import pipeline, state

ss = st.session_state
state.init_state()
ws = state.workspace()

# result key (no widget owns it): the bundles on show, as a frame, for tests
SHOWN = "bundles_shown"

st.title("Bundles")
st.caption(
    "Bundles per customer segment, grown one product at a time by beam search: products the "
    "segment likes, bought together more often than chance, never two substitutes. The final "
    "ranking adds the profit per visitor each bundle earns at its best price (the Pricing "
    "page's demand model). The bundles found here are the ones priced on Pricing and exported "
    "on Export."
)

name, dataset, folder = state.require_dataset()
ds = pipeline.DatasetRef(name, folder, dataset)
config = state.run_config()
beam = config.beam
labels = dict(zip(dataset.product_ids, dataset.products["name"], strict=True))
product_ids = list(map(str, dataset.product_ids))


def _product_label(pid: str) -> str:
    return f"{pid} · {labels.get(pid, '')}"


with st.form("bundles_form"):
    left, mid, right = st.columns(3)
    kmin, kmax = left.slider("Bundle size", 2, 6, (beam.kmin, beam.kmax),
                             key="bundles_size_widget")
    beam_width = mid.slider("Beam width", 1, 50, beam.beam_width, key="bundles_beam_widget",
                            help="Partial bundles kept at each step")
    n_bundles = mid.slider("Most bundles per segment", 1, 20, beam.n_bundles,
                           key="bundles_n_widget",
                           help="A segment gets bundles while the next one pays, at most this many")
    min_added = mid.number_input(
        "Least profit a bundle must add per period", 0.0, 1e9, float(beam.min_added_profit),
        1.0, key="bundles_min_added_widget",
        help="Its own gain over the singles at its best price, less what it takes from the "
        "segment's bundles chosen before it (simulated)",
    )
    min_lift = right.number_input(
        "Minimum complementarity (lift, 0 = off)", 0.0, 20.0,
        float(beam.min_complementarity or 0.0), 0.1, key="bundles_min_lift_widget",
        help="Every product must be linked to the others by pairs bought together at least "
        "this many times more often than chance",
    )
    min_liking = right.number_input(
        "Least liking (× the segment's average product, 0 = off)", 0.0, 20.0,
        float(beam.min_affinity_ratio or 0.0), 0.1, key="bundles_min_liking_widget",
        help="The segment must like the bundle's products (anchors aside) on average at least "
        "this many times as much as its average product: a pair bought together often is not "
        "offered to a segment that does not want it",
    )
    one_per_category = right.checkbox("At most one product per category",
                                      value=beam.one_per_category,
                                      key="bundles_one_per_cat_widget")
    in_stock_only = right.checkbox("In-stock products only", value=beam.in_stock_only,
                                   key="bundles_in_stock_widget")
    use_text = right.checkbox(
        "Detect substitutes from product text", value=beam.text_substitutes,
        key="bundles_text_widget",
        help="Alike products rarely bought together are never bundled (the texts are encoded "
        "once and cached)",
    )
    known = set(product_ids)
    anchor = st.multiselect("Products every bundle must include", product_ids,
                            default=[p for p in beam.anchor if p in known],
                            format_func=_product_label, key="bundles_anchor_widget",
                            max_selections=3)
    exclude = st.multiselect("Products to leave out", product_ids,
                             default=[p for p in beam.exclude if p in known],
                             format_func=_product_label, key="bundles_exclude_widget")
    submitted = st.form_submit_button("Find bundles", type="primary")

if submitted:
    try:
        chosen = dataclasses.replace(
            beam, kmin=kmin, kmax=kmax, beam_width=beam_width, n_bundles=n_bundles,
            min_added_profit=float(min_added),
            anchor=tuple(anchor), exclude=tuple(exclude), one_per_category=one_per_category,
            in_stock_only=in_stock_only, min_complementarity=min_lift or None,
            min_affinity_ratio=min_liking or None, text_substitutes=use_text,
        )
    except ValueError as err:
        st.error(f"These settings cannot be used: {err}. The bundles below are from the "
                 "previous settings.")
    else:
        config = state.set_slice(beam=chosen)

st.caption(f"{config.preferences.n_segments or 'Segments chosen from the data'}"
           f"{' segments' if config.preferences.n_segments else ''}: set on the Preferences "
           "page.")

try:
    found = pipeline.bundles(ds, config)
except ConfigError as err:
    st.error(f"No bundles with these settings: {err}")
    st.stop()
segs = pipeline.segments(ds, config)
inputs = stages.bundle_inputs(dataset, segs, None)
prices = pipeline.price_list(ds, config).set_index("bundle_id") if len(found) else None

segment = st.selectbox("Segment", range(segs.n),
                       format_func=lambda s: f"{segs.names[s]} ({int(segs.sizes()[s]):,} "
                       "customers)", key="bundles_segment_widget")
mine = [(b, bid) for b, bid in zip(found.bundles, found.ids, strict=True) if b.segment == segment]
ss[SHOWN] = bundles_frame([b for b, _ in mine])
if not mine:
    st.warning("No bundle meets these settings for this segment: loosen a constraint.")
    st.stop()


def card(i: int, b, bundle_id: str) -> None:
    row = prices.loc[bundle_id]
    with st.container(border=True):
        st.markdown(f"**Bundle {i}** · {' + '.join(b.names)}")
        c1, c2, c3 = st.columns([1, 1, 2])
        c1.metric("List total", f"{b.list_total:,.2f}")
        c1.metric("Price", f"{row['bundle_price']:,.2f}", f"-{row['discount_pct']:.1f}%",
                  delta_color="off", help="The Pricing page's price at its current guardrails")
        c2.metric("Profit per visitor", f"{ub.profit_per_visitor(b, inputs):,.3f}",
                  help="What offering the bundle at its best price adds to the profit "
                  "of the singles, per visitor of the segment (simulated)")
        if b.added_profit is not None:
            c2.metric("Adds per period", f"{b.added_profit:,.2f}",
                      help="What it adds to the segment's offer: its own gain less what it "
                      "takes from the bundles above it; the ranking")
        c2.metric("Score", f"{b.total:.3f}", help="Weighted sum of the objective's terms")
        c3.dataframe(ub.terms_frame(b), hide_index=True, width="stretch",
                     column_config={"value": st.column_config.NumberColumn(format="%.3f")})
        st.caption(row["reason"])


st.subheader(f"Bundles for segment {segs.names[segment]}")
for i, (b, bid) in enumerate(mine, start=1):
    card(i, b, bid)

st.subheader("Why these go together")
pick = st.selectbox("Bundle", range(len(mine)), format_func=lambda i: f"Bundle {i + 1}",
                    key="bundles_network_widget")
st.plotly_chart(ub.network_figure(inputs, mine[pick][0]), key="chart_bundle_network")

st.subheader("Bundles for one customer")
members = [c for c, s in enumerate(segs.labels) if s == segment][:2000]
shown_ids = dict(zip(members, ws.pseudonymise(dataset.customer_ids[members]), strict=True))
customer = st.selectbox("Customer (of this segment)", members,
                        format_func=lambda c: str(shown_ids[c]),
                        key="bundles_customer_widget")
if customer is not None:
    personal = pipeline.customer_bundles(ds, config, int(customer))
    st.caption("Beam search run on this customer's own purchases blended with the segment's "
               "taste.")
    st.dataframe(
        bundles_frame(personal)[
            ["rank", "product_names", "list_total", "profit_proxy", "total", "reason"]
        ].rename(columns={"profit_proxy": "profit per visitor ÷ median price"}),
        hide_index=True, width="stretch",
    )
