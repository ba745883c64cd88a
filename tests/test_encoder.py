"""The product encoder: known similarities, order, the cache, half precision."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from engine import columns as C
from engine.device import cpu_has_native_bf16
from engine.encoder import (
    EmbeddingCache,
    Encoder,
    EncoderConfig,
    default_model_path,
    encode_products,
    encode_texts,
    half_precision_agrees,
    load_model,
    nearest,
    product_texts,
    text_similarity,
)
from engine.encoder import model as encoder_model
from engine.encoder.cache import cache_key

# fp32: the reference the exactness tests compare batches and caches against; the
# default ("auto") may run bf16 on a CPU with bf16 instructions
CPU = EncoderConfig(device="cpu", precision="fp32")

TEXTS = [
    "espresso coffee beans, dark roast",
    "dark roast espresso beans",
    "garden hose 20 m",
    "WHITE HANGING HEART T-LIGHT HOLDER",
    "set of 3 cake tins pantry design",
    "a",
    "",
    "children's red wooden toy train with carriages and a long track for the playroom",
]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder(CPU)


@pytest.fixture(scope="module")
def vectors(encoder) -> np.ndarray:
    return encoder.encode(TEXTS)


@pytest.fixture
def spy(monkeypatch):
    """Records how many texts each Encoder.encode call was given."""
    calls: list[int] = []
    real = Encoder.encode

    def counting(self, texts, progress=None):
        calls.append(len(texts))
        return real(self, texts, progress=progress)

    monkeypatch.setattr(Encoder, "encode", counting)
    return calls


def test_shape_dtype_and_unit_norm(vectors):
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_texts_are_closer_than_dissimilar(vectors):
    sim = vectors @ vectors.T
    assert sim[0, 1] > 0.8  # same product described two ways
    assert sim[0, 2] < 0.3  # coffee vs garden hose
    assert sim[0, 1] > sim[0, 2] + 0.5


def test_order_restored_when_shuffled(encoder, vectors):
    perm = np.random.default_rng(0).permutation(len(TEXTS))
    shuffled = encoder.encode([TEXTS[i] for i in perm])
    np.testing.assert_allclose(shuffled, vectors[perm], atol=1e-5)


def test_equal_texts_equal_vectors_across_batches():
    # batch size 2 puts the copies of one text in different, differently padded batches
    enc = Encoder(EncoderConfig(device="cpu", batch_size=2, precision="fp32"))
    texts = ["garden hose 20 m", "x " * 40, "garden hose 20 m", "tea", "garden hose 20 m"]
    v = enc.encode(texts)
    np.testing.assert_allclose(v[0], v[2], atol=1e-5)
    np.testing.assert_allclose(v[0], v[4], atol=1e-5)


def test_progress_reaches_one_and_never_decreases():
    seen: list[float] = []
    Encoder(EncoderConfig(device="cpu", batch_size=3)).encode(TEXTS, progress=seen.append)
    assert seen[-1] == 1.0
    assert all(0.0 <= a <= b <= 1.0 for a, b in zip(seen, seen[1:], strict=False))
    assert len(seen) >= 3  # one per batch of 3 over 8 texts, then the final 1.0


def test_empty_input_and_single_string(encoder):
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match="sequence of texts"):
        encoder.encode("garden hose")


def test_config_validates_itself():
    with pytest.raises(ValueError, match="precision"):
        EncoderConfig(precision="fp8")
    with pytest.raises(ValueError, match="batch_size"):
        EncoderConfig(batch_size=0)
    assert EncoderConfig().identity != EncoderConfig(max_length=64).identity


def test_model_loaded_once_per_process(encoder):
    encoder.encode(["tea"])
    before = load_model.cache_info().hits
    Encoder(CPU).encode(["tea"])
    assert load_model.cache_info().hits == before + 1


def test_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    products = pd.read_csv(
        "tests/data/online_retail_sample.csv", usecols=["Description"], nrows=400
    )
    texts = products["Description"].dropna().drop_duplicates().head(50).tolist()
    assert len(texts) == 50
    ours = Encoder(CPU).encode(texts)
    ref = st.SentenceTransformer(default_model_path(), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    assert (ours * ref).sum(axis=1).min() >= 0.999


# ---- product texts ----


def test_product_texts_include_attributes_and_skip_empty():
    products = pd.DataFrame(
        {
            C.PRODUCT_ID: ["A", "B"],
            C.NAME: ["Espresso beans", "Garden hose"],
            C.DESCRIPTION: ["Dark roast, 1 kg", None],
            C.CATEGORY: ["coffee", ""],
            C.PRICE: [12.5, 20.0],
            C.COST: [6.0, float("nan")],
            C.PRODUCT_IDX: [0, 1],
            "colour": [None, "green"],
            "length_m": [float("nan"), 20.0],
        }
    )
    assert product_texts(products) == [
        "Espresso beans. category: coffee. Dark roast, 1 kg",
        "Garden hose. colour: green. length_m: 20",
    ]


def test_product_texts_leave_out_codes_and_what_the_name_says():
    """A grocery catalogue without names: the name is built from the attributes,
    so they are not repeated, and manufacturer numbers and UPCs (codes) stay out;
    a small set of whole numbers (pack counts) is a quantity and stays in."""
    n = 30
    products = pd.DataFrame({
        C.PRODUCT_ID: [f"p{i}" for i in range(n)],
        C.NAME: ["Private FROZEN PIZZA 12 OZ"] * n,
        C.CATEGORY: ["FROZEN GROCERY"] * n,
        "MANUFACTURER": [str(100 + 7 * i) for i in range(n)],
        "upc_code": [f"00{i:05d}" for i in range(n)],
        "BRAND": ["Private"] * n,
        "SUB_COMMODITY_DESC": ["FROZEN PIZZA"] * n,
        "CURR_SIZE_OF_PRODUCT": ["12 OZ"] * n,
        "pack": [1, 2, 4] * 10,
    })
    texts = product_texts(products)
    assert texts[0] == "Private FROZEN PIZZA 12 OZ. category: FROZEN GROCERY. pack: 1"
    assert len(set(texts)) == 3  # one text per pack size, so each is encoded once


def test_product_texts_name_only_and_repeated_description():
    products = pd.DataFrame(
        {C.PRODUCT_ID: ["1", "2"], C.NAME: ["  RED  MUG ", "tea"], C.DESCRIPTION: ["red mug", ""]}
    )
    assert product_texts(products) == ["RED MUG", "tea"]


def test_encode_products_rows_follow_products(encoder):
    products = pd.DataFrame(
        {C.PRODUCT_ID: ["h", "c"], C.NAME: ["garden hose 20 m", "dark roast espresso beans"]}
    )
    v = encode_products(products, CPU)
    np.testing.assert_allclose(v, encoder.encode(product_texts(products)), atol=1e-6)


# ---- the cache ----


def test_second_call_encodes_nothing(tmp_path, spy, vectors):
    first = encode_texts(TEXTS, CPU, cache_dir=tmp_path)
    assert spy == [len(TEXTS)]
    second = encode_texts(TEXTS, CPU, cache_dir=tmp_path)
    assert spy == [len(TEXTS)]  # no new encode call
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(second, vectors, atol=1e-5)


def test_changed_text_reencoded_alone(tmp_path, spy, encoder):
    products = pd.DataFrame({C.PRODUCT_ID: ["a", "b", "c"], C.NAME: TEXTS[:3]})
    encode_products(products, CPU, cache_dir=tmp_path)
    changed = products.assign(**{C.NAME: [TEXTS[0], "green watering can", TEXTS[2]]})
    v = encode_products(changed, CPU, cache_dir=tmp_path)
    assert spy == [3, 1]
    np.testing.assert_allclose(v[1], encoder.encode(["green watering can"])[0], atol=1e-5)


def test_duplicate_texts_encoded_once(tmp_path, spy):
    v = encode_texts(["tea", "tea", "coffee", "tea"], CPU, cache_dir=tmp_path)
    assert spy == [2]
    np.testing.assert_array_equal(v[0], v[3])


def test_other_model_does_not_hit_the_same_entries(tmp_path, spy):
    encode_texts(TEXTS[:3], CPU, cache_dir=tmp_path)
    other = EncoderConfig(model=default_model_path(), device="cpu", max_length=16)
    found, _ = EmbeddingCache(tmp_path).get_many(
        [cache_key(other.identity, t) for t in TEXTS[:3]]
    )
    assert not found.any()
    encode_texts(TEXTS[:3], other, cache_dir=tmp_path)
    assert spy == [3, 3]


def test_cache_roundtrip_and_compaction(tmp_path):
    cache = EmbeddingCache(tmp_path, max_shards=3)
    rng = np.random.default_rng(0)
    stored = {}
    for step in range(5):  # five writes: compaction must kick in
        keys = [f"k{step}-{i}" for i in range(4)] + ["shared"]
        vecs = rng.normal(size=(5, 6)).astype(np.float32)
        cache.put_many(keys, vecs)
        stored.update(zip(keys, vecs, strict=True))  # later writes win
    assert len(list(tmp_path.glob("shard-*.npz"))) <= 3
    keys = list(stored) + ["absent"]
    found, got = EmbeddingCache(tmp_path).get_many(keys)
    assert found.tolist() == [True] * len(stored) + [False]
    np.testing.assert_array_equal(got[:-1], np.stack(list(stored.values())))
    np.testing.assert_array_equal(got[-1], 0.0)


def test_corrupt_cache_file_is_ignored_and_rebuilt(tmp_path, spy, vectors, caplog):
    encode_texts(TEXTS, CPU, cache_dir=tmp_path)
    (shard,) = tmp_path.glob("shard-*.npz")
    shard.write_bytes(shard.read_bytes()[:100])  # a crash mid-write left half a file
    (tmp_path / "shard-0-garbage.npz").write_bytes(b"not a zip at all")
    with caplog.at_level(logging.WARNING, logger="engine.encoder.cache"):
        again = encode_texts(TEXTS, CPU, cache_dir=tmp_path)
    assert "unreadable embedding cache file" in caplog.text
    assert spy == [len(TEXTS), len(TEXTS)]
    np.testing.assert_allclose(again, vectors, atol=1e-5)
    encode_texts(TEXTS, CPU, cache_dir=tmp_path)  # rebuilt: the third call is all hits
    assert spy == [len(TEXTS), len(TEXTS)]


def test_put_many_checks_shapes(tmp_path):
    with pytest.raises(ValueError, match="one row per key"):
        EmbeddingCache(tmp_path).put_many(["a", "b"], np.zeros((3, 4)))


# ---- similarity ----


def test_text_similarity_and_nearest(vectors):
    block = text_similarity(vectors, [0, 2], slice(None))
    assert block.shape == (2, len(TEXTS))
    np.testing.assert_allclose(block[0, 0], 1.0, atol=1e-5)
    idx, scores = nearest(vectors, 0, k=2)
    assert idx[0] == 1 and 0 not in idx
    assert scores[0] >= scores[1]
    idx2, scores2 = nearest(vectors, [0, 1], k=3)
    assert idx2.shape == scores2.shape == (2, 3)
    assert idx2[1, 0] == 0


def test_nearest_breaks_ties_by_index():
    e = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    idx, scores = nearest(e, 0, k=10)
    assert idx.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(scores, 0.0)


# ---- half precision ----


def test_half_precision_agreement_logic():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(5, 16)).astype(np.float32)
    ok, worst = half_precision_agrees(ref, ref * 3 + 1e-4)
    assert ok and worst > 0.999
    noisy = ref.copy()
    noisy[2] = rng.normal(size=16)
    ok, worst = half_precision_agrees(ref, noisy)
    assert not ok and worst < 0.99
    ok, _ = half_precision_agrees(ref, np.full_like(ref, np.nan))
    assert not ok


def test_auto_precision_on_cpu_is_bf16_only_with_native_support(vectors):
    """bf16 where the CPU has bf16 instructions (and it agrees with fp32), else fp32;
    either way the vectors match fp32 in any batching."""
    auto = Encoder(EncoderConfig(device="cpu", batch_size=3))
    v = auto.encode(TEXTS)
    assert auto.dtype_ == (torch.bfloat16 if cpu_has_native_bf16() else torch.float32)
    assert (v * vectors).sum(axis=1).min() >= 0.999


def test_half_falls_back_to_fp32_when_it_disagrees(monkeypatch, caplog):
    monkeypatch.setattr(encoder_model, "half_precision_agrees", lambda a, b: (False, 0.5))
    loaded = load_model.__wrapped__(default_model_path(), "cpu", "fp32")
    with caplog.at_level(logging.WARNING, logger="engine.encoder.model"):
        back = encoder_model._try_half(loaded, torch.bfloat16, 128)
    assert back.dtype == torch.float32
    assert next(back.model.parameters()).dtype == torch.float32
    assert "using fp32" in caplog.text


def test_forced_bf16_on_cpu_matches_fp32(vectors):
    enc = Encoder(EncoderConfig(device="cpu", precision="bf16"))
    v = enc.encode(TEXTS)
    assert enc.dtype_ == torch.bfloat16  # MiniLM in bf16 passes the 0.99 check
    assert (v * vectors).sum(axis=1).min() >= 0.99


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_half_precision_matches_cpu(vectors):
    enc = Encoder(EncoderConfig(device="cuda"))
    v = enc.encode(TEXTS)
    assert enc.dtype_ in (torch.float16, torch.bfloat16)
    assert (v * vectors).sum(axis=1).min() >= 0.99


def test_batch_bounds_respect_rows_and_token_budget():
    lengths = np.array([100, 60, 10, 10, 10, 10, 10])  # sorted longest first
    assert encoder_model._batch_bounds(lengths, 3, None) == [(0, 3), (3, 6), (6, 7)]
    # 120 tokens: one 100-token row, then two rows of 60 (padded to 60), then 3 of 10
    assert encoder_model._batch_bounds(lengths, 3, 120) == [(0, 1), (1, 3), (3, 6), (6, 7)]
    assert encoder_model._batch_bounds(np.array([500]), 8, 100) == [(0, 1)]


def test_token_budget_batches_give_the_same_vectors(vectors, monkeypatch):
    monkeypatch.setitem(encoder_model._TOKEN_BUDGETS, "cpu", 20)  # forces many small batches
    np.testing.assert_allclose(Encoder(CPU).encode(TEXTS), vectors, atol=1e-5)
