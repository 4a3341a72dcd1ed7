"""PPO math against hand-computed numbers; padding and post-EOS tokens never matter."""

import json
import math

import pytest
import torch

from workbench.train import ppo_math as P

F64 = torch.float64


def t(*rows):
    return torch.tensor(rows, dtype=F64)


# --------------------------------------------------------------------------- masked statistics


def test_masked_mean_and_var_ignore_padding():
    x = t([1.0, 2.0, 1e9], [3.0, 4.0, float("nan")])
    mask = torch.tensor([[True, True, False], [True, True, False]])
    assert P.masked_mean(x, mask).item() == pytest.approx(2.5)
    assert P.masked_mean(x, mask, dim=1).tolist() == pytest.approx([1.5, 3.5])
    # values 1, 2, 3, 4: mean 2.5, squared deviations 2.25+0.25+0.25+2.25 = 5
    assert P.masked_var(x, mask, unbiased=False).item() == pytest.approx(5 / 4)
    assert P.masked_var(x, mask).item() == pytest.approx(5 / 3)


def test_masked_var_needs_enough_elements():
    x = t([1.0, 2.0])
    with pytest.raises(ValueError):
        P.masked_var(x, torch.tensor([[True, False]]))
    with pytest.raises(ValueError):
        P.masked_var(x, torch.tensor([[False, False]]), unbiased=False)
    assert P.masked_var(x, torch.tensor([[True, False]]), unbiased=False).item() == 0.0


def test_masked_whiten_uses_masked_stats_only():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 7, generator=g, dtype=F64) * 3 + 5
    mask = torch.arange(7) < torch.tensor([[7], [3], [5], [1]])
    w = P.masked_whiten(x, mask)
    assert P.masked_mean(w, mask).item() == pytest.approx(0.0, abs=1e-9)
    assert P.masked_var(w, mask).item() == pytest.approx(1.0, abs=1e-6)
    assert torch.all(w[~mask] == 0)

    wild = x.clone()
    wild[~mask] = torch.tensor([1e6, -1e6, float("inf"), float("nan")], dtype=F64).repeat(8)[: int((~mask).sum())]
    assert torch.equal(P.masked_whiten(wild, mask), w)

    # shift_mean=False only rescales: the masked mean is kept.
    kept = P.masked_whiten(x, mask, shift_mean=False)
    assert P.masked_mean(kept, mask).item() == pytest.approx(P.masked_mean(x, mask).item())
    assert P.masked_var(kept, mask).item() == pytest.approx(1.0, abs=1e-6)


# --------------------------------------------------------------------------- response masks


def test_response_mask_includes_first_eos_only():
    eos, pad = 2, 0
    ids = torch.tensor([
        [5, 6, 2, 0, 0],  # EOS then padding
        [5, 2, 7, 2, 8],  # tokens sampled after the EOS
        [5, 6, 7, 8, 9],  # length limit, no EOS
        [2, 0, 0, 0, 0],  # EOS straight away
        [5, 0, 2, 0, 0],  # a pad before any EOS ends the response (exclusive)
    ])
    mask = P.response_mask(ids, eos, pad)
    assert mask.int().tolist() == [
        [1, 1, 1, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 1, 1],
        [1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0],
    ]
    assert P.sequence_lengths(mask).tolist() == [3, 2, 5, 1, 1]
    assert P.contains_eos(ids, eos, pad).tolist() == [True, True, False, True, False]


def test_response_mask_when_pad_is_eos_and_with_several_eos_ids():
    ids = torch.tensor([[5, 2, 2, 2], [5, 6, 7, 8]])
    assert P.response_mask(ids, 2, 2).int().tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert P.contains_eos(ids, 2, 2).tolist() == [True, False]

    ids = torch.tensor([[5, 3, 2, 9], [2, 3, 9, 9]])
    assert P.response_mask(ids, [2, 3], None).int().tolist() == [[1, 1, 0, 0], [1, 0, 0, 0]]


# --------------------------------------------------------------------------- log-probs and entropy


def test_logprobs_from_logits_matches_log_softmax_and_is_stable():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 11, generator=g, dtype=F64)
    labels = torch.randint(0, 11, (2, 3), generator=g)
    expected = torch.log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(P.logprobs_from_logits(logits, labels), expected)
    # A huge common offset changes nothing and stays finite.
    assert torch.allclose(P.logprobs_from_logits(logits.float() + 1e4, labels), expected.float(), atol=1e-3)
    # Half precision is computed in float32.
    out = P.logprobs_from_logits(logits.bfloat16(), labels)
    assert out.dtype == torch.float32


