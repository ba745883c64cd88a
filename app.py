"""The dashboard frame: page router, sidebar with the dataset in use, shared state.

Run with ``streamlit run app.py``. Datasets live in the workspace at
``ENGINE_WORKSPACE`` (else ``./.workspace``); on a first start with an empty
workspace the bundled sample market is loaded and opened.
"""

import streamlit as st

from ui import preload, state

# torch/transformers are imported, and the default encoder loaded, once, in a
# background thread, before any page needs them: two script threads doing either at
# once (a page switch starts a new script thread while the old one is still at it)
# break them (see ui/preload.py). Cheap after the first run; before init_state,
# which imports torch for the sample data.
preload.start_preload()
st.set_page_config(page_title="Bundle engine", page_icon="🧺", layout="wide")
state.init_state()

# one line per page, in menu order; icons from Material Symbols (":material/name:"),
# since emoji need a font that headless chromium in CI lacks. The page scripts live in
# app_pages/, not pages/: a folder named pages/ beside this file makes Streamlit run a
# directly linked page (a bookmark to /pricing) on its own, without this frame's
# navigation and sidebar, until some session has opened the app at its root.
PAGES = [
    st.Page("app_pages/1_data.py", title="Data", icon=":material/database:", default=True),
    st.Page("app_pages/2_preferences.py", title="Preferences", icon=":material/insights:"),
    st.Page("app_pages/3_bundles.py", title="Bundles", icon=":material/shopping_basket:"),
    st.Page("app_pages/4_pricing.py", title="Pricing", icon=":material/sell:"),
    st.Page("app_pages/5_export.py", title="Export", icon=":material/download:"),
]
# pages that use torch/transformers (the embeddings): they wait for the preload
NEEDS_LIBRARIES = {"Preferences", "Bundles", "Pricing", "Export"}


def _pick_dataset() -> None:
    state.workspace().set_current(st.session_state[state.DATASET_PICKER_WIDGET])


def sidebar() -> None:
    ws = state.workspace()
    names = ws.names()
    with st.sidebar:
        st.subheader("Dataset in use")
        if not names:
            st.info("No dataset yet: upload files on the Data page.")
            return
        current = ws.current or names[0]
        # a load elsewhere changes the dataset in use: the picker follows it
        st.session_state[state.DATASET_PICKER_WIDGET] = current
        st.selectbox(
            "Dataset", names, key=state.DATASET_PICKER_WIDGET,
            on_change=_pick_dataset, help="Datasets saved in the workspace",
        )
        counts = ws.entry(current)["counts"]
        left, right = st.columns(2)
        left.metric("Order lines", f"{counts['lines']:,}")
        right.metric("Orders", f"{counts['orders']:,}")
        left.metric("Customers", f"{counts['customers']:,}")
        right.metric("Products", f"{counts['products']:,}")
        st.caption(f"Loaded {ws.entry(current)['created']} · workspace `{ws.root}`")


page = st.navigation(PAGES)
sidebar()
if page.title in NEEDS_LIBRARIES:
    preload.wait_for_libraries(spinner="Loading the model libraries…")
try:
    page.run()
except Exception as err:  # Streamlit's stop/rerun are BaseExceptions and pass through
    state.show_error(err)
