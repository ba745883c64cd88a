"""Data: upload order lines (and optionally products, customers), fix the column
mapping, load, and see whether the data is healthy and what was set aside."""

import pandas as pd
import streamlit as st

from engine import columns as C
from engine.workspace import safe_name
from ui import data as ud
from ui import state

ws = state.workspace()
ss = st.session_state

st.title("Data")
st.caption(
    "Upload your shop's exports (order lines required; products and customers optional), "
    "check the column mapping, and load. Nothing replaces the dataset in use unless it loads cleanly."
)

if ss.get(state.STARTUP_ERROR):
    st.warning("The bundled sample data could not be opened: "
               + "; ".join(str(i) for i in ss[state.STARTUP_ERROR].issues))


# ---- upload -------------------------------------------------------------------------------
def _take_uploads(files) -> None:
    """Read each upload's bytes once per new selection; later reruns reuse them."""
    signature = tuple((f.file_id, f.name, f.size) for f in files)
    if signature != ss[state.UPLOAD_SIGNATURE]:
        ss[state.UPLOAD_SIGNATURE] = signature
        ss[state.PENDING_FILES] = [(f.name, f.getvalue()) for f in files]
        ss[state.PENDING_SHA] = [ud.sha256(data) for _, data in ss[state.PENDING_FILES]]


upload_col, sample_col = st.columns([3, 1], vertical_alignment="center")
with upload_col:
    uploads = st.file_uploader(
        "Order lines, products, customers (CSV, XLSX or Parquet; zipped or gzipped too)",
        type=list(ud.UPLOAD_TYPES), accept_multiple_files=True, key=state.UPLOADER_WIDGET,
    )
    if uploads:
        _take_uploads(uploads)
    elif ss[state.UPLOAD_SIGNATURE] is not None:  # the analyst removed the files
        ss[state.UPLOAD_SIGNATURE] = None
        ss[state.PENDING_FILES], ss[state.PENDING_SHA] = [], []
with sample_col:
    if st.button("Use sample data", key=state.SAMPLE_BUTTON_WIDGET, width="stretch",
                 help="The bundled sample market (order lines, products, customers)"):
        ss[state.LAST_LOAD] = ud.load_sample(ws)
        ss[state.PENDING_FILES], ss[state.PENDING_SHA] = [], []

pending = ss[state.PENDING_FILES]
if pending:
    st.subheader("Check the files")
    mapping: dict[str, dict[str, str]] = {}
    for (name, data), sha in zip(pending, ss[state.PENDING_SHA], strict=True):
        try:
            info = ud.inspect_file(sha, name, data)
        except Exception as err:  # shown, and the Load click will report it per file
            st.error(f"{name}: could not be read ({err})")
            continue
        with st.expander(f"**{name}** · {info.kind.replace('_', ' ')} · {info.rows:,} rows",
                         expanded=True):
            options = [ud.KEEP, ud.IGNORE, *ud.ALL_MAPPABLE]
            chosen = {}
            cols = st.columns(4)
            for k, column in enumerate(info.columns):
                detected = info.mapping.get(column, ud.KEEP)
                chosen[column] = cols[k % 4].selectbox(
                    f"`{column}` →", options,
                    index=options.index(detected) if detected in options else 0,
                    key=state.mapping_widget_key(sha, column),
                )
            mapping[name] = ud.chosen_mapping(chosen)
    orders_col, outliers_col = st.columns([3, 1], vertical_alignment="bottom")
    orders = orders_col.radio(
        "Without an order id, an order is:", list(ud.ORDER_RULES),
        format_func=ud.ORDER_RULES.get, horizontal=True, key=ud.ORDERS_WIDGET,
        help="For files with no order-id column: a customer's lines on one day (a shop "
             "visit), or only those with the very same date and time.",
    )
    keep_outliers = outliers_col.checkbox(
        "Keep outlier quantities", key=ud.KEEP_OUTLIERS_WIDGET,
        help=f"Lines with {ud.OUTLIER_RULE} are set aside as outlier quantity (fuel "
             "pumped, a test order) unless kept.",
    )
    first = pending[0][0]
    name_col, load_col = st.columns([3, 1], vertical_alignment="bottom")
    # keyed on the first file, so a new upload proposes its own name
    ds_name = name_col.text_input("Save as", value=safe_name(first),
                                  key=f"{state.NAME_WIDGET}_{ss[state.PENDING_SHA][0][:12]}")
    if load_col.button("Load", type="primary", key=state.LOAD_BUTTON_WIDGET, width="stretch"):
        ss[state.LAST_LOAD] = ud.load_into_workspace(
            ws, safe_name(ds_name), pending, mapping, progress=state.progress_bar("Loading…"),
            orders=orders, keep_outliers=keep_outliers,
        )
        if ss[state.LAST_LOAD].ok:
            ss[state.PENDING_FILES], ss[state.PENDING_SHA] = [], []
            st.rerun()