def test_entropy_from_logits():
    uniform = torch.zeros(2, 8, dtype=F64)
    assert torch.allclose(P.entropy_from_logits(uniform), torch.full((2,), math.log(8), dtype=F64))
    peaked = torch.tensor([[100.0, 0.0, 0.0]], dtype=F64)
    assert P.entropy_from_logits(peaked).item() == pytest.approx(0.0, abs=1e-30)
    logits = torch.randn(3, 4, 9, generator=torch.Generator().manual_seed(2), dtype=F64)
    expected = torch.distributions.Categorical(logits=logits).entropy()
    assert torch.allclose(P.entropy_from_logits(logits), expected)


# --------------------------------------------------------------------------- KL estimators


def test_kl_estimators_hand_computed():
    logp = torch.tensor([-1.0, -2.0, -0.5], dtype=F64)
    ref = torch.tensor([-1.5, -1.0, -0.5], dtype=F64)
    # log r = ref - logp = [-0.5, 1, 0]
    assert P.kl_k1(logp, ref).tolist() == pytest.approx([0.5, -1.0, 0.0])  # k1 can be negative
    assert P.kl_k2(logp, ref).tolist() == pytest.approx([0.125, 0.5, 0.0])
    # k3 = (r - 1) - log r: (e^-0.5 - 1) + 0.5 = 0.1065307, (e - 1) - 1 = 0.7182818, 0
    assert P.kl_k3(logp, ref).tolist() == pytest.approx([0.10653066, 0.71828183, 0.0])
    assert P.kl_penalty(logp, ref, "k3").tolist() == P.kl_k3(logp, ref).tolist()
    with pytest.raises(ValueError):
        P.kl_penalty(logp, ref, "k4")


def test_kl_estimators_properties():
    g = torch.Generator().manual_seed(3)
    logp = torch.randn(1000, generator=g, dtype=F64) * 2
    ref = torch.randn(1000, generator=g, dtype=F64) * 2
    assert (P.kl_k1(logp, ref) < 0).any()
    assert (P.kl_k3(logp, ref) >= 0).all()
    assert (P.kl_k3(logp.float(), (logp + 1e-7).float()) >= 0).all()
    for fn in (P.kl_k1, P.kl_k2, P.kl_k3):
        assert torch.all(fn(logp, logp) == 0)
    # Small differences: k3 = d^2/2 - d^3/6 + ..., so k3 ~ k1^2 / 2.
    d = torch.randn(100, generator=g, dtype=F64) * 1e-3
    k1 = P.kl_k1(logp[:100] + d, logp[:100])
    assert torch.allclose(P.kl_k3(logp[:100] + d, logp[:100]), k1**2 / 2, rtol=2e-3, atol=0)


def test_k1_and_k3_are_unbiased_for_policy_samples():
    policy = torch.tensor([0.5, 0.2, 0.2, 0.1], dtype=F64)
    ref = torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=F64)
    exact = (policy * (policy / ref).log()).sum().item()  # KL(policy || ref)
    tokens = torch.multinomial(policy, 200_000, replacement=True, generator=torch.Generator().manual_seed(4))
    logp, ref_logp = policy.log()[tokens], ref.log()[tokens]
    assert P.kl_k1(logp, ref_logp).mean().item() == pytest.approx(exact, abs=3e-3)
    assert P.kl_k3(logp, ref_logp).mean().item() == pytest.approx(exact, abs=3e-3)


# --------------------------------------------------------------------------- rewards


def test_per_token_rewards_score_at_last_token_kl_on_response_only():
    nan, inf = float("nan"), float("inf")
    # logp - ref: row 0 [0.5, -1.0] (length 2), row 1 [0.2, 0.0, 0.3, -0.4] (length 4)
    logp = t([-1.0, -2.0, inf, nan], [-1.0, -1.0, -1.0, -1.0])
    ref = t([-1.5, -1.0, nan, -inf], [-1.2, -1.0, -1.3, -0.6])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    scores = torch.tensor([1.0, -2.0], dtype=F64)
    rewards, non_score, kl = P.per_token_rewards(scores, logp, ref, mask, kl_coef=0.1)
    # -0.1 * kl per token; score added at index length - 1.
    assert rewards.tolist()[0] == pytest.approx([-0.05, 0.1 + 1.0, 0.0, 0.0])
    assert rewards.tolist()[1] == pytest.approx([-0.02, 0.0, -0.03, 0.04 - 2.0])
    assert non_score.tolist() == pytest.approx([-0.05 + 0.1, -0.02 - 0.03 + 0.04])
    assert kl.tolist() == pytest.approx([-0.5, 0.1])

    rewards3, non_score3, kl3 = P.per_token_rewards(scores, logp, ref, mask, kl_coef=0.1, kl_estimator="k3")
    assert torch.all(rewards3[~mask] == 0) and (kl3 >= 0).all()
    k3 = P.kl_k3(logp[:, :2], ref[:, :2])
    assert rewards3[0, :2].tolist() == pytest.approx((-0.1 * k3[0] + torch.tensor([0.0, 1.0], dtype=F64)).tolist())
    assert non_score3[0].item() == pytest.approx(-0.1 * k3[0].sum().item())


