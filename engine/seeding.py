"""One seeding function for random, numpy and torch."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy and torch (CPU and CUDA); return a numpy Generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # torch is a hard dependency, but seeding must not need it
        pass
    return np.random.default_rng(seed)
