"""Published numbers shown in chapters 4 (Benchmarks) and 5 (Scaling laws), recomputed.

Each figure lives once in course_lib/data with its source. Here a second transcription of a
few values per table (typed from the paper, cited in the comment) guards against typos, and
every claim the chapters make about the numbers is recomputed from first principles:
C = 6ND against the printed budgets, the 20-tokens rule against Chinchilla's Table 3 and
allocation, the authors' claims against their own tables.
"""

import numpy as np
import pytest

from course_lib.evaluation import (
    benchmark_sizes,
    bootstrap_ratings,
    elo_ratings,
    load_benchmark_table,
    simulate_battles,
    wilson_interval,
)
from course_lib.scaling import (
    BESIROGLU_FIT,
    CHINCHILLA_FIT,
    PF_DAY,
    chinchilla_figures,
    chinchilla_optimal,
    chinchilla_parametric_optimal,
    published_runs,
    training_flops,
)

RUNS = published_runs()
CHINCHILLA = chinchilla_figures()


# ---------------------------------------------------------------- chapter 5: compute budgets


@pytest.mark.parametrize(
    ("name", "rel"),
    [
        ("GPT-3 175B", 0.01),  # Brown et al. 2020, Table D.1: 3.14e23
        ("PaLM 540B", 0.02),  # Chowdhery et al. 2022: 2.56e24
        ("Llama 3 405B", 0.01),  # Llama Team 2024, §1: 3.8e25
        ("Chinchilla 70B", 0.03),  # Hoffmann et al. 2022: the Gopher budget, 5.76e23
    ],
)
def test_six_n_d_reproduces_published_budgets(name, rel):
    run = RUNS[name]
    assert training_flops(run.params, run.tokens) == pytest.approx(run.flops, rel=rel)


def test_gopher_is_the_documented_exception():
    # 6 · 280e9 · 300e9 = 5.04e23, 12.5% below the 5.76e23 Hoffmann et al. use for Gopher.
    run = RUNS["Gopher 280B"]
    assert training_flops(run.params, run.tokens) / run.flops == pytest.approx(0.875, abs=1e-9)


def test_published_runs_match_a_second_transcription():
    assert (RUNS["GPT-3 175B"].params, RUNS["GPT-3 175B"].tokens) == (175e9, 300e9)
    assert RUNS["PaLM 540B"].tokens == 780e9  # Chowdhery et al. 2022
    assert RUNS["Llama 3 405B"].tokens == 15.6e12  # Llama Team 2024, §1
    assert (RUNS["phi-3-mini"].params, RUNS["phi-3-mini"].tokens) == (3.8e9, 3.3e12)
    # GPT-3 in PF-days: Brown et al. print 3.64e3 PF-days next to 3.14e23 FLOPs.
    assert RUNS["GPT-3 175B"].flops / PF_DAY == pytest.approx(3.64e3, rel=0.005)


def test_chinchilla_table3_from_twenty_tokens_per_parameter():
    for params, flops, tokens in CHINCHILLA["table3"]["rows"]:
        n, d = chinchilla_optimal(flops)
        assert n == pytest.approx(params, rel=0.05)
        assert d == pytest.approx(tokens, rel=0.08)  # tokens printed with 2-3 digits
        assert training_flops(params, tokens) == pytest.approx(flops, rel=0.05)
    # A second transcription of two rows (Hoffmann et al. 2022, Table 3).
    assert [1e9, 1.21e20, 20.2e9] in CHINCHILLA["table3"]["rows"]
    assert [175e9, 3.85e24, 3.7e12] in CHINCHILLA["table3"]["rows"]


def test_table2_exponents_of_approach_3_from_the_constants():
    published = CHINCHILLA["table2_exponents"]["approach_3"]  # a = 0.46, b = 0.54
    s = CHINCHILLA_FIT.alpha + CHINCHILLA_FIT.beta
    assert CHINCHILLA_FIT.beta / s == pytest.approx(published["a"], abs=0.01)
    assert CHINCHILLA_FIT.alpha / s == pytest.approx(published["b"], abs=0.01)
    assert CHINCHILLA["table2_exponents"]["kaplan_2020"] == {"a": 0.73, "b": 0.27}


def test_the_gopher_budget_three_ways():
    gopher = CHINCHILLA["gopher_budget"]
    # 20 tokens per parameter: Chinchilla's 70B on 1.4T tokens (Hoffmann et al. §4).
    n, d = chinchilla_optimal(gopher["flops"])
    assert n == pytest.approx(gopher["chinchilla_params"], rel=0.02)
    assert d == pytest.approx(gopher["chinchilla_tokens"], rel=0.02)
    # Approach 3 with the rounded constants: 32B, below the paper's own 40B (Fig. 4 caption).
    n3, _ = chinchilla_parametric_optimal(gopher["flops"])
    assert 31e9 < n3 < 33e9
    assert n3 < 0.85 * gopher["approach_3_params"]
    # The refit of Besiroglu et al. 2024 lands next to Approaches 1 and 2.
    nb, db = chinchilla_parametric_optimal(gopher["flops"], BESIROGLU_FIT)
    assert nb == pytest.approx(70e9, rel=0.05)
    assert db == pytest.approx(1.4e12, rel=0.06)
    assert (BESIROGLU_FIT.E, BESIROGLU_FIT.beta) == (1.8172, 0.3658)  # arXiv:2404.10102


def test_llama3_8b_over_training():
    run = RUNS["Llama 3 8B"]
    assert run.tokens_per_param == pytest.approx(1875)
    # Meta: "the Chinchilla-optimal amount ... for an 8B parameter model corresponds to
    # ~200B tokens"; the 20-tokens rule gives 160B.
    n, d = chinchilla_optimal(training_flops(run.params, 20 * run.params))
    assert (n, d) == (pytest.approx(8e9), pytest.approx(160e9))
    assert d == pytest.approx(200e9, rel=0.25)
    assert training_flops(run.params, run.tokens) == pytest.approx(7.2e23)
    assert training_flops(run.params, run.tokens) / 5.76e23 == pytest.approx(1.25)