def test_eos_penalty_follows_trl_subtraction():
    scores = torch.tensor([1.0, 2.0, 3.0])
    has_eos = torch.tensor([True, False, True])
    assert P.eos_penalty(scores, has_eos, 1.5).tolist() == [1.0, 0.5, 3.0]
    assert P.eos_penalty(scores, has_eos, -1.0, mode="replace").tolist() == [1.0, -1.0, 3.0]
    assert P.eos_penalty(scores, has_eos, None) is scores
    assert scores.tolist() == [1.0, 2.0, 3.0]  # not modified in place
    with pytest.raises(ValueError):
        P.eos_penalty(scores, has_eos, -1.0)
    with pytest.raises(ValueError):
        P.eos_penalty(scores, has_eos, 1.0, mode="add")


# --------------------------------------------------------------------------- GAE


def test_gae_hand_computed_two_sequences_of_different_length():
    gamma, lam = 0.9, 0.8  # gamma * lam = 0.72
    # Sequence A has 3 response tokens; its 4th slot is padding with junk in it.
    # Sequence B has 4 response tokens.
    rewards = t([0.0, 0.0, 1.0, 99.0], [0.1, -0.2, 0.0, 2.0])
    values = t([0.5, 1.0, 0.5, 7.0], [1.0, 0.0, 0.5, 1.0])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    # A, right to left (value after the last token is 0: terminal):
    #   t=2: delta = 1 + 0.9*0 - 0.5 = 0.5;        A2 = 0.5
    #   t=1: delta = 0 + 0.9*0.5 - 1.0 = -0.55;    A1 = -0.55 + 0.72*0.5 = -0.19
    #   t=0: delta = 0 + 0.9*1.0 - 0.5 = 0.4;      A0 = 0.4 + 0.72*(-0.19) = 0.4 - 0.1368 = 0.2632
    #   returns = A + V = [0.7632, 0.81, 1.0], padding 0
    # B:
    #   t=3: delta = 2 + 0.9*0 - 1 = 1;            A3 = 1
    #   t=2: delta = 0 + 0.9*1 - 0.5 = 0.4;        A2 = 0.4 + 0.72*1 = 1.12
    #   t=1: delta = -0.2 + 0.9*0.5 - 0 = 0.25;    A1 = 0.25 + 0.72*1.12 = 0.25 + 0.8064 = 1.0564
    #   t=0: delta = 0.1 + 0.9*0 - 1 = -0.9;       A0 = -0.9 + 0.72*1.0564 = -0.9 + 0.760608 = -0.139392
    #   returns = A + V = [0.860608, 1.0564, 1.62, 2.0]
    adv, ret = P.compute_gae(rewards, values, mask, gamma, lam)
    assert adv.tolist()[0] == pytest.approx([0.2632, -0.19, 0.5, 0.0])
    assert adv.tolist()[1] == pytest.approx([-0.139392, 1.0564, 1.12, 1.0])
    assert ret.tolist()[0] == pytest.approx([0.7632, 0.81, 1.0, 0.0])
    assert ret.tolist()[1] == pytest.approx([0.860608, 1.0564, 1.62, 2.0])


# --------------------------------------------------------------------------- losses


