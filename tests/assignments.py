"""The graded assignments, each with plausible wrong answers that must lose some points.

Adding an assignment to `ASSIGNMENTS` is all it takes for tests/test_assignments.py to check
its nbgrader round trip: the committed release is current, the source scores full marks,
the release scores zero and gives no free points, and every wrong answer gets partial credit.
A wrong answer is a mistake a learner could make, written as an edit of the source solution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nbformat

Notebooks = dict[str, nbformat.NotebookNode]  # notebook file name -> notebook


@dataclass(frozen=True)
class WrongAnswer:
    """A named edit of the source notebooks that should cost some, but not all, points."""

    name: str
    edit: Callable[[Notebooks], None]


@dataclass(frozen=True)
class Assignment:
    name: str
    wrong_answers: tuple[WrongAnswer, ...]


def replace_in_cell(name: str, grade_id: str, old: str, new: str) -> WrongAnswer:
    """A wrong answer replacing `old` (which must occur once) by `new` in cell `grade_id`."""

    def edit(notebooks: Notebooks) -> None:
        cells = [
            cell
            for nb in notebooks.values()
            for cell in nb.cells
            if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id
        ]
        assert len(cells) == 1, f"{name}: no single cell with grade_id {grade_id!r}"
        count = cells[0].source.count(old)
        assert count == 1, f"{name}: {old!r} occurs {count} times in {grade_id!r}, expected once"
        cells[0].source = cells[0].source.replace(old, new)

    return WrongAnswer(name, edit)


# ps11's capstone (part 2): mistakes in the Llama block, the forward pass and its cache. All
# must lose points in tests/test_llama_cases.py (in-process, seconds); three of them, one per
# graded part, also go through the nbgrader round trip and the class test (a notebook each).
CAPSTONE_MISTAKES = (
    # RoPE rotates the values too (only queries and keys carry positions).
    replace_in_cell(
        "capstone_rope_on_values",
        "ex8_block",
        "q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)",
        "q, k, v = apply_rope(q, cos, sin), apply_rope(k, cos, sin), apply_rope(v, cos, sin)",
    ),
    # The attention output replaces the residual stream instead of adding to it.
    replace_in_cell(
        "capstone_no_attention_residual",
        "ex8_block",
        'x = x + F.linear(o, layer["o_proj"])',
        'x = F.linear(o, layer["o_proj"])',
    ),
    # ps08's default eps pasted in: SmolLM2's norms use 1e-5.
    replace_in_cell(
        "capstone_norm_eps_default",
        "ex8_block",
        'eps = config["norm_eps"]',
        "eps = 1e-6",
    ),
    # K/V heads tiled (0 1 2 0 1 2 ...) instead of grouped (0 0 0 1 1 1 ...).
    replace_in_cell(
        "capstone_gqa_repeat",
        "ex8_block",
        "k = k.repeat_interleave(group, dim=1)  # (B, H, T_k, D)\n"
        "    v = v.repeat_interleave(group, dim=1)",
        "k = k.repeat(1, group, 1, 1)  # (B, H, T_k, D)\n    v = v.repeat(1, group, 1, 1)",
    ),
    # A fresh output layer, as when a tied checkpoint is loaded into an untied model.
    replace_in_cell(
        "capstone_untied_lm_head",
        "ex9_forward",
        'lm_head = weights["embed"]',
        'lm_head = 0.02 * torch.randn_like(weights["embed"])',
    ),
    # With a cache, RoPE positions restart at 0 for every new token.
    replace_in_cell(
        "capstone_cache_positions_restart",
        "ex9_forward",
        "past = 0 if cache is None else cache[0][0].shape[2]",
        "past = 0",
    ),
)
CAPSTONE_ROUND_TRIP = (
    "capstone_gqa_repeat",
    "capstone_untied_lm_head",
    "capstone_cache_positions_restart",
)

ASSIGNMENTS = [
    Assignment(
        "ps01",
        (
            # A matrix product instead of a row-wise one: right on vectors, wrong on batches.
            replace_in_cell("dot_matmul", "ex1_dot", "np.sum(a * b, axis=-1)", "a @ b.T"),
            # Plain division: nan instead of 0 for zero vectors.
            replace_in_cell(
                "cosine_nan",
                "ex2_cosine",
                "np.where(norms > 0, dot(a, b) / safe, 0.0)",
                "dot(a, b) / norms",
            ),
            # Forgot that argsort is ascending: worst first.
            replace_in_cell(
                "top_k_ascending", "ex3_top_k", "np.argsort(-scores)", "np.argsort(scores)"
            ),
            # Ranks by dot product: long rows win.
            replace_in_cell(
                "top_k_by_dot",
                "ex3_top_k",
                "cosine_similarity(np.asarray(corpus, dtype=np.float64), query)",
                "dot(np.asarray(corpus, dtype=np.float64), query)",
            ),
            # Keeps the query words as candidates: usually returns c (or b) itself.
            replace_in_cell(
                "analogy_keeps_query_words", "ex4_analogy", "if word in (a, b, c):", "if False:"
            ),
        ),
    ),
    Assignment(
        "ps02",
        (
            # Ties go to the largest pair instead of the smallest.
            replace_in_cell(
                "ties_to_largest",
                "ex1_bpe",
                "min(counts, key=lambda p: (-counts[p], p))",
                "max(counts, key=lambda p: (counts[p], p))",
            ),
            # No pre-tokenization: merges cross word boundaries (" the" + " cat").
            replace_in_cell(
                "no_pretokenization",
                "ex1_bpe",
                "chunks = regex.findall(GPT2_PATTERN, text)",
                "chunks = [text]",
            ),
            # Applies the first mergeable pair from the left, not the lowest-rank one.
            replace_in_cell(
                "merge_leftmost_not_lowest_rank",
                "ex1_bpe",
                "pair = min(zip(word[:-1], word[1:], strict=True), key=lambda p: ranks.get(p, math.inf))",
                "pair = next((p for p in zip(word[:-1], word[1:], strict=True) if p in ranks), None)",
            ),
            # Decodes token by token: a character split across two tokens is lost.
            replace_in_cell(
                "decode_per_token",
                "ex1_bpe",
                'return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")',
                'return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)',
            ),
            # Scales the scores by 1/d instead of 1/sqrt(d).
            replace_in_cell(
                "scale_by_d",
                "ex2_attention",
                "k.transpose(-2, -1) / math.sqrt(d)",
                "k.transpose(-2, -1) / d",
            ),
            # Splits heads with a reshape, not a transpose: each head mixes tokens.
            replace_in_cell(
                "heads_without_transpose",
                "ex3_mha",
                "t.view(B, T, n_heads, d).transpose(1, 2)",
                "t.reshape(B, n_heads, T, d)",
            ),
            # Exact erf GELU instead of GPT-2's tanh approximation.
            replace_in_cell("exact_gelu", "ex4_block", "m = gelu_tanh(", "m = F.gelu("),
            # Post-norm (the 2017 Transformer) instead of GPT-2's pre-norm.
            replace_in_cell(
                "post_norm",
                "ex4_block",
                'return h + F.linear(m, p["w_proj"], p["b_proj"])',
                'return layer_norm(h + F.linear(m, p["w_proj"], p["b_proj"]), p["ln2_weight"], p["ln2_bias"])',
            ),
            # Counts an untied output layer.
            replace_in_cell(
                "untied_output_layer",
                "ex4_block",
                "embeddings = vocab_size * D + n_ctx * D",
                "embeddings = 2 * vocab_size * D + n_ctx * D",
            ),
        ),
    ),
    Assignment(
        "ps06",
        (
            # Counts K and V with n_heads instead of n_kv_heads: right for MHA, wrong for GQA.
            replace_in_cell(
                "gqa_ignored",
                "ex1_dense",
                "2 * d_model * n_kv_heads * head_dim",
                "2 * d_model * n_heads * head_dim",
            ),
            # The average share, 1/(tp * pp) of the state: the imbalance the exercise is about.
            replace_in_cell(
                "grid_average_share",
                "ex2_grid",
                "return 16.0 * max(stages) / tp",
                "return 16.0 * sum(stages) / (tp * pp)",
            ),
            # Tied embeddings counted once even when the head sits on another stage.
            replace_in_cell(
                "grid_tied_head_not_copied",
                "ex2_grid",
                "(embedding if not tie_embeddings or pp > 1 else 0)",
                "(0 if tie_embeddings else embedding)",
            ),
            # The extra layers go to the last stages, on top of the output layer.
            replace_in_cell(
                "grid_extra_layers_last",
                "ex2_grid",
                "(base + (stage < extra))",
                "(base + (stage >= pp - extra))",
            ),
            # Problem set 5's 6ND: the attention FLOPs left out of the training time.
            replace_in_cell(
                "days_without_attention",
                "ex3_training_days",
                " + 12.0 * n_layers * n_heads * head_dim * seq_len",
                "",
            ),
            # Attention FLOPs counted per key/value head: right for MHA, too few for GQA.
            replace_in_cell(
                "days_attention_per_kv_head",
                "ex3_training_days",
                "12.0 * n_layers * n_heads * head_dim * seq_len",
                "12.0 * n_layers * n_kv_heads * head_dim * seq_len",
            ),
            # Leaves out the attention FLOPs: PaLM's 45.7% instead of 46.2%.
            replace_in_cell(
                "mfu_without_attention",
                "ex4_mfu",
                " + 12.0 * n_layers * n_heads * head_dim * seq_len",
                "",
            ),
        ),
    ),
    Assignment(
        "ps08",
        (
            # LayerNorm instead of RMSNorm: subtracts the mean.
            replace_in_cell(
                "rms_norm_centres",
                "ex1_rms_norm",
                "return x / rms * weight",
                "x = x - x.mean(dim=-1, keepdim=True)\n    return x / rms * weight",
            ),
            # The paper's interleaved pairs (2i, 2i+1) instead of the half layout.
            replace_in_cell(
                "rope_interleaved",
                "ex2_rope",
                "x1, x2 = x[..., : d // 2], x[..., d // 2 :]",
                "x1, x2 = x[..., 0::2], x[..., 1::2]",
            ),
            # GELU MLP habits: the gate goes through GELU.
            replace_in_cell(
                "swiglu_gelu", "ex3_swiglu", "gate * torch.sigmoid(gate)", "F.gelu(gate)"
            ),
            # Window off by one: sees w + 1 keys.
            replace_in_cell(
                "window_off_by_one",
                "ex4_attention",
                "pos_k > pos_q - window",
                "pos_k >= pos_q - window",
            ),
            # KV heads repeated as a block (h % H_kv) instead of in groups (h // group).
            replace_in_cell(
                "kv_heads_tiled",
                "ex4_attention",
                "k = k.repeat_interleave(group, dim=1)  # (B, H, T_k, D)\n    v = v.repeat_interleave(group, dim=1)",
                "k = k.repeat(1, group, 1, 1)\n    v = v.repeat(1, group, 1, 1)",
            ),
            # A cache that never wraps: keeps every token (unbounded memory).
            replace_in_cell(
                "cache_grows",
                "ex5_rolling_cache",
                "slot = pos % self.window",
                "slot = pos % self.window\n        self.k = torch.cat((self.k, k), dim=2)\n"
                "        self.v = torch.cat((self.v, v), dim=2)\n"
                "        return self.k[:, :, self.window :], self.v[:, :, self.window :]",
            ),
            # QK-norm after RoPE: the per-channel gain does not commute with the rotation.
            replace_in_cell(
                "qk_norm_after_rope",
                "ex6_qk_norm",
                "    heads = rms_norm(heads, weight, eps)  # each head over its own D channels\n"
                "    return rope(heads, positions, theta)",
                "    return rms_norm(rope(heads, positions, theta), weight, eps)",
            ),
            # OLMo 2's QK-norm: one RMS over the whole projection instead of one per head.
            replace_in_cell(
                "qk_norm_whole_projection",
                "ex6_qk_norm",
                "    heads = x.view(b, t, n_heads, -1).transpose(1, 2)  # (B, n_heads, T, D)\n"
                "    heads = rms_norm(heads, weight, eps)",
                "    x = x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)\n"
                "    heads = x.view(b, t, n_heads, -1).transpose(1, 2) * weight",
            ),
            # Heads split without moving them before time: (B, T, H, D) read as (B, H, T, D).
            replace_in_cell(
                "qk_norm_heads_not_transposed",
                "ex6_qk_norm",
                "x.view(b, t, n_heads, -1).transpose(1, 2)",
                "x.view(b, n_heads, t, -1)",
            ),
        ),
    ),
    Assignment(
        "ps07",
        (
            # Caches the keys only: half the size.
            replace_in_cell(
                "kv_forgot_values", "ex1_kv", "2 * n_layers * n_kv_heads", "n_layers * n_kv_heads"
            ),
            # Ignores the window: the full cache.
            replace_in_cell(
                "window_ignored",
                "ex2_window",
                "tokens = seq_len if window is None else min(seq_len, window)",
                "tokens = seq_len",
            ),
            # One byte per INT4 number.
            replace_in_cell("int4_one_byte", "ex3_dtype", '"int4": 0.5}', '"int4": 1}'),
            # Forgets that the weights take memory too.
            replace_in_cell(
                "max_batch_ignores_weights",
                "ex4_compare",
                "free = memory_gb * 1e9 - weights_gb(count_parameters(cfg), weight_dtype) * 1e9",
                "free = memory_gb * 1e9",
            ),
        ),
    ),
    Assignment(
        "ps10",
        (
            # Intensity upside down: bytes per FLOP.
            replace_in_cell(
                "intensity_inverted", "ex1_roofline", "flops / bytes_moved", "bytes_moved / flops"
            ),
            # Tokens per second taken as steps per second: wrong for every batch above 1.
            replace_in_cell(
                "mbu_ignores_batch",
                "ex2_mbu",
                "steps_per_second = tokens_per_second / batch",
                "steps_per_second = tokens_per_second",
            ),
            # Decode reads the weights only: the KV cache of the batch forgotten.
            replace_in_cell(
                "decode_without_kv_cache",
                "ex3_decode",
                "bytes_moved = n_params * bytes_per_param + kv_bytes",
                "bytes_moved = n_params * bytes_per_param",
            ),
            # The weights read once per sequence instead of once per step (no sharing).
            replace_in_cell(
                "decode_weights_per_sequence",
                "ex3_decode",
                "bytes_moved = n_params * bytes_per_param + kv_bytes",
                "bytes_moved = batch * n_params * bytes_per_param + kv_bytes",
            ),
            # The roofline upside down: the faster of the two times.
            replace_in_cell("decode_min_time", "ex3_decode", "seconds = max(", "seconds = min("),
            # 128 levels instead of 127: the absmax code overflows int8.
            replace_in_cell(
                "int8_128", "ex4_int8", "scale = absmax / 127.0", "scale = absmax / 128.0"
            ),
            # The online softmax without rescaling the accumulator.
            replace_in_cell(
                "online_softmax_no_rescale",
                "ex5_tiled",
                "acc = alpha[:, None] * acc + p @ v",
                "acc = acc + p @ v",
            ),
            # Right values, wrong algorithm: the whole (T_q, T_k) score matrix at once.
            replace_in_cell(
                "plain_softmax_full_scores",
                "ex5_tiled",
                "    q, k, v = q.float(), k.float(), v.float()\n",
                "    q, k, v = q.float(), k.float(), v.float()\n"
                "    return torch.softmax((q @ k.T) / math.sqrt(q.shape[-1]), dim=-1) @ v\n",
            ),
        ),
    ),
    Assignment(
        "ps09",
        (
            # Forgot to renormalise the top-k probabilities (Switch-style gates).
            replace_in_cell(
                "gates_not_renormalised",
                "ex1_router",
                "return weights / weights.sum(dim=-1, keepdim=True), indices",
                "return weights, indices",
            ),
            # Shared expert dropped.
            replace_in_cell(
                "no_shared_expert", "ex2_moe", "out = out + swiglu(x, *shared)", "pass"
            ),
            # Unweighted sum of the chosen experts.
            replace_in_cell(
                "no_gate_weights",
                "ex2_moe",
                "out[token] += weights[token, slot, None].to(x.dtype) * y",
                "out[token] += y",
            ),
            # f_e per token instead of per assignment (Hugging Face's convention): k times too big.
            replace_in_cell(
                "fraction_per_token",
                "ex3_balancing",
                "fraction = counts.double() / expert_indices.numel()",
                "fraction = counts.double() / expert_indices.shape[0]",
            ),
            # RoPE on the latent instead of normalising it.
            replace_in_cell(
                "latent_not_normalised",
                "ex4_mla",
                "c_kv = c_kv / torch.sqrt(c_kv.pow(2).mean(-1, keepdim=True) + 1e-6) * kv_norm_weight",
                "c_kv = c_kv * kv_norm_weight",
            ),
            # Only the chosen experts counted as active: the router runs for every token too.
            replace_in_cell(
                "router_not_active",
                "ex5_moe_parameters",
                "k * expert + router + shared",
                "k * expert + shared",
            ),
            # The shared expert counted in the total but not as active.
            replace_in_cell(
                "shared_not_active",
                "ex5_moe_parameters",
                "k * expert + router + shared",
                "k * expert + router",
            ),
            # A GELU MLP's two matrices per expert instead of SwiGLU's three.
            replace_in_cell(
                "expert_two_matrices",
                "ex5_moe_parameters",
                "expert = 3 * d * h",
                "expert = 2 * d * h",
            ),
            # gpt-oss's expert biases forgotten (the router's kept): 0.03% of the total.
            replace_in_cell(
                "expert_biases_forgotten", "ex5_moe_parameters", "(2 * h + d if bias else 0)", "0"
            ),
        ),
    ),
    Assignment(
        "ps03",
        (
            # Literal softmax: overflows on large logits.
            replace_in_cell(
                "cross_entropy_naive",
                "ex1_cross_entropy",
                "m = z.max(dim=-1, keepdim=True).values.detach()  # (M, 1)",
                "m = torch.zeros_like(z[:, :1])  # (M, 1)",
            ),
            # Leaves the autograd graph: exercise 6's training step cannot back-propagate.
            replace_in_cell(
                "cross_entropy_detached",
                "ex1_cross_entropy",
                "return ((log_sum_exp - target_logit) * keep).sum() / keep.sum()",
                "return torch.tensor(float(((log_sum_exp - target_logit) * keep).sum() / "
                "keep.sum()), dtype=logits.dtype)",
            ),
            # Averages over ignored positions too.
            replace_in_cell(
                "cross_entropy_counts_ignored",
                "ex1_cross_entropy",
                "* keep).sum() / keep.sum()",
                "* keep).sum() / keep.numel()",
            ),
            # No bias correction: the first steps are far too small.
            replace_in_cell(
                "adamw_no_bias_correction", "ex2_adamw", "m_hat = m / (1 - beta1**t)", "m_hat = m"
            ),
            # L2 regularisation (Adam) instead of decoupled decay (AdamW).
            replace_in_cell(
                "adamw_coupled_decay",
                "ex2_adamw",
                "param = param * (1 - lr * weight_decay)\n    m = beta1 * m + (1 - beta1) * grad",
                "grad = grad + weight_decay * param\n    m = beta1 * m + (1 - beta1) * grad",
            ),
            # Warm-up one step ahead: lr(0) = lr_max / warmup.
            replace_in_cell(
                "schedule_one_step_ahead",
                "ex3_schedule",
                "return step / warmup_steps * lr_max",
                "return (step + 1) / warmup_steps * lr_max",
            ),
            # Clips each tensor on its own instead of the global norm.
            replace_in_cell(
                "clip_per_tensor",
                "ex4_clip",
                "return [g * scale for g in grads], float(norm)",
                "return [g * torch.clamp(max_norm / (g.norm() + 1e-6), max=1.0) for g in grads], "
                "float(norm)",
            ),
            # The last window is never sampled.
            replace_in_cell(
                "batch_misses_last_window",
                "ex5_get_batch",
                "torch.randint(0, n - context_length, (batch_size,), generator=generator)",
                "torch.randint(0, n - context_length - 1, (batch_size,), generator=generator)",
            ),
            # Decays norm gains and biases too.
            replace_in_cell(
                "train_step_decays_everything",
                "ex6_train_step",
                'decay = cases.RUN["weight_decay"] if p.dim() >= 2 else 0.0',
                'decay = cases.RUN["weight_decay"]',
            ),
        ),
    ),
    Assignment(
        "ps04",
        (
            # Reads each token's log-probability at its own position, not the one before.
            replace_in_cell(
                "logprob_off_by_one",
                "ex1_logprob",
                "logp[start + t - 1, token]",
                "logp[start + t, token]",
            ),
            # Ignores the normalize flag: always the summed log-probability.
            replace_in_cell("pick_never_normalises", "ex2_pick", "if normalize:", "if False:"),
            # Mean negative log-likelihood instead of its exponential.
            replace_in_cell(
                "perplexity_no_exp",
                "ex3_perplexity",
                "return math.exp(total_nll / count)",
                "return total_nll / count",
            ),
            # Sign flipped in the expected score: the favourite is expected to lose.
            replace_in_cell(
                "elo_sign", "ex4_elo", "10 ** ((r_b - r_a) / 400)", "10 ** ((r_a - r_b) / 400)"
            ),
            # Natural logarithm instead of log10 on the Elo scale.
            replace_in_cell(
                "bradley_terry_ln",
                "ex5_bradley_terry",
                "1000 + 400 * np.log10(p)",
                "1000 + 400 * np.log(p)",
            ),
        ),
    ),
    Assignment(
        "ps05",
        (
            # Forward pass only: 2ND.
            replace_in_cell(
                "flops_forward_only",
                "ex1_flops",
                "6 * n_params * n_tokens",
                "2 * n_params * n_tokens",
            ),
            # log10 for the intercept of a natural-log fit.
            replace_in_cell(
                "power_law_log10_intercept", "ex2_power_law", "np.exp(log_c)", "10**log_c"
            ),
            # Forgets the 6 of C = 6ND.
            replace_in_cell(
                "optimal_forgets_six",
                "ex3_optimal",
                "math.sqrt(compute / (6 * tokens_per_param))",
                "math.sqrt(compute / tokens_per_param)",
            ),
            # Swapped exponents: N grows like C^(alpha / (alpha + beta)).
            replace_in_cell(
                "parametric_swapped_exponents",
                "ex4_parametric",
                "n = g * (compute / 6) ** (beta / (alpha + beta))",
                "n = g * (compute / 6) ** (alpha / (alpha + beta))",
            ),
        ),
    ),
    Assignment(
        "ps11",
        (
            # argmax over the flattened batch: right for one row only.
            replace_in_cell(
                "greedy_flattened", "ex1_greedy", "logits.argmax(dim=-1)", "logits.argmax()"
            ),
            # Temperature multiplied instead of divided.
            replace_in_cell(
                "temperature_multiplies",
                "ex2_temperature",
                "logits.float() / temperature",
                "logits.float() * temperature",
            ),
            # The nucleus without the token that crosses p.
            replace_in_cell(
                "top_p_too_small",
                "ex4_top_p",
                "before = probs.cumsum(dim=-1) - probs",
                "before = probs.cumsum(dim=-1)",
            ),
            # Attends before appending: the new token never sees itself.
            replace_in_cell(
                "cache_appended_after_attention",
                "ex6_decode",
                "weights = torch.softmax(k_cache @ q",
                "weights = torch.softmax(k_cache[:-1] @ q",
            ),
            *(m for m in CAPSTONE_MISTAKES if m.name in CAPSTONE_ROUND_TRIP),
        ),
    ),
    Assignment(
        "ps12",
        (
            # The prompt's last token counted as an answer token (off by one).
            replace_in_cell(
                "mask_off_by_one",
                "ex1_mask",
                "(t >= prompt_lengths[:, None])",
                "(t >= prompt_lengths[:, None] - 1)",
            ),
            # Averaged over every position, padding and prompt included.
            replace_in_cell(
                "loss_over_all_positions",
                "ex2_loss",
                "return -(token_logp * targets).sum() / targets.sum()",
                "return -(token_logp * targets).sum() / targets.numel()",
            ),
            # alpha instead of alpha / r: right only for r = 1.
            replace_in_cell(
                "lora_no_rank_scaling",
                "ex3_lora",
                "self.scaling = alpha / r",
                "self.scaling = alpha",
            ),
            # merge adds the update but forward still adds it too: counted twice after merging.
            replace_in_cell(
                "lora_merge_counted_twice",
                "ex3_lora",
                "        if self.merged:\n            return y\n",
                "",
            ),
            # Forgot the reference model: the loss of the policy's margin alone.
            replace_in_cell(
                "dpo_without_reference",
                "ex4_dpo",
                "margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)",
                "margin = policy_chosen - policy_rejected",
            ),
            # The step trains on the prompt too (no mask).
            replace_in_cell(
                "step_without_mask",
                "ex5_step",
                "loss = masked_loss(model(input_ids), input_ids, loss_mask)",
                "loss = masked_loss(model(input_ids), input_ids, torch.ones_like(loss_mask))",
            ),
        ),
    ),
    Assignment(
        "ps13",
        (
            # Steps by the full size: the overlap is ignored.
            replace_in_cell(
                "chunk_no_overlap", "ex1_chunk", "step = size - overlap", "step = size"
            ),
            # Keeps going after the window that reaches the end: tail windows inside the last one.
            replace_in_cell(
                "chunk_extra_tail",
                "ex1_chunk",
                "        if start + size >= len(text):\n            break\n",
                "",
            ),
            # Ranks by dot product: long rows win.
            replace_in_cell(
                "retrieve_by_dot",
                "ex2_retrieve",
                "scores = unit(queries) @ unit(corpus).T",
                "scores = np.atleast_2d(queries) @ np.atleast_2d(corpus).T",
            ),
            # Worst first: argsort is ascending.
            replace_in_cell(
                "retrieve_ascending",
                "ex2_retrieve",
                "np.argsort(-scores, axis=1",
                "np.argsort(scores, axis=1",
            ),
            # Divides by |relevant|, not min(k, |relevant|): 1.0 is out of reach for small k.
            replace_in_cell(
                "recall_uncapped", "ex3_recall", "found / min(k, len(rel))", "found / len(rel)"
            ),
            # Numbered from 0.
            replace_in_cell(
                "prompt_numbered_from_zero",
                "ex4_prompt",
                "enumerate(zip(passages, sources, strict=True), 1)",
                "enumerate(zip(passages, sources, strict=True))",
            ),
        ),
    ),
]
