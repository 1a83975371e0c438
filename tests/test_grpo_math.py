"""GRPO math (talking_points.pipeline.rl.grpo): rewards, advantages, policy loss, clamped k3 KL, config."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from talking_points.pipeline.data.keypoint_sets.cross_family import Direction
from talking_points.pipeline.rl import grpo


def trl_grpo_loss(logps, ref_logps, advantages, mask, beta, epsilon=0.2):
    """trl's GRPO loss, written out from huggingface/trl @ 000bb3dbb6e3bd0288068c5ad73bb11e4f69dca1,
    trl/trainer/grpo_trainer.py, GRPOTrainer._compute_loss with num_iterations == 1 (so
    old_per_token_logps = per_token_logps.detach()) and loss_type == "grpo"."""
    per_token_kl = torch.exp(ref_logps - logps) - (ref_logps - logps) - 1
    coef_1 = torch.exp(logps - logps.detach())
    coef_2 = torch.clamp(coef_1, 1 - epsilon, 1 + epsilon)
    per_token_loss = -torch.min(coef_1 * advantages.unsqueeze(1), coef_2 * advantages.unsqueeze(1))
    per_token_loss = per_token_loss + beta * per_token_kl
    mask = mask.float()
    loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    mean_kl = ((per_token_kl * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    return loss, mean_kl


def trl_advantages(rewards, num_generations):
    """Same source, GRPOTrainer._generate_and_score_completions, scale_rewards: (r - mean) / (std + 1e-4)."""
    mean = rewards.view(-1, num_generations).mean(dim=1).repeat_interleave(num_generations)
    std = rewards.view(-1, num_generations).std(dim=1).repeat_interleave(num_generations)
    return (rewards - mean) / (std + 1e-4)


# ---------------------------------------------------------------------------------------------- rewards


def test_rewards_are_negative_mse():
    target = torch.tensor([0.5, 0.5])
    pred = torch.tensor([[0.5, 0.5], [0.6, 0.5], [0.5, 0.8]])
    r = grpo.localization_rewards(pred, target)
    assert torch.allclose(r, torch.tensor([0.0, -0.005, -0.045]), atol=1e-7)
    # per-row targets give the same
    assert torch.allclose(grpo.localization_rewards(pred, target.expand(3, 2)), r)
    with pytest.raises(ValueError, match="finite"):
        grpo.localization_rewards(torch.tensor([[math.nan, 0.0]]), target)
    with pytest.raises(ValueError, match="does not match"):
        grpo.localization_rewards(pred, torch.zeros(2, 2))


# ------------------------------------------------------------------------------------------- advantages


def test_group_advantages_by_hand():
    # groups [1, 2, 3] (mean 2, unbiased std 1) and [0, 0, 6] (mean 2, std sqrt(12))
    r = torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 6.0])
    a = grpo.group_advantages(r, group_size=3, eps=0.0)
    s = math.sqrt(12.0)
    assert torch.allclose(a, torch.tensor([-1.0, 0.0, 1.0, -2 / s, -2 / s, 4 / s]), atol=1e-6)
    clipped = grpo.group_advantages(r, group_size=3, eps=0.0, clip=0.5)
    assert torch.allclose(clipped, torch.tensor([-0.5, 0.0, 0.5, -0.5, -0.5, 0.5]), atol=1e-6)
    with pytest.raises(ValueError, match="multiple of group_size"):
        grpo.group_advantages(r[:5], group_size=3)


def test_equal_rewards_give_zero_advantages_not_nan():
    r = torch.tensor([-0.2, -0.2, -0.2, 0.0, 0.0, 0.0])
    a = grpo.group_advantages(r, group_size=3, eps=1e-4, clip=5.0)
    assert torch.isfinite(a).all() and torch.equal(a, torch.zeros(6))
    # and such a group then pushes no gradient through the policy term
    logps = torch.randn(6, 4, requires_grad=True)
    grpo.policy_loss(logps, a, torch.ones(6, 4)).backward()
    assert torch.equal(logps.grad, torch.zeros(6, 4))


def test_advantages_match_trl():
    r = torch.tensor([0.3, -1.2, 0.7, 0.1, 0.1, 0.4, -2.0, 5.0, 1.0])
    assert torch.allclose(grpo.group_advantages(r, 3, eps=1e-4), trl_advantages(r, 3), atol=1e-6)


# ------------------------------------------------------------------------------------------------- loss


def test_loss_by_hand():
    logps = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -1.5, -3.0]], requires_grad=True)
    ref = torch.tensor([[-1.0, -1.0, 0.0], [-0.5, -2.5, -3.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    adv = torch.tensor([1.0, -0.5])
    out = grpo.grpo_loss(logps, ref, adv, mask, beta=0.1, kl_clamp=5.0)
    # policy: -mean(1 * mean(-1, -2), -0.5 * mean(-0.5, -1.5, -3)) = -mean(-1.5, 5/6) = 1/3
    assert out.policy.item() == pytest.approx(1 / 3, abs=1e-6)
    # d = ref - logp = [0, 1, (9, masked)] and [0, -1, 0]; k3 = [0, e - 2] and [0, 1/e, 0]
    kl = ((math.e - 2) / 2 + (1 / math.e) / 3) / 2
    assert out.kl.item() == pytest.approx(kl, abs=1e-6)
    assert out.total.item() == pytest.approx(1 / 3 + 0.1 * kl, abs=1e-6)
    out.total.backward()
    # d/dlogp of -(1/N) A_i logp / |o_i| + beta/N * (exp(d) - d - 1)/|o_i|, with dd/dlogp = -1
    g = torch.zeros(2, 3)
    for i, n in ((0, 2), (1, 3)):
        for t in range(n):
            d = (ref[i, t] - logps[i, t]).item()
            g[i, t] = (-adv[i] / n + 0.1 * (1 - math.exp(d)) / n) / 2
    assert torch.allclose(logps.grad, g, atol=1e-6)
    assert logps.grad[0, 2] == 0  # the masked token


def test_loss_matches_trl_when_clamp_inactive():
    gen = torch.Generator().manual_seed(0)
    n, t, G = 6, 7, 3
    logps = (-torch.rand(n, t, generator=gen) * 3).requires_grad_(True)
    ref = logps.detach() + torch.randn(n, t, generator=gen) * 0.8  # |d| well below 5
    mask = (torch.rand(n, t, generator=gen) > 0.25).int()
    mask[:, 0] = 1
    rewards = grpo.localization_rewards(torch.rand(n, 2, generator=gen), torch.tensor([0.4, 0.6]))
    adv = grpo.group_advantages(rewards, G, eps=1e-4)
    assert torch.allclose(adv, trl_advantages(rewards, G))
    ours = grpo.grpo_loss(logps, ref, adv, mask, beta=0.1, kl_clamp=5.0)
    (g_ours,) = torch.autograd.grad(ours.total, logps)
    theirs, their_kl = trl_grpo_loss(logps, ref, adv, mask, beta=0.1)
    (g_theirs,) = torch.autograd.grad(theirs, logps)
    assert torch.allclose(g_ours, g_theirs, atol=1e-7)
    assert ours.kl.item() == pytest.approx(their_kl.item(), rel=1e-6)
    # values differ only by the policy term: trl's -mean(A) against our -mean(A * mean log-prob)
    assert (ours.total - ours.policy).item() == pytest.approx((theirs + adv.mean()).item(), abs=1e-6)


def test_kl_clamp():
    logps = torch.tensor([[-10.0, -1.0, -2.0]], requires_grad=True)
    ref = torch.tensor([[-1.0, -10.0, -2.5]])  # d = 9, -9, -0.5
    k3 = grpo.k3_kl(logps, ref, clamp=5.0)
    expected = [math.exp(5) - 5 - 1, math.exp(-5) + 5 - 1, math.exp(-0.5) + 0.5 - 1]
    assert torch.allclose(k3, torch.tensor([expected]), rtol=1e-6)
    unclamped = grpo.k3_kl(logps, ref, clamp=None)
    assert unclamped[0, 0].item() == pytest.approx(math.exp(9) - 10, rel=1e-6)
    # clamped tokens pass no gradient; the unclamped one does
    k3.sum().backward()
    assert logps.grad[0, 0] == 0 and logps.grad[0, 1] == 0
    assert logps.grad[0, 2].item() == pytest.approx(1 - math.exp(-0.5), rel=1e-6)
    # the trl formula (no clamp) disagrees once |d| > 5
    _, their_kl = trl_grpo_loss(logps.detach(), ref, torch.zeros(1), torch.ones(1, 3), beta=0.1)
    ours = grpo.kl_penalty(logps.detach(), ref, torch.ones(1, 3), clamp=5.0)
    assert their_kl.item() > 10 * ours.item()


def test_empty_sequence_and_shapes():
    logps = torch.tensor([[-1.0, -1.0], [-2.0, -2.0]])
    mask = torch.tensor([[0, 0], [1, 1]])
    assert torch.equal(grpo.sequence_mean(logps, mask), torch.tensor([0.0, -2.0]))
    with pytest.raises(ValueError, match="advantages"):
        grpo.policy_loss(logps, torch.zeros(3), mask)
    with pytest.raises(ValueError, match="differ in shape"):
        grpo.grpo_loss(logps, logps[:1], torch.zeros(2), mask, beta=0.1)


def test_token_logprobs():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    tokens = torch.tensor([[0, 2]])
    lp = grpo.token_logprobs(logits, tokens)
    assert lp[0, 0].item() == pytest.approx(2 - math.log(math.exp(2) + 2), abs=1e-6)
    assert lp[0, 1].item() == pytest.approx(-math.log(3), abs=1e-6)
    hot = grpo.token_logprobs(logits, tokens, temperature=2.0)
    assert hot[0, 0].item() == pytest.approx(1 - math.log(math.e + 2), abs=1e-6)


# ----------------------------------------------------------------------------------------------- config


def test_config_defaults():
    from talking_points.pipeline.rl.config import GRPOTrainConfig

    cfg = GRPOTrainConfig()
    got = (cfg.group_size, cfg.beta, cfg.kl_clamp, cfg.lr, cfg.epochs, cfg.batch_size)
    assert got == (3, 0.1, 5.0, 5e-6, 3, 10)
    assert cfg.trainable is grpo.Trainable.lora_last_blocks and cfg.trainable.value == "lora+last_blocks"
    assert cfg.n_last_blocks == 2
    assert cfg.directions == [Direction.bovidae_to_canidae, Direction.canidae_to_bovidae]
    cfg = grpo.GRPOParams.model_validate({"trainable": "lora", "directions": ["canidae_to_bovidae"]})
    assert cfg.directions == [Direction.canidae_to_bovidae]


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"group_size": 1}, "group_size"),
        ({"beta": -0.1}, "beta"),
        ({"adv_clip": 0}, "adv_clip"),
        ({"eps": 0}, "eps"),
        ({"kl_clamp": 0}, "kl_clamp"),
        ({"lr": 0}, "lr"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": 0}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"n_last_blocks": 0}, "n_last_blocks"),
        ({"directions": []}, "directions"),
        ({"directions": ["bovidae_to_canidae", "bovidae_to_canidae"]}, "directions"),
        ({"directions": ["felidae_to_canidae"]}, "directions"),
        ({"trainable": "everything"}, "trainable"),
        ({"grop_size": 3}, "grop_size"),
    ],
)
def test_config_names_the_bad_field(bad, field):
    """Each constraint is on its field, so the error's location is the field itself (params errors then read
    `grpo.train.lr`, not `grpo.train`)."""
    from talking_points.pipeline.rl.config import GRPOTrainConfig

    with pytest.raises(ValidationError, match=field) as err:
        GRPOTrainConfig.model_validate(bad)
    if field != "n_last_blocks":  # a combination (n_last_blocks with trainable *last_blocks): the model's
        assert err.value.errors()[0]["loc"][0] == field, err.value.errors()


def test_config_allows_zero_last_blocks_without_last_blocks():
    assert grpo.GRPOParams(trainable="lora", n_last_blocks=0).n_last_blocks == 0
