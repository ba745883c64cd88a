"""Import torch, transformers and the engine modules built on them once per process,
in one background thread, before any page needs them.

Why: Streamlit stops a script only cooperatively. ``ScriptRunner.request_stop`` /
``request_rerun`` just record a request; the script thread raises ``StopException``
or ``RerunException`` at its next *yield point* (``_maybe_handle_execution_control_
request``: every ForwardMsg it enqueues, every ``st.session_state`` access, a
contended cache lock). Nothing inside ``import torch`` or ``import transformers`` is a
yield point, so a page switch never interrupts an import. But with
``runner.fastReruns`` (the default) a page switch does not wait for that yield point:
``AppSession`` asks the old runner to stop and at once starts a *new* ScriptRunner on
a new thread. The old thread carries on importing transformers (about 10 s cold) while
the new page imports it too.

Two threads importing a package that replaces itself in ``sys.modules`` is where
CPython goes wrong: an ``import``/``from … import`` statement (C
``PyImport_ImportModuleLevelObject``) that finds the package mid-import waits on the
import lock for the other thread to finish (``import_ensure_initialized``), then
returns the module object it saw *before* waiting. transformers' ``__init__`` ends by
swapping itself for a ``_LazyModule``, so the waiting thread gets the stale original
without the lazy names: ``ImportError: cannot import name 'AutoModel' from
'transformers'``. (The lock does make a second importer of an ordinary package, like
torch, wait and get the finished module; ``importlib.import_module`` re-reads
``sys.modules`` after the wait, which is why ``engine.encoder.model`` now resolves
transformers that way, under a lock: a second line of defence to this module.)

The same overlap of an old and a new script thread also loaded the encoder twice at
once, which is worse (seen in the browser test before this fix): ``from_pretrained`` swaps ``nn.Module.register_parameter`` for a
meta-device version while it builds a model (``init_empty_weights``) and puts the
saved one back after; two interleaved loads put the *patched* one back for good, and
every later load fails with "Cannot copy out of meta tensor".

So the libraries are imported, and the default encoder loaded (``load_model`` keeps
it for the process), here, by one daemon thread per process that no script run
owns; pages that use them call ``wait_for_libraries()`` first (``app.py`` does,
before running such a page), so no script thread ever imports them or loads the
default model while another thread is half-way. The wait polls Streamlit's
stop/rerun check, so a page switch during the wait ends the stale run there,
outside any import. (A non-default encoder set in the settings is still loaded
when first needed, by whichever thread needs it.)
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

# torch first (the engine modules need it); then transformers and the lazy names the
# encoder takes from it, resolved here so no page resolves them concurrently
HEAVY_MODULES: tuple[str, ...] = (
    "torch",
    "transformers",
    "engine.encoder",
    "engine.recommend",
    "engine.bundles",
)
LAZY_NAMES: dict[str, tuple[str, ...]] = {"transformers": ("AutoModel", "AutoTokenizer")}
THREAD_NAME = "bundle-engine-preload"


def load_default_encoder() -> None:
    """Load the default encoder once (engine.encoder.model.load_model caches it per
    process), so pages with the default settings never load it concurrently."""
    from engine.encoder import Encoder

    Encoder().encode(["preload"])


WARMUPS: tuple[Callable[[], object], ...] = (load_default_encoder,)
POLL_S = 0.1


def _no_check() -> None:
    return None


def run_yield_check() -> Callable[[], None]:
    """This script run's stop/rerun check (raises StopException / RerunException when
    the run has been asked to stop), or a no-op outside a script run or inside a
    cached function (stopping there would discard the outer computation)."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import (
            get_run_yield_check,
            in_cached_function,
        )
    except ImportError:  # a Streamlit without these internals: plain wait
        return _no_check
    if in_cached_function.get():
        return _no_check
    return get_run_yield_check() or _no_check


class Preloader:
    """Imports ``modules`` (then ``lazy_names`` of them), then calls ``warmups``, in
    one daemon thread named ``name``, started at most once; ``wait()`` blocks until
    it has finished.

    The thread is found again by name, so a second Preloader of the same name (this
    module re-imported after Streamlit's file watcher evicted it) joins the running
    import instead of starting a concurrent one."""

    def __init__(
        self,
        modules: Sequence[str],
        lazy_names: dict[str, tuple[str, ...]] | None = None,
        name: str = THREAD_NAME,
        warmups: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.modules = tuple(modules)
        self.lazy_names = dict(lazy_names or {})
        self.warmups = tuple(warmups)
        self.name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        """Start the import thread unless it is already started (cheap after the first)."""
        thread = self._thread
        if thread is not None:
            return thread
        with self._lock:
            if self._thread is None:
                running = next((t for t in threading.enumerate() if t.name == self.name), None)
                if running is None:
                    running = threading.Thread(target=self._run, name=self.name, daemon=True)
                    running.preload_error = None  # type: ignore[attr-defined]
                    running.start()
                self._thread = running
            return self._thread

    def _run(self) -> None:
        me = threading.current_thread()
        started = time.perf_counter()
        try:
            for module in self.modules:
                mod = importlib.import_module(module)
                for attr in self.lazy_names.get(module, ()):
                    getattr(mod, attr)
            for warmup in self.warmups:
                warmup()
        except BaseException as err:  # noqa: BLE001 - reported; the page's own import says why
            me.preload_error = err  # type: ignore[attr-defined]
            log.warning("preloading %s failed: %r", ", ".join(self.modules), err)
        else:
            log.info("preloaded %s in %.1f s", ", ".join(self.modules),
                     time.perf_counter() - started)

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """What stopped the import thread, if it failed (None while running or on success)."""
        return getattr(self._thread, "preload_error", None) if self.done else None

    def wait(
        self, timeout: float | None = None, check: Callable[[], None] | None = None
    ) -> bool:
        """Start the import if need be and block until it has finished (True) or
        ``timeout`` seconds have passed (False). ``check`` runs every POLL_S while
        waiting (default: the script run's stop/rerun check, so a stale run stops
        here). Returns at once in the import thread itself."""
        thread = self.start()
        if threading.current_thread() is thread:
            return False
        check = check or run_yield_check()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            thread.join(POLL_S)
            if not thread.is_alive():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            check()


LIBRARIES = Preloader(HEAVY_MODULES, LAZY_NAMES, warmups=WARMUPS)


def start_preload() -> threading.Thread:
    """Start importing the heavy libraries in the background (once per process)."""
    return LIBRARIES.start()


def wait_for_libraries(spinner: str | None = None, timeout: float | None = None) -> bool:
    """Block until the background import (and default encoder load) has finished;
    call it in the script thread before first use of torch/transformers/engine.encoder. With ``spinner``, shows it
    while waiting (only when there is something to wait for). A failed preload is
    logged and not raised here: the page's own import then raises the real error."""
    if LIBRARIES.done:
        return True
    if spinner is None:
        return LIBRARIES.wait(timeout)
    import streamlit as st

    with st.spinner(spinner):
        return LIBRARIES.wait(timeout)