outcome = ss[state.LAST_LOAD]
if outcome is not None and not outcome.ok:
    st.error(f"Could not load {', '.join(outcome.files) or outcome.name}:")
    for issue in outcome.issues:
        st.error(str(issue))
    if outcome.kept_previous:
        st.info(f"The previous dataset **{outcome.kept_previous}** is still in use.")
elif outcome is not None and outcome.ok:
    st.success(f"Loaded **{outcome.name}** from {', '.join(outcome.files)}.")

# ---- the dataset in use --------------------------------------------------------------------
current = state.current_dataset()
if current is None:
    st.info("No dataset loaded yet: upload files above or use the sample data.")
    st.stop()
name, dataset, report = current
entry = ws.entry(name)
options = ud.load_options(entry)
sources = ws.source_paths(name)


def _reload(keep=None, **changes) -> None:
    """Load the saved files of the dataset in use again, with its mapping, its kept codes
    and options, but for ``changes``."""
    ss[state.LAST_LOAD] = ud.load_into_workspace(
        ws, name, sources, report.get("mapping"),
        entry.get("keep_non_merchandise", []) if keep is None else keep,
        progress=state.progress_bar("Reloading…"), **{**options, **changes},
    )
    st.rerun()


st.header(f"Validation report · {name}")
counts = ud.report_counts(report)
m = st.columns(6)
m[0].metric("Rows read", f"{counts['rows_read']:,}", border=True)
m[1].metric("Rows kept", f"{counts['rows_kept']:,}", border=True)
m[2].metric("Rows set aside", f"{counts['rows_set_aside']:,}", border=True)
m[3].metric("Orders", f"{dataset.n_orders:,}", border=True)
m[4].metric("Customers", f"{dataset.n_customers:,}", border=True)
m[5].metric("Products", f"{dataset.n_products:,}", border=True)

errors = report.get("errors") or []
notes, warnings = ud.split_warnings(report.get("warnings") or [])
if notes:  # how prices, costs, orders and discounts were derived: say it, plainly
    st.info("**How the files were read**\n\n" + "\n".join(
        f"- **{n['file']}**: {n['message']}" + (f" ({n['hint']})" if n.get("hint")
                                                and not n["rule"].startswith("orders_by")
                                                else "")
        for n in notes))
    if any(n["rule"].startswith("orders_by") for n in notes):
        other = "timestamp" if options["orders"] == "day" else "day"
        if st.button(f"Reload: an order is {ud.ORDER_RULES[other]}", key=ud.RELOAD_ORDERS_WIDGET,
                     disabled=not sources,
                     help="For the files without an order id; or map an order-id column"):
            _reload(orders=other)
if errors:
    st.error(f"{len(errors)} error(s)")
    st.dataframe(ud.issues_frame(errors), hide_index=True, width="stretch")
if warnings:
    with st.expander(f"{len(warnings)} warning(s)", expanded=True):
        st.dataframe(ud.issues_frame(warnings), hide_index=True, width="stretch")

left, right = st.columns(2)
with left:
    if counts["rows_set_aside"]:
        st.plotly_chart(ud.set_aside_figure(report), width="stretch", key="chart_set_aside")
    else:
        st.success("No lines were set aside.")
