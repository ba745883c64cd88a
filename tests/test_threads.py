"""The thread limit of the CPU-bound stages: none unless ENGINE_THREADS asks."""

from __future__ import annotations

import torch

from engine import threads


def test_limit_applies_inside_and_is_restored(monkeypatch):
    monkeypatch.setenv("ENGINE_THREADS", "1")
    before = torch.get_num_threads()
    with threads.single_threaded():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_no_limit_unless_asked(monkeypatch):
    monkeypatch.delenv("ENGINE_THREADS", raising=False)
    assert threads.thread_limit() == 0
    monkeypatch.setenv("ENGINE_THREADS", "2")
    assert threads.thread_limit() == 2
