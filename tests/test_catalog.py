"""The models timeline catalog (course_lib/data/models_timeline.json) and its loader."""

from __future__ import annotations

import json
import math

import pytest

from course_lib.models import PRESETS, count_parameters
from course_lib.models.catalog import (
    DATA_PATH,
    get_entry,
    gopher_family_sizes,
    timeline,
    timeline_table,
)

FIELDS = {
    "name", "organisation", "date", "params", "active_params", "tokens", "energy_mwh",
    "co2e_t", "preset", "chapter", "learned", "source",
}  # fmt: skip


def test_every_entry_has_all_fields_and_a_source():
    raw = json.loads(DATA_PATH.read_text())["models"]
    for entry in raw:
        assert set(entry) == FIELDS, entry["name"]
        assert len(entry["source"]) > 20, entry["name"]
        assert entry["chapter"] in (4, 5)


def test_dates_are_year_month_and_names_unique():
    entries = timeline()
    assert len({e.name for e in entries}) == len(entries)
    for e in entries:
        year, month = e.date.split("-")
        assert 2020 <= int(year) <= 2025 and 1 <= int(month) <= 12, e.name


def test_chapter_filter_and_lecture_models_present():
    ch4 = {e.name for e in timeline(chapter=4)}
    assert ch4 == {"GPT-3", "GLaM", "Megatron-Turing NLG", "Gopher", "Chinchilla", "PaLM"}
    ch5 = {e.name for e in timeline(chapter=5)}
    for name in (
        "OPT",
        "BLOOM",
        "LLaMA",
        "Llama 2",
        "Llama 3.1 405B",
        "Phi-3-mini",
        "Mistral 7B",
        "Mixtral 8x7B",
        "Gemma",
        "Gemma 2",
        "Qwen2",
        "OLMo 2",
        "DeepSeek-V3",
    ):
        assert name in ch5


def test_only_mistral_ai_leaves_the_token_count_empty():
    """Chapter 7 says an empty tokens cell means 'not published'; Mistral AI publishes none.
    Qwen2: over 7T tokens (Yang et al. 2024, Sec. 3); OLMo 2 7B: 4T (model card)."""
    missing = {e.name for e in timeline(chapter=5) if e.tokens is None}
    assert missing == {e.name for e in timeline(chapter=5) if e.organisation == "Mistral AI"}
    assert get_entry("Qwen2").tokens == 7e12 and get_entry("OLMo 2").tokens == 4e12


def test_active_params_only_for_moe_and_smaller_than_total():
    for e in timeline():
        if e.active_params is not None:
            assert e.params is not None and e.active_params < e.params, e.name
    assert {e.name for e in timeline() if e.active_params} == {
        "GLaM",
        "Mixtral 8x7B",
        "DeepSeek-V2",
        "DeepSeek-V3",
    }


@pytest.mark.parametrize("entry", [e for e in timeline() if e.preset], ids=lambda e: e.name)
def test_preset_count_matches_published_params(entry):
    """The preset named by each entry rebuilds its published total within 1% (the papers
    round to two or three significant figures). DeepSeek-V3: 2%, its 671B/37B are rounded
    and leave out the multi-token-prediction module (see published_totals.json)."""
    rel = 0.02 if entry.name == "DeepSeek-V3" else 0.01
    cfg = PRESETS[entry.preset]
    assert entry.params is not None
    assert count_parameters(cfg) == pytest.approx(entry.params, rel=rel)
    if entry.active_params is not None:
        assert count_parameters(cfg, active=True) == pytest.approx(entry.active_params, rel=rel)


def test_tokens_per_param_uses_active_params():
    glam = get_entry("GLaM")
    assert glam.tokens_per_param == pytest.approx(600e9 / 96.6e9)
    assert get_entry("Chinchilla").tokens_per_param == pytest.approx(20.0)
    assert get_entry("Mistral 7B").tokens_per_param is None


def test_table_sorted_by_date_and_empty_cells_for_unknowns():
    table = timeline_table()
    assert list(table["date"]) == sorted(table["date"])
    mistral = table[table["model"] == "Mistral 7B"].iloc[0]
    assert math.isnan(mistral["tokens (B)"])
    gpt3 = table[table["model"] == "GPT-3"].iloc[0]
    assert gpt3["parameters (B)"] == 175.0 and gpt3["tokens (B)"] == 300.0


def test_get_entry_unknown_lists_names():
    with pytest.raises(KeyError, match="GPT-3"):
        get_entry("GPT-5")


def test_gopher_family_has_a_preset_for_each_size():
    sizes = gopher_family_sizes()
    assert len(sizes) == 6  # Rae et al. 2021, Table 1: six models
    assert all(name in PRESETS for name in sizes)