def test_clipped_policy_loss_hand_computed():
    eps = 0.2
    # ratios 1.5, 1.5, 0.5, 0.5, 1.0 with advantages +1, -1, +1, -1, +2; 6th token is padding.
    new = torch.tensor([[math.log(1.5), math.log(1.5), math.log(0.5), math.log(0.5), 0.0, float("inf")]], dtype=F64)
    old = torch.zeros(1, 6, dtype=F64)
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0, 2.0, float("nan")]], dtype=F64)
    mask = torch.tensor([[True] * 5 + [False]])
    # per token max(-A*r, -A*clip(r, 0.8, 1.2)):
    #   r=1.5, A=+1: max(-1.5, -1.2) = -1.2  clipped
    #   r=1.5, A=-1: max( 1.5,  1.2) =  1.5
    #   r=0.5, A=+1: max(-0.5, -0.8) = -0.5
    #   r=0.5, A=-1: max( 0.5,  0.8) =  0.8  clipped
    #   r=1.0, A=+2: max(-2.0, -2.0) = -2.0  (a tie is not clipping)
    # loss = (-1.2 + 1.5 - 0.5 + 0.8 - 2.0) / 5 = -0.28; clipfrac = 2/5
    # approxkl = 0.5 * (2*ln(1.5)^2 + 2*ln(0.5)^2) / 5 = 0.5 * (0.3288038 + 0.9609060) / 5 = 0.1289710
    loss, stats = P.clipped_policy_loss(new, old, adv, mask, eps)
    assert loss.item() == pytest.approx(-0.28)
    assert stats["clipfrac"].item() == pytest.approx(0.4)
    assert stats["approxkl"].item() == pytest.approx(0.1289710, abs=1e-7)
    assert stats["ratio"].item() == pytest.approx(1.0)  # (1.5 + 1.5 + 0.5 + 0.5 + 1) / 5


def test_clipped_value_loss_hand_computed():
    c = 0.2
    new = t([0.5, 0.5, 1.1, float("inf")])
    old = t([0.0, 0.0, 1.0, 5.0])
    ret = t([1.0, 0.0, 3.0, float("nan")])
    mask = torch.tensor([[True, True, True, False]])
    #   V=0.5, old=0, R=1: (0.5-1)^2 = 0.25, clip -> 0.2: (0.2-1)^2 = 0.64 -> 0.64 clipped
    #   V=0.5, old=0, R=0: 0.25, clip -> 0.2: 0.04                         -> 0.25
    #   V=1.1, old=1, R=3: inside the clip range: 1.9^2 = 3.61 both        -> 3.61
    # loss = 0.5 * (0.64 + 0.25 + 3.61) / 3 = 0.75; clipfrac = 1/3
    loss, clipfrac = P.clipped_value_loss(new, old, ret, mask, c)
    assert loss.item() == pytest.approx(0.75)
    assert clipfrac.item() == pytest.approx(1 / 3)


def test_policy_loss_is_a_token_mean_over_two_rows_of_different_length():
    """Every response token weighs the same: a per-sequence mean would weigh row 1's one token
    like row 0's three (-2.0833 instead of -1.475)."""
    inf = float("inf")
    new = t([0.0, math.log(1.5), math.log(0.5)], [math.log(1.1), inf, -inf])
    old = torch.zeros(2, 3, dtype=F64)
    adv = t([1.0, 2.0, -1.0], [3.0, float("nan"), 5.0])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    #   row 0: r=1,   A=1:  max(-1, -1)       = -1
    #          r=1.5, A=2:  max(-3, -2.4)     = -2.4  clipped
    #          r=0.5, A=-1: max(0.5, 0.8)     =  0.8  clipped
    #   row 1: r=1.1, A=3:  max(-3.3, -3.3)   = -3.3
    # token mean (-1 - 2.4 + 0.8 - 3.3) / 4 = -1.475; sequence mean (-2.6/3 - 3.3) / 2 = -2.08333
    # approxkl = 0.5 * (ln1.5^2 + ln0.5^2 + ln1.1^2) / 4 = 0.5 * (0.1644019 + 0.4804530 + 0.0090840) / 4
    loss, stats = P.clipped_policy_loss(new, old, adv, mask, 0.2)
    assert loss.item() == pytest.approx(-1.475)
    assert stats["clipfrac"].item() == pytest.approx(0.5)
    assert stats["ratio"].item() == pytest.approx((1 + 1.5 + 0.5 + 1.1) / 4)
    assert stats["approxkl"].item() == pytest.approx(0.0817424, abs=1e-6)


