"""ui.preload: the heavy libraries are imported once, in one background thread, and
a script thread waits for that instead of importing them concurrently.

The mechanism behind the page-switch ImportError, reproduced with a dummy package
that, like transformers, replaces itself in sys.modules with a lazy module at the
end of a slow ``__init__``: a second thread's ``from pkg import Name`` made while the
first thread is still importing waits for it, then gets the stale original module
(CPython's import statement returns the object it found before waiting)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import types
import uuid
from pathlib import Path

import pytest
from streamlit.runtime.scriptrunner import StopException

from ui import preload

ROOT = Path(__file__).resolve().parents[1]

PACKAGE_INIT = '''
import sys
import types

import {gate} as gate

gate.started.set()
gate.release.wait(30)  # the slow part of a first import, held open by the test


class _Lazy(types.ModuleType):
    def __getattr__(self, name):
        if name == "Thing":
            return 42
        raise AttributeError(name)


lazy = _Lazy(__name__)
lazy.__dict__.update(__file__=__file__, __path__=__path__, __spec__=__spec__)
sys.modules[__name__] = lazy  # as transformers' __init__ ends: sys.modules[...] = _LazyModule
'''


@pytest.fixture
def slow_lazy_package(tmp_path, monkeypatch):
    """(package name, gate): a fresh self-replacing package whose import blocks on
    ``gate.started`` / ``gate.release``."""
    name = f"slow_lazy_{uuid.uuid4().hex[:8]}"
    gate_name = f"{name}_gate"
    gate = types.SimpleNamespace(started=threading.Event(), release=threading.Event())
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(PACKAGE_INIT.format(gate=gate_name))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, gate_name, gate)
    yield name, gate
    gate.release.set()
    sys.modules.pop(name, None)


def _in_thread(fn, name: str) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - the test inspects it
            out["error"] = err

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread, out


def _from_import(package: str):
    ns: dict = {}
    exec(f"from {package} import Thing", ns)  # the statement the encoder uses  # noqa: S102
    return ns["Thing"]


def _wait_blocked_in_import(thread: threading.Thread, timeout: float = 10) -> None:
    """Wait until ``thread`` is blocked in the import machinery (the module lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident)
        while frame is not None:
            if frame.f_code.co_filename == "<frozen importlib._bootstrap>":
                return
            frame = frame.f_back
        time.sleep(0.01)
    raise AssertionError(f"{thread.name} never waited on the import lock")


def test_concurrent_import_gets_the_stale_module(slow_lazy_package):
    """The defect's mechanism, without Streamlit: what a page switch did to transformers."""
    package, gate = slow_lazy_package
    first, first_out = _in_thread(lambda: _from_import(package), "old page run")
    assert gate.started.wait(10)
    second, second_out = _in_thread(lambda: _from_import(package), "new page run")
    _wait_blocked_in_import(second)
    gate.release.set()
    first.join(10)
    second.join(10)
    assert first_out == {"value": 42}
    err = second_out.get("error")
    assert isinstance(err, ImportError), second_out
    assert f"cannot import name 'Thing' from '{package}'" in str(err)


def test_a_stopped_wait_leaves_the_import_whole_and_later_runs_import(slow_lazy_package):
    """Streamlit stops a stale run by raising StopException at its next yield point;
    in wait_for_libraries that is the poll, outside any import. The import in the
    preload thread goes on, and runs that waited get the finished package."""
    package, gate = slow_lazy_package
    loader = preload.Preloader([package], {package: ("Thing",)}, name=f"preload-{package}")
    thread = loader.start()
    assert gate.started.wait(10)

    def stop() -> None:
        raise StopException()

    stopped, stopped_out = _in_thread(lambda: loader.wait(check=stop), "stopped page run")
    stopped.join(10)
    assert isinstance(stopped_out.get("error"), StopException)
    assert thread.is_alive() and not loader.done  # the import itself was not interrupted

    def page_run():
        loader.wait()
        return _from_import(package)

    runs = [_in_thread(page_run, f"page run {i}") for i in range(2)]
    time.sleep(0.2)
    assert all(t.is_alive() for t, _ in runs)  # both are waiting, not importing
    gate.release.set()
    for t, _ in runs:
        t.join(10)
    assert [out for _, out in runs] == [{"value": 42}, {"value": 42}]
    assert loader.done and loader.error is None


def test_one_thread_per_process(slow_lazy_package):
    package, gate = slow_lazy_package
    name = f"preload-{package}"
    loader = preload.Preloader([package], name=name)
    starts = [_in_thread(loader.start, f"session {i}") for i in range(8)]
    for t, _ in starts:
        t.join(10)
    threads = {id(out["value"]) for _, out in starts}
    assert len(threads) == 1
    # the module re-imported (Streamlit's watcher evicts changed modules): a new
    # Preloader of the same name joins the running import instead of starting one
    again = preload.Preloader([package], name=name)
    assert again.start() is loader.start()
    assert [t.name for t in threading.enumerate()].count(name) == 1
    gate.release.set()
    assert again.wait(timeout=10) and loader.wait(timeout=10)


def test_a_failed_preload_is_reported_not_raised():
    loader = preload.Preloader(["no_such_module_for_preload_test"], name="preload-missing")
    assert loader.wait(timeout=10)
    assert isinstance(loader.error, ModuleNotFoundError)


@pytest.mark.slow
def test_the_app_preload_serves_the_encoder_imports_and_model():
    """In a fresh interpreter: page runs that call wait_for_libraries() while the real
    preload is still at work all get transformers' AutoModel and the one default
    encoder it loaded (never a second, concurrent from_pretrained). About 10 s."""
    script = textwrap.dedent("""
        import threading, time
        from ui import preload
        preload.start_preload()
        results = []
        def page_run():
            try:
                assert not preload.LIBRARIES.done, "preload finished before the test ran"
                preload.wait_for_libraries()
                from transformers import AutoModel, AutoTokenizer
                from engine.encoder import Encoder
                Encoder().encode(["a red kettle", "crayons"])
                results.append("ok")
            except BaseException as err:
                results.append(repr(err))
        threads = []
        for _ in range(3):
            threads.append(threading.Thread(target=page_run))
            threads[-1].start()
            time.sleep(0.5)
        for t in threads:
            t.join()
        print(results)
        assert results == ["ok"] * 3, results
        assert preload.LIBRARIES.error is None, preload.LIBRARIES.error
        from engine.encoder.model import load_model
        info = load_model.cache_info()
        assert (info.misses, info.hits) == (1, 3), info  # loaded once, by the preload
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