# ---------------------------------------------------------------- chapter 4: benchmark tables


def test_tables_match_a_second_transcription():
    mistral, mixtral = load_benchmark_table("mistral_7b"), load_benchmark_table("mixtral")
    # Jiang et al. 2023, Table 2.
    assert mistral.score("Mistral 7B", "MMLU") == 60.1
    assert mistral.score("Llama 2 13B", "GSM8K") == 34.3
    assert mistral.score("Code-Llama 7B", "HumanEval") == 31.1
    # Jiang et al. 2024, Table 2.
    assert mixtral.score("Mixtral 8x7B", "MMLU") == 70.6
    assert mixtral.score("Llama 2 70B", "GSM8K") == 69.6
    # Llama 3.1 model card.
    llama = load_benchmark_table("llama31")
    assert llama.score("Llama 3.1 405B", "MMLU") == 85.2
    assert llama.score("Llama 3 8B", "Winogrande") is None  # '-' in the card
    instruct = load_benchmark_table("llama31_instruct")
    assert instruct.score("Llama 3.1 8B Instruct", "MMLU (CoT)") == 73.0
    phi3 = load_benchmark_table("phi3")  # Abdin et al. 2024, abstract
    assert (phi3.score("phi-3-mini", "MMLU"), phi3.score("phi-3-mini", "MT-bench")) == (69, 8.38)
    assert benchmark_sizes() == {"HumanEval": 164, "GSM8K": 1319}


def test_mistral_caption_claim_against_its_own_table():
    # "Mistral 7B outperforms Llama 2 13B on all metrics": true on 11 of 12 columns.
    frame = load_benchmark_table("mistral_7b").to_frame()
    wins = frame.loc["Mistral 7B"] > frame.loc["Llama 2 13B"]
    assert wins.sum() == 11
    assert list(wins.index[~wins]) == ["NQ"]
    assert frame.loc["Llama 2 13B", "NQ"] - frame.loc["Mistral 7B", "NQ"] == pytest.approx(0.2)


def test_same_model_two_papers():
    first = load_benchmark_table("mistral_7b").to_frame().loc["Mistral 7B"]
    second = load_benchmark_table("mixtral").to_frame().loc["Mistral 7B"]
    assert second["MMLU"] - first["MMLU"] == pytest.approx(2.4)
    assert second["TriviaQA"] - first["TriviaQA"] == pytest.approx(-7.4)
    assert (first != second).sum() == 12  # every column moved
    # ... and so do Llama 2's world-knowledge scores (24.7 and 63.8 vs 17.5 and 56.6 for 7B).
    llama_first = load_benchmark_table("mistral_7b").to_frame().loc["Llama 2 7B"]
    llama_second = load_benchmark_table("mixtral").to_frame().loc["Llama 2 7B"]
    moved = llama_first.index[llama_first != llama_second].tolist()
    assert moved == ["NQ", "TriviaQA"]


def test_chain_of_thought_helps_llama31_and_hurts_llama3():
    frame = load_benchmark_table("llama31_instruct").to_frame()
    gain = frame["MMLU (CoT)"] - frame["MMLU"]
    for model, value in gain.items():
        assert (value > 0) == model.startswith("Llama 3.1"), model


def test_sampling_error_of_published_scores():
    sizes, mistral = benchmark_sizes(), load_benchmark_table("mistral_7b")

    def interval(model, bench):
        n = sizes[bench]
        return wilson_interval(round(mistral.score(model, bench) / 100 * n), n)

    mistral_he, codellama_he = (
        interval("Mistral 7B", "HumanEval"),
        interval("Code-Llama 7B", "HumanEval"),
    )
    assert mistral_he[0] < codellama_he[1] and codellama_he[0] < mistral_he[1]  # overlap
    assert 6.5 < 50 * (mistral_he[1] - mistral_he[0]) < 7.5  # about ±7 points at n = 164
    mistral_gsm, llama_gsm = interval("Mistral 7B", "GSM8K"), interval("Llama 2 13B", "GSM8K")
    assert llama_gsm[1] < mistral_gsm[0]  # disjoint at n = 1,319


def test_phi3_tokens_per_parameter():
    phi3 = load_benchmark_table("phi3").to_frame()
    ratio = 1000 * phi3["train_tokens_trillion"] / phi3["params_billion"]
    np.testing.assert_allclose(ratio.to_numpy(), [3300 / 3.8, 4800 / 7, 4800 / 14])
    assert RUNS["phi-3-mini"].tokens_per_param == pytest.approx(ratio["phi-3-mini"])


def test_arena_demo_claims():
    # The chapter's simulated log: B and C are 20 points apart and their intervals overlap;
    # online Elo changes when the same battles are replayed in reverse.
    true = {
        "model-A": 1250.0,
        "model-B": 1200.0,
        "model-C": 1180.0,
        "model-D": 1100.0,
        "model-E": 1050.0,
        "model-F": 1000.0,
        "model-G": 980.0,
        "model-H": 850.0,
    }
    battles = simulate_battles(true, n_battles=3000, seed=0)
    intervals = bootstrap_ratings(battles, n_rounds=100, seed=0)
    b, c = intervals["model-B"], intervals["model-C"]
    assert b.lower < c.upper and c.lower < b.upper
    forward, backward = elo_ratings(battles, k=32), elo_ratings(battles[::-1], k=32)
    assert max(abs(forward[m] - backward[m]) for m in true) > 50