def test_value_loss_is_a_token_mean_over_two_rows_of_different_length():
    new = t([0.5, 0.0, 9.0], [2.0, -9.0, float("nan")])
    old = t([0.0, 0.0, 0.0], [1.0, 0.0, 0.0])
    ret = t([1.0, -1.0, 0.0], [3.0, 0.0, 0.0])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    #   row 0: V=0.5, old 0, R=1:  0.25 vs clip 0.2 -> 0.64          -> 0.64 clipped
    #          V=0,   old 0, R=-1: 1 vs 1                            -> 1
    #   row 1: V=2,   old 1, R=3:  1 vs clip 1.2 -> (1.2-3)^2 = 3.24 -> 3.24 clipped
    # token mean 0.5 * (0.64 + 1 + 3.24) / 3 = 0.813333; sequence mean 0.5 * (0.82 + 3.24) / 2 = 1.015
    loss, clipfrac = P.clipped_value_loss(new, old, ret, mask, 0.2)
    assert loss.item() == pytest.approx(0.8133333, abs=1e-6)
    assert clipfrac.item() == pytest.approx(2 / 3)


def test_losses_over_micro_batches_add_up_to_the_minibatch_loss():
    """Gradient accumulation: normalized by the minibatch's token count, the micro-batch losses
    (and their gradients) sum to the unsplit minibatch's exactly."""
    g = torch.Generator().manual_seed(3)
    new = torch.randn(3, 5, generator=g, dtype=F64) * 0.3
    old, adv = torch.randn(3, 5, generator=g, dtype=F64) * 0.3, torch.randn(3, 5, generator=g, dtype=F64)
    values, ret = torch.randn(3, 5, generator=g, dtype=F64), torch.randn(3, 5, generator=g, dtype=F64)
    mask = torch.arange(5) < torch.tensor([[5], [1], [3]])

    def losses(rows, n):
        x, v = new[rows].clone().requires_grad_(True), values[rows].clone().requires_grad_(True)
        pg, _ = P.clipped_policy_loss(x, old[rows], adv[rows], mask[rows], 0.2, num_tokens=n)
        vf, _ = P.clipped_value_loss(v, values[rows] * 0.5, ret[rows], mask[rows], 0.2, num_tokens=n)
        (pg + vf).backward()
        return pg.item(), vf.item(), x.grad, v.grad

    whole = losses(slice(0, 3), None)
    parts = [losses(slice(i, i + 1), int(mask.sum())) for i in range(3)]
    assert whole[0] == pytest.approx(sum(p[0] for p in parts))
    assert whole[1] == pytest.approx(sum(p[1] for p in parts))
    assert torch.allclose(whole[2], torch.cat([p[2] for p in parts]))
    assert torch.allclose(whole[3], torch.cat([p[3] for p in parts]))
    mean_of_means = sum(P.clipped_policy_loss(new[i:i + 1], old[i:i + 1], adv[i:i + 1], mask[i:i + 1], 0.2)[0].item()
                        for i in range(3)) / 3
    assert abs(mean_of_means - whole[0]) > 1e-3  # the case the normalization exists for


