"""DPO against TRL's DPOTrainer loss and the paper's equation in float64; GRPO by its definition."""

from types import SimpleNamespace

import pytest
import torch

from course_lib.finetuning import dpo_loss, grpo_advantages, grpo_loss


def logps_batch(seed: int, B: int = 6):
    g = torch.Generator().manual_seed(seed)
    return [-(torch.rand(B, generator=g, dtype=torch.float64) * 30 + 1) for _ in range(4)]


def test_dpo_loss_equals_the_paper_in_float64():
    pc, pr, rc, rr = logps_batch(0)
    beta = 0.1
    loss, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta)
    # Rafailov et al. 2023, eq. 7: -log sigma(beta log(pi_w/ref_w) - beta log(pi_l/ref_l))
    z = beta * ((pc - rc) - (pr - rr))
    expected = torch.mean(torch.log1p(torch.exp(-z)))
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(chosen - rejected, z)


def test_dpo_gradient_raises_chosen_and_lowers_rejected():
    pc, pr, rc, rr = logps_batch(1)
    pc.requires_grad_(True)
    pr.requires_grad_(True)
    dpo_loss(pc, pr, rc, rr, 0.5)[0].backward()
    assert (pc.grad < 0).all() and (pr.grad > 0).all()


def trl_dpo_loss(pc, pr, rc, rr, beta):
    """TRL's DPOTrainer._compute_loss on the same log-probabilities (reference precomputed).

    The trainer's method takes per-token log-probs from the model's output; a stub model
    returns them (one completion token per row carrying the whole sequence log-prob), and a
    stub trainer carries the attributes the loss reads.
    """
    trl = pytest.importorskip("trl")
    B = pc.shape[0]
    per_token = torch.stack([torch.cat([pc, pr]), torch.zeros(2 * B, dtype=pc.dtype)], 1)
    completion_mask = torch.tensor([[0, 1, 0]] * (2 * B))  # shifted: token 1 carries the log-prob

    def model(**kwargs):
        return SimpleNamespace(
            log_probs=per_token,
            entropy=torch.zeros_like(per_token),
            mean_logits=torch.zeros_like(per_token),
            is_top1=torch.zeros_like(per_token, dtype=torch.bool),
        )

    model.training = True
    accelerator = SimpleNamespace(
        device=torch.device("cpu"), gather=lambda t: t, gather_for_metrics=lambda t: t
    )
    from collections import defaultdict

    stub = SimpleNamespace(
        model=model,
        accelerator=accelerator,
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=["sigmoid"],
        loss_weights=[1.0],
        beta=beta,
        label_smoothing=0.0,
        use_weighting=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    inputs = {
        "input_ids": torch.zeros(2 * B, 3, dtype=torch.long),
        "attention_mask": torch.ones(2 * B, 3, dtype=torch.long),
        "completion_mask": completion_mask,
        "ref_chosen_logps": rc,
        "ref_rejected_logps": rr,
    }
    return trl.DPOTrainer._compute_loss(stub, model, inputs, return_outputs=False)


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_equals_trl(beta):
    pc, pr, rc, rr = logps_batch(2)
    expected = trl_dpo_loss(pc, pr, rc, rr, beta)
    torch.testing.assert_close(dpo_loss(pc, pr, rc, rr, beta)[0], expected)


def test_grpo_advantages_standardise_each_group():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.2, 0.4, 0.9, 0.5]], dtype=torch.float64)
    adv = grpo_advantages(rewards, eps=0.0)
    for row, a in zip(rewards, adv, strict=True):
        mean = sum(row.tolist()) / len(row)
        var = sum((r - mean) ** 2 for r in row.tolist()) / (len(row) - 1)
        torch.testing.assert_close(a, (row - mean) / var**0.5)
    with pytest.raises(ValueError, match="at least 2"):
        grpo_advantages(torch.ones(3, 1))


def test_grpo_loss_equals_an_explicit_loop():
    g = torch.Generator().manual_seed(0)
    N, T, eps, beta = 4, 5, 0.2, 0.04
    logps = -torch.rand(N, T, generator=g, dtype=torch.float64) * 3
    old = logps + 0.3 * torch.randn(N, T, generator=g, dtype=torch.float64)
    ref = logps + 0.3 * torch.randn(N, T, generator=g, dtype=torch.float64)
    adv = torch.randn(N, generator=g, dtype=torch.float64)
    mask = torch.rand(N, T, generator=g) > 0.3
    mask[:, 0] = True
    total = 0.0
    for i in range(N):
        terms = []
        for t in range(T):
            if not mask[i, t]:
                continue
            rho = float(torch.exp(logps[i, t] - old[i, t]))
            a = float(adv[i])
            clipped = min(max(rho, 1 - eps), 1 + eps)
            x = float(torch.exp(ref[i, t] - logps[i, t]))
            kl = x - float(ref[i, t] - logps[i, t]) - 1
            terms.append(min(rho * a, clipped * a) - beta * kl)
        total += sum(terms) / len(terms)
    expected = torch.tensor(-total / N, dtype=torch.float64)
    torch.testing.assert_close(grpo_loss(logps, old, ref, adv, mask, eps, beta), expected)


def test_grpo_on_policy_gradient_follows_the_advantage():
    """With pi = pi_old = pi_ref the gradient is -A / |o| per token: raise good answers."""
    logps = torch.full((2, 3), -1.0, dtype=torch.float64, requires_grad=True)
    adv = torch.tensor([1.0, -1.0], dtype=torch.float64)
    grpo_loss(
        logps, logps.detach(), logps.detach(), adv, torch.ones(2, 3, dtype=torch.bool)
    ).backward()
    torch.testing.assert_close(logps.grad, -adv[:, None].expand(2, 3) / 3 / 2)
