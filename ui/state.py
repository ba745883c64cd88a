"""Session keys, the workspace singleton and the dataset in use.

Results live under keys no widget owns (widget-owned keys are reset when the
analyst leaves a page); widget keys are named ``*_WIDGET`` so the two never mix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import streamlit as st

from engine.data.dataset import Dataset
from engine.errors import ConfigError, DataValidationError, EngineError
from engine.pipeline import RunConfig
from engine.workspace import Workspace, default_root
from ui.data import SAMPLE_DIR, SAMPLE_FILES, SAMPLE_NAME, load_sample

__all__ = ["SAMPLE_DIR", "SAMPLE_FILES", "SAMPLE_NAME"]

log = logging.getLogger(__name__)


# --- result keys (no widget owns these) ---
INITIALISED = "state_initialised"
PENDING_FILES = "data_pending_files"  # list[(name, bytes)] uploaded, not loaded yet
PENDING_SHA = "data_pending_sha"  # sha256 of each pending file, hashed once on upload
UPLOAD_SIGNATURE = "data_upload_signature"  # which uploader files PENDING_FILES came from
LAST_LOAD = "data_last_load"  # LoadOutcome of the latest Load click
STARTUP_ERROR = "startup_error"  # why the sample could not be opened on first start
RUN_CONFIG = "run_config"  # the one RunConfig of the session; each page edits its slice

# --- widget keys ---
DATASET_PICKER_WIDGET = "sidebar_dataset_widget"
UPLOADER_WIDGET = "data_uploader_widget"
SAMPLE_BUTTON_WIDGET = "data_sample_widget"
LOAD_BUTTON_WIDGET = "data_load_widget"
NAME_WIDGET = "data_name_widget"
KEEP_WIDGET = "data_keep_widget"
RELOAD_BUTTON_WIDGET = "data_reload_widget"
REASON_FILTER_WIDGET = "data_reason_widget"


def mapping_widget_key(file_sha: str, column: str) -> str:
    """Key of the selectbox that maps one column of one uploaded file."""
    return f"data_map_{file_sha[:12]}_{column}"


@st.cache_resource(show_spinner=False)
def _workspace(root: str) -> Workspace:
    return Workspace(Path(root))


def workspace() -> Workspace:
    """The workspace at ``ENGINE_WORKSPACE`` (else ``./.workspace``); one object per root."""
    return _workspace(str(default_root().resolve()))


def init_state() -> None:
    """Set the result keys once per session; open the sample market on a first start."""
    if st.session_state.get(INITIALISED):
        return
    st.session_state[PENDING_FILES] = []
    st.session_state[PENDING_SHA] = []
    st.session_state[UPLOAD_SIGNATURE] = None
    st.session_state[LAST_LOAD] = None
    st.session_state[STARTUP_ERROR] = None
    st.session_state[RUN_CONFIG] = RunConfig()
    ws = workspace()
    if not ws.names():
        outcome = load_sample(ws)
        if not outcome.ok:
            st.session_state[STARTUP_ERROR] = outcome
    st.session_state[INITIALISED] = True


@st.cache_data(show_spinner="Opening the dataset…", max_entries=4)
def _load_dataset(root: str, name: str, folder: str) -> tuple[Dataset, dict]:
    # ``folder`` changes with every save of ``name``, so a re-save is never served stale
    del folder
    return Workspace(Path(root)).load(name)


def current_dataset() -> tuple[str, Dataset, dict] | None:
    """(name, dataset, report dict) of the dataset in use, or None when there is none."""
    ws = workspace()
    name = ws.current
    if name is None:
        return None
    dataset, report = _load_dataset(str(ws.root.resolve()), name, ws.entry(name)["dir"])
    return name, dataset, report


def require_dataset() -> tuple[str, Dataset, str]:
    """(name, dataset, saved folder) of the dataset in use; without one, a short
    message and ``st.stop()`` (the page's prerequisite is missing)."""
    current = current_dataset()
    if current is None:
        st.info("No dataset yet: load one on the Data page.")
        st.stop()
    name, dataset, _ = current
    return name, dataset, workspace().entry(name)["dir"]


@st.cache_data(show_spinner=False, max_entries=4)
def _set_aside_rows(root: str, name: str, folder: str):
    del folder  # cache key only: a new save of ``name`` gets a new folder
    return Workspace(Path(root)).set_aside_rows(name)


def set_aside_rows(name: str):
    """The lines set aside when ``name`` was loaded (raw customer ids: pseudonymise to show)."""
    ws = workspace()
    return _set_aside_rows(str(ws.root.resolve()), name, ws.entry(name)["dir"])


def progress_bar(label: str, done: str | None = None) -> Callable[[float], None]:
    """An engine ``progress`` callback drawing an ``st.progress`` bar (fraction 0..1);
    at 1 the bar says ``done`` instead of ``label`` when given."""
    bar = st.progress(0.0, text=label)

    def update(fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        bar.progress(fraction, text=done if done is not None and fraction >= 1.0 else label)

    return update


def run_config() -> RunConfig:
    """The session's settings (every page reads and edits this one object)."""
    init_state()
    return st.session_state[RUN_CONFIG]


def set_slice(**slices) -> RunConfig:
    """Replace slices of the session's settings (``set_slice(beam=BeamConfig(...))``)."""
    config = replace(run_config(), **slices)
    st.session_state[RUN_CONFIG] = config
    return config


def show_error(err: Exception) -> None:
    """A page's failure as a message, never a traceback: an engine error says what to
    change (a setting, a file); anything else is logged and named in one line. The
    workspace and the dataset in use are untouched."""
    if isinstance(err, DataValidationError):
        for issue in err.issues:
            st.error(str(issue))
    elif isinstance(err, ConfigError):
        st.error("These settings cannot be used: " + "; ".join(err.problems))
    elif isinstance(err, EngineError):
        st.error(str(err))
    else:
        log.exception("page failed")
        st.error(f"This page could not be shown ({type(err).__name__}: {err}). The data "
                 "in use is unchanged; change the last setting back or reload the page.")