def test_chunked_logprobs_and_entropy_equal_the_whole_computation():
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(2, 7, 11, generator=g) * 4).bfloat16()
    labels = torch.randint(0, 11, (2, 7), generator=g)
    whole = P.logprobs_from_logits(logits, labels, temperature=0.7)
    expected = torch.gather(torch.log_softmax(logits.float() / 0.7, -1), -1, labels.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(whole, expected, atol=1e-6)  # upcast first, then the temperature
    for chunk in (1, 3, 7, 100):
        assert torch.allclose(P.logprobs_from_logits(logits, labels, 0.7, chunk), whole, atol=1e-6)
        assert torch.allclose(P.entropy_from_logits(logits, 0.7, chunk), P.entropy_from_logits(logits, 0.7),
                              atol=1e-6)
    assert P.logprobs_from_logits(logits[:, :0], labels[:, :0], 0.7, 4).shape == (2, 0)


# --------------------------------------------------------------------------- masking end to end


def _pipeline(ids, logp, ref, values, new_logp, new_values):
    """The whole per-batch PPO computation, returning every result and the gradients."""
    new_logp = new_logp.clone().requires_grad_(True)
    new_values = new_values.clone().requires_grad_(True)
    mask = P.response_mask(ids, eos_token_id=2, pad_token_id=0)
    scores = P.eos_penalty(torch.tensor([1.0, -0.5, 2.0], dtype=F64), P.contains_eos(ids, 2, 0), 1.0)
    rewards, non_score, kl = P.per_token_rewards(scores, logp, ref, mask, 0.2, "k3")
    rewards = P.masked_whiten(rewards, mask, shift_mean=False)
    adv, ret = P.compute_gae(rewards, values, mask, gamma=1.0, lam=0.95)
    adv = P.masked_whiten(adv, mask)
    pg, stats = P.clipped_policy_loss(new_logp, logp, adv, mask, 0.2)
    vf, vf_clip = P.clipped_value_loss(new_values, values, ret, mask, 0.2)
    (pg + 0.1 * vf).backward()
    out = dict(rewards=rewards, non_score=non_score, kl=kl, adv=adv, ret=ret, pg=pg, vf=vf, vf_clip=vf_clip,
               entropy_mean=P.masked_mean(-logp, mask), g_logp=new_logp.grad, g_values=new_values.grad, **stats)
    return out, mask


def test_padding_and_post_eos_tokens_do_not_affect_anything():
    g = torch.Generator().manual_seed(5)
    ids = torch.tensor([[5, 6, 2, 0, 0, 0], [7, 2, 8, 9, 2, 3], [5, 6, 7, 8, 9, 4]])
    shape = ids.shape
    logp = -torch.rand(shape, generator=g, dtype=F64) * 3
    ref = -torch.rand(shape, generator=g, dtype=F64) * 3
    values = torch.randn(shape, generator=g, dtype=F64)
    new_logp = logp + torch.randn(shape, generator=g, dtype=F64) * 0.3
    new_values = values + torch.randn(shape, generator=g, dtype=F64) * 0.3
    base, mask = _pipeline(ids, logp, ref, values, new_logp, new_values)
    assert mask.int().tolist() == [[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]]

    junk = torch.tensor([1e6, -1e6, float("inf"), -float("inf"), float("nan"), 123.0], dtype=F64)

    def wild(x, shift):
        x = x.clone()
        n = int((~mask).sum())
        x[~mask] = junk.roll(shift).repeat(n)[:n]
        return x

    ids_wild = ids.clone()
    ids_wild[1, 2:] = torch.tensor([2, 0, 2, 2])  # different tokens after the first EOS
    perturbed, _ = _pipeline(ids_wild, wild(logp, 0), wild(ref, 1), wild(values, 2), wild(new_logp, 3),
                             wild(new_values, 4))
    for key, value in base.items():
        assert torch.equal(value, perturbed[key]), key
    assert torch.all(perturbed["g_logp"][~mask] == 0) and torch.all(perturbed["g_values"][~mask] == 0)
    assert torch.isfinite(perturbed["g_logp"]).all() and torch.isfinite(perturbed["g_values"]).all()


# --------------------------------------------------------------------------- KL controllers


def test_adaptive_kl_controller_moves_towards_target():
    ctl = P.AdaptiveKLController(init_kl_coef=0.2, target=6.0, horizon=10_000)
    # KL 12 > 6: error clip(12/6 - 1, -0.2, 0.2) = 0.2 -> mult 1 + 0.2*64/10000 = 1.00128
    ctl.update(12.0, n_steps=64)
    assert ctl.value == pytest.approx(0.2 * 1.00128)
    # KL 3 < 6: error clip(-0.5) = -0.2 -> mult 0.99872
    before = ctl.value
    ctl.update(torch.tensor(3.0), n_steps=64)
    assert ctl.value == pytest.approx(before * 0.99872)
    # KL 6.6: error 0.1 inside the clip -> mult 1 + 0.1*64/10000 = 1.00064
    before = ctl.value
    ctl.update(6.6, n_steps=64)
    assert ctl.value == pytest.approx(before * 1.00064)
    before = ctl.value
    ctl.update(6.0, n_steps=64)
    assert ctl.value == before
    with pytest.raises(ValueError):
        P.AdaptiveKLController(0.2, target=0.0, horizon=10_000)


def test_kl_controllers_state_dict_round_trip_is_exact():
    a = P.AdaptiveKLController(0.1, target=4.0, horizon=1000)
    for kl in (9.0, 1.0, 4.4, 7.3):
        a.update(kl, n_steps=32)
    state = json.loads(json.dumps(a.state_dict()))  # survives a JSON checkpoint exactly
    b = P.AdaptiveKLController(0.5, target=1.0, horizon=7)
    b.load_state_dict(state)
    for kl in (2.0, 8.0):
        a.update(kl, 32)
        b.update(kl, 32)
    assert b.value == a.value and b.state_dict() == a.state_dict()

    f = P.FixedKLController(0.05)
    f.update(100.0, 64)
    assert f.value == 0.05
    g = P.FixedKLController(1.0)
    g.load_state_dict(f.state_dict())
    assert g.value == 0.05
    with pytest.raises(ValueError):
        g.load_state_dict(a.state_dict())