with right:
    nonmerch = ud.non_merchandise_frame(report)
    st.markdown("**Non-merchandise codes** (postage, fees, vouchers) are set aside by default.")
    if nonmerch.empty:
        st.caption("None detected.")
    else:
        st.dataframe(nonmerch, hide_index=True, width="stretch", height=180)
        keep = st.multiselect(
            "Keep these as products", nonmerch[C.PRODUCT_ID].astype(str).tolist(),
            default=[k for k in entry.get("keep_non_merchandise", [])
                     if k in set(nonmerch[C.PRODUCT_ID].astype(str))],
            key=state.KEEP_WIDGET,
        )
        if st.button("Reload with these kept", key=state.RELOAD_BUTTON_WIDGET,
                     disabled=not sources):
            _reload(keep=keep)

outliers = ud.outliers_frame(report)
if len(outliers):
    kept_outliers = bool(outliers["kept"].all())
    n_outliers = len(outliers) if kept_outliers else max(
        len(outliers), int((report.get("set_aside") or {}).get("outlier_quantity", 0)))
    st.markdown(f"**Outlier quantities**: {n_outliers:,} line(s) with {ud.OUTLIER_RULE}, "
                + ("kept as asked." if kept_outliers else "set aside as outlier quantity.")
                + (f" The first {len(outliers):,} are listed." if n_outliers > len(outliers)
                   else ""))
    st.dataframe(outliers.rename(columns={C.PRODUCT_ID: "product"}), hide_index=True,
                 width="stretch", height=min(220, 40 + 35 * len(outliers)))
    if kept_outliers:
        st.caption("They weigh on their product's demand like any other line.")
        if st.button("Reload setting them aside", key=ud.RELOAD_OUTLIERS_WIDGET,
                     disabled=not sources):
            _reload(keep_outliers=False)
    else:
        st.caption("Fuel pumped, a wholesale or a test order? If they are real sales, keep "
                   "them: reload with them kept here, or tick **Keep outlier quantities** "
                   "when loading.")
        if st.button("Reload with the outliers kept", key=ud.RELOAD_OUTLIERS_WIDGET,
                     disabled=not sources):
            _reload(keep_outliers=True)

aside = state.set_aside_rows(name)
if not aside.empty:
    with st.expander("Sample of the lines set aside", expanded=False):
        reasons = sorted(aside["reason"].astype(str).unique()) if "reason" in aside else []
        pick = st.multiselect("Reason", reasons, default=reasons, key=state.REASON_FILTER_WIDGET)
        shown = aside[aside["reason"].astype(str).isin(pick)] if reasons else aside
        st.dataframe(ud.pseudonymise_frame(shown.head(200), ws), hide_index=True, width="stretch")
        st.caption(f"{len(shown):,} lines; first 200 shown. Customer ids are pseudonymised.")

with st.expander("Files and column mapping used"):
    for file, kind in (report.get("file_kinds") or {}).items():
        used = (report.get("mapping") or {}).get(file, {})
        st.markdown(f"**{file}** · {kind.replace('_', ' ')}")
        st.dataframe(pd.DataFrame({"their column": list(used), "canonical": list(used.values())}),
                     hide_index=True)
    st.caption(f"Without an order id, an order is {ud.ORDER_RULES[options['orders']]}; "
               "outlier quantities " + ("kept." if options["keep_outliers"] else "set aside."))
    sha = {f["name"]: f["sha256"][:12] for f in entry.get("files", [])}
    if sha:
        st.caption("sha256: " + " · ".join(f"{k} {v}…" for k, v in sha.items()))

st.header("What the data shows")
lines = dataset.lines
figures = ud.dataset_figures((str(ws.root), name, entry["dir"]), dataset)
a, b = st.columns(2)
a.plotly_chart(figures["weekly"], width="stretch", key="chart_weekly")
b.plotly_chart(figures["price"], width="stretch", key="chart_price")
c, d = st.columns(2)
c.plotly_chart(figures["top_products"], width="stretch", key="chart_top")
d.plotly_chart(figures["top_pairs"], width="stretch", key="chart_pairs")

with st.expander("Order lines (first 200; customer ids pseudonymised)"):
    shown = lines.drop(columns=[C.CUSTOMER_IDX, C.PRODUCT_IDX], errors="ignore").head(200)
    st.dataframe(ud.pseudonymise_frame(pd.DataFrame(shown), ws), hide_index=True, width="stretch")
