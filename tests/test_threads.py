"""The thread limit of the CPU-bound stages: on small machines only, overridable."""

from __future__ import annotations

import torch

from engine import threads


def test_limit_applies_inside_and_is_restored(monkeypatch):
    monkeypatch.setenv("ENGINE_THREADS", "1")
    before = torch.get_num_threads()
    with threads.single_threaded():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_no_limit_on_larger_machines_unless_asked(monkeypatch):
    monkeypatch.delenv("ENGINE_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 16)
    assert threads.thread_limit() == 0
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    assert threads.thread_limit() == 1
    monkeypatch.setenv("ENGINE_THREADS", "0")
    assert threads.thread_limit() == 0
