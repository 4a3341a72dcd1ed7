"""The tensor math of RLHF with PPO: masks, log-probs, KL penalties, GAE, clipped losses.

Pure ``torch`` functions with no model, optimizer or config in sight, so the PPO
engine stays a readable top-to-bottom recipe and every formula here is tested
against hand-computed numbers. The conventions follow Huang et al., "The N
Implementation Details of RLHF with PPO" and "The N+ Implementation Details of
RLHF with PPO: TL;DR", and TRL 1.12's ``PPOTrainer`` (the last one shipped),
so metrics stay comparable with TRL runs.

Shapes: ``B`` is the batch (one row per sampled response), ``T`` the response
length (generated tokens, the prompt already cut off), ``V`` the vocabulary.
Per-token tensors are ``(B, T)`` and come with a boolean ``mask`` of the same
shape that is True on response tokens: everything up to and including the
first EOS (see :func:`response_mask`). Masks are always a prefix of each row.

Masking contract: values at masked-out positions never influence a result, not
even when they are ``inf`` or ``nan`` (a model forward over padding produces
arbitrary numbers). Functions select with ``torch.where`` instead of
multiplying by the mask, because ``nan * 0`` is ``nan``; and they sanitize
inputs *before* any nonlinearity, so no ``nan`` gradient reaches the padding
either. Per-token outputs are 0 outside the mask.

Deliberate differences from TRL 1.12 (all in favour of the published
definitions):

- The sequence-level score is added at the last response token (the EOS when
  there is one). TRL adds it one position *after* ``sequence_length``, which
  is the first padding slot when ``pad_token_id != eos_token_id`` and extends
  the value mask by one token to match (``padding_mask_p1``). Here the value
  after the last response token is 0: the episode terminates there.
- ``approxkl`` and the ratio mean are masked means; TRL averages over padding
  too (where its logprob fill value makes the ratio exactly 1).
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence, Union

import torch

KLEstimator = Literal["k1", "k2", "k3"]
KL_ESTIMATORS: tuple[str, ...] = ("k1", "k2", "k3")

TokenIds = Union[int, Sequence[int]]


# --------------------------------------------------------------------------- masked statistics


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: Optional[int] = None) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is True.

    Args:
        x: any shape.
        mask: bool (or 0/1) tensor of the same shape as ``x``.
        dim: reduce along this dimension only; ``None`` reduces over everything.

    Returns:
        A scalar tensor, or ``x`` with ``dim`` removed. A slice without any
        masked-in element gives ``nan``, as ``torch.mean`` of an empty tensor does.
    """
    mask = mask.bool()
    # where, not x * mask: padding may hold inf/nan and nan * 0 is nan.
    total = torch.where(mask, x, torch.zeros_like(x))
    # Integer counts stay exact even where a half-precision count would round.
    if dim is None:
        return total.sum() / mask.sum()
    return total.sum(dim) / mask.sum(dim)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``x`` over all masked-in positions (a scalar tensor).

    ``unbiased`` applies Bessel's correction ``n / (n - 1)`` with ``n`` the number
    of masked-in elements, as TRL does.

    Raises:
        ValueError: when fewer than 2 elements (1 with ``unbiased=False``) are
            masked in; the variance is undefined and would silently be nan/inf.
    """
    mask = mask.bool()
    n = int(mask.sum())  # one host sync; needed for a clear error instead of a nan
    if n < (2 if unbiased else 1):
        raise ValueError(
            f"masked_var needs at least {2 if unbiased else 1} masked-in elements, got {n}; "
            "use a larger (mini)batch"
        )
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    if unbiased:
        var = var * (n / (n - 1))
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Normalize ``x`` to zero mean and unit variance using statistics over the mask only.

    Whitening with padding included would pull the statistics towards whatever
    the padding holds; the N-details whiten advantages (and optionally rewards)
    with masked statistics.

    Args:
        x: any shape, usually ``(B, T)`` advantages or rewards.
        mask: bool tensor of ``x``'s shape.
        shift_mean: False keeps the original mean and only rescales; used for
            reward whitening, where shifting the mean would change the sign of
            rewards and so the incentive to end a response early or late.

    Returns:
        Tensor of ``x``'s shape, 0 outside the mask.
    """
    mask = mask.bool()
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    whitened = (x - mean) * torch.rsqrt(var + 1e-8)  # epsilon as in TRL: constant inputs stay finite
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(mask, whitened, torch.zeros_like(whitened))


# --------------------------------------------------------------------------- response masks


def _isin(ids: torch.Tensor, token_ids: TokenIds) -> torch.Tensor:
    if isinstance(token_ids, int):
        return ids == token_ids
    return torch.isin(ids, torch.as_tensor(list(token_ids), device=ids.device, dtype=ids.dtype))


def response_mask(
    response_ids: torch.Tensor, eos_token_id: TokenIds, pad_token_id: Optional[int] = None
) -> torch.Tensor:
    """Which generated tokens belong to the response: up to and including the first EOS.

    Everything after the first EOS is masked out (``generate`` keeps writing
    padding, or the model keeps sampling, after it). When ``pad_token_id``
    differs from every EOS id, a pad token before any EOS also ends the
    response, exclusively: that is where TRL's ``sequence_length`` ends and
    where a reward model stops reading. When pad and EOS are the same id (a
    common setup) the first occurrence counts as the EOS and stays in.

    Args:
        response_ids: ``(B, T)`` generated token ids, the prompt cut off.
        eos_token_id: one id or several (models with more than one stop token).
        pad_token_id: the padding id, or None.

    Returns:
        ``(B, T)`` bool mask, a prefix of each row. A response that hits the
        length limit without EOS is all True.
    """
    is_eos = _isin(response_ids, eos_token_id)
    # Tokens strictly after the first EOS: the running count of EOS *before* t is positive.
    after_eos = (torch.cumsum(is_eos.int(), dim=-1) - is_eos.int()) > 0
    mask = ~after_eos
    if pad_token_id is not None:
        is_pad = (response_ids == pad_token_id) & ~is_eos
        mask &= torch.cumsum(is_pad.int(), dim=-1) == 0
    return mask


def sequence_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Number of response tokens per row, ``(B,)`` long; the last one is at ``length - 1``."""
    return mask.bool().sum(dim=-1)


def contains_eos(
    response_ids: torch.Tensor, eos_token_id: TokenIds, pad_token_id: Optional[int] = None
) -> torch.Tensor:
    """Whether each response ended with an EOS rather than the length limit, ``(B,)`` bool.

    Only EOS tokens inside :func:`response_mask` count, so a response cut
    short by a stray pad token does not count as finished.
    """
    mask = response_mask(response_ids, eos_token_id, pad_token_id)
    return (_isin(response_ids, eos_token_id) & mask).any(dim=-1)


# --------------------------------------------------------------------------- log-probs and entropy


def _as_float(logits: torch.Tensor) -> torch.Tensor:
    # log-softmax over a large vocabulary in fp16/bf16 loses most of its precision,
    # and the PPO ratio exp(new - old) amplifies that error; compute in float32.
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def _chunks(length: int, chunk_size: int) -> list[slice]:
    step = max(1, min(int(chunk_size), length))
    return [slice(i, i + step) for i in range(0, length, step)] or [slice(0, 0)]


def logprobs_from_logits(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
                         chunk_size: Optional[int] = None) -> torch.Tensor:
    """Log-probability of each label under ``softmax(logits / temperature)``.

    ``log p(label) = z[label] - logsumexp(z)`` with ``z = float32(logits) / temperature``:
    numerically stable and never materializes the full ``(B, T, V)`` log-softmax.

    The temperature must be the sampling temperature, so the log-probs are those of the
    distribution the tokens were actually sampled from; otherwise the rollout log-probs, the
    reference log-probs and the KL penalty all refer to a different policy (an N-details
    pitfall). Half-precision logits are upcast *before* the division (a bf16 division adds
    rounding noise to every log-prob), as ``generate`` does. Logits must be aligned with the
    labels: the logits at position ``t`` predict token ``t + 1`` of the full sequence.

    Args:
        logits: ``(..., T, V)`` (or ``(..., V)``); half precision is upcast to float32.
        labels: ``(..., T)`` long token ids, valid indices into ``V``.
        temperature: the sampling temperature (> 0).
        chunk_size: process this many positions of the ``T`` axis at a time, so the
            float32 copy of the logits exists for one chunk only (peak memory); ``None``: all.

    Returns:
        ``(..., T)`` log-probabilities (float32 or the logits' dtype if wider).
    """
    if logits.dim() < 2 or not chunk_size:
        z = _as_float(logits) / temperature
        picked = torch.gather(z, -1, labels.unsqueeze(-1)).squeeze(-1)
        return picked - torch.logsumexp(z, dim=-1)
    parts = [logprobs_from_logits(logits[..., c, :], labels[..., c], temperature)
             for c in _chunks(logits.shape[-2], chunk_size)]
    return torch.cat(parts, dim=-1)


def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0,
                        chunk_size: Optional[int] = None) -> torch.Tensor:
    """Shannon entropy in nats of ``softmax(logits / temperature)`` over the last axis.

    Args:
        logits: ``(..., T, V)`` (or ``(..., V)``), finite.
        temperature: the sampling temperature, applied after the float32 upcast.
        chunk_size: positions of the ``T`` axis per chunk (peak memory), as in
            :func:`logprobs_from_logits`.

    Returns:
        ``(..., T)`` entropies, each in ``[0, log V]``.
    """
    if logits.dim() < 2 or not chunk_size:
        logp = torch.log_softmax(_as_float(logits) / temperature, dim=-1)
        return -(logp.exp() * logp).sum(dim=-1)
    parts = [entropy_from_logits(logits[..., c, :], temperature) for c in _chunks(logits.shape[-2], chunk_size)]
    return torch.cat(parts, dim=-1)


# --------------------------------------------------------------------------- KL estimators


def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k1 estimate of KL(policy || reference): ``logp - ref_logp``.

    Unbiased for tokens sampled from the policy, but a single sample can be
    negative (common in the first steps, when policy and reference agree).
    Shapes: any, elementwise.
    """
    return logprobs - ref_logprobs


def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k2 estimate: ``0.5 * (logp - ref_logp) ** 2``.

    Non-negative and low variance but biased (it is the second-order term of
    the KL); TRL uses it for logging only. Shapes: any, elementwise.
    """
    return 0.5 * (logprobs - ref_logprobs) ** 2


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate: ``(r - 1) - log r`` with ``r = exp(ref_logp - logp)``.

    Unbiased, non-negative for every sample (``x - 1 >= log x``) and lower
    variance than k1 (Schulman, "Approximating KL Divergence"). ``r - 1`` is
    computed as ``expm1(log r)``, which keeps precision when the two
    distributions are close and the difference is tiny. Shapes: any, elementwise.
    """
    log_r = ref_logprobs - logprobs
    # clamp only guards against a last-ulp rounding below zero; mathematically k3 >= 0.
    return (torch.expm1(log_r) - log_r).clamp_min(0.0)


_KL_FUNCTIONS = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token KL estimate by name: ``"k1"``, ``"k2"`` or ``"k3"`` (see the ``kl_k*`` functions)."""
    try:
        fn = _KL_FUNCTIONS[estimator]
    except KeyError:
        raise ValueError(f"unknown KL estimator {estimator!r}; expected one of {KL_ESTIMATORS}") from None
    return fn(logprobs, ref_logprobs)


# --------------------------------------------------------------------------- rewards


def per_token_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: Union[float, torch.Tensor],
    kl_estimator: str = "k1",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dense PPO rewards: a KL penalty on every response token, the score on the last one.

    ``rewards[b, t] = -kl_coef * kl[b, t]`` for every response token, plus
    ``scores[b]`` at the last response token (the EOS when there is one). The
    reward model judges the whole response, so its score belongs to the action
    that completed it; the per-token KL keeps every step near the reference.

    Args:
        scores: ``(B,)`` reward-model scores, after any EOS/length penalties.
        logprobs: ``(B, T)`` rollout log-probs of the sampled tokens under the policy.
        ref_logprobs: ``(B, T)`` log-probs of the same tokens under the reference.
        mask: ``(B, T)`` response mask (:func:`response_mask`).
        kl_coef: the KL coefficient (``KLController.value``); scale it to the
            range of the scores.
        kl_estimator: ``"k1"`` (TRL's default), ``"k3"``, or ``"k2"``.

    Returns:
        ``(rewards, non_score_reward, kl)``: ``rewards`` is ``(B, T)`` and 0
        outside the mask; ``non_score_reward`` is ``(B,)``, the summed KL
        penalty per sequence; ``kl`` is ``(B,)``, the summed KL estimate per
        sequence (its batch mean is TRL's ``objective/kl``). A row with an
        empty mask gets no reward at all.
    """
    mask = mask.bool()
    zeros = torch.zeros_like(logprobs)
    kl = torch.where(mask, kl_penalty(torch.where(mask, logprobs, zeros),
                                      torch.where(mask, ref_logprobs, zeros), kl_estimator), zeros)
    penalty = -kl_coef * kl
    rewards = penalty.clone()
    lengths = sequence_lengths(mask)
    rows = torch.nonzero(lengths > 0, as_tuple=True)[0]
    rewards[rows, lengths[rows] - 1] += scores[rows].to(rewards.dtype)
    return rewards, penalty.sum(dim=-1), kl.sum(dim=-1)


def eos_penalty(
    scores: torch.Tensor,
    contains_eos: torch.Tensor,
    penalty: Optional[float],
    mode: Literal["subtract", "replace"] = "subtract",
) -> torch.Tensor:
    """Penalize the scores of responses that ran into the length limit without an EOS.

    ``mode="subtract"`` (default) is TRL's ``missing_eos_penalty``:
    ``scores[~contains_eos] -= penalty`` with a positive ``penalty``, which
    keeps the reward model's ranking among unfinished responses.
    ``mode="replace"`` is the original OpenAI ``lm-human-preferences``
    behaviour described in the N-details: such scores become the constant
    ``penalty`` itself (for example ``-1.0``).

    Args:
        scores: ``(B,)`` scores.
        contains_eos: ``(B,)`` bool, from :func:`contains_eos`.
        penalty: the amount (subtract) or value (replace); None returns the
            scores unchanged.

    Returns:
        A new ``(B,)`` tensor; the input is not modified.
    """
    if penalty is None:
        return scores
    missing = ~contains_eos.bool()
    if mode == "subtract":
        if penalty < 0:
            raise ValueError(f"missing-EOS penalty must be >= 0 (it is subtracted), got {penalty}")
        return torch.where(missing, scores - penalty, scores)
    if mode == "replace":
        return torch.where(missing, torch.full_like(scores, float(penalty)), scores)
    raise ValueError(f"unknown eos_penalty mode {mode!r}; expected 'subtract' or 'replace'")


# --------------------------------------------------------------------------- advantages


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over the response tokens, right to left.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` and
    ``A_t = delta_t + gamma * lam * A_{t+1}``, where ``V_{t+1}`` and ``A_{t+1}``
    are 0 past the last response token: the episode ends there, so nothing
    beyond it (padding, post-EOS tokens) is bootstrapped from.

    Args:
        rewards: ``(B, T)`` per-token rewards (:func:`per_token_rewards`).
        values: ``(B, T)`` value estimates from the rollout, one per response token.
        mask: ``(B, T)`` response mask, a prefix of each row.
        gamma: discount (TRL's default is 1.0).
        lam: GAE lambda (TRL's default is 0.95).

    Returns:
        ``(advantages, returns)``, both ``(B, T)`` and 0 outside the mask;
        ``returns = advantages + values`` are the value-function targets.
        Whiten the advantages afterwards with :func:`masked_whiten` if wanted.
    """
    mask = mask.bool()
    zeros = torch.zeros_like(values)
    rewards = torch.where(mask, rewards, torch.zeros_like(rewards))
    values = torch.where(mask, values, zeros)
    maskf = mask.to(values.dtype)
    advantages = torch.zeros_like(values)
    last_gae = torch.zeros_like(values[:, 0])
    next_values = torch.zeros_like(values[:, 0])
    next_mask = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        # next_mask zeroes the bootstrap at the last response token (terminal state).
        delta = rewards[:, t] + gamma * next_values * next_mask - values[:, t]
        last_gae = (delta + gamma * lam * next_mask * last_gae) * maskf[:, t]
        advantages[:, t] = last_gae
        next_values, next_mask = values[:, t], maskf[:, t]
    returns = torch.where(mask, advantages + values, zeros)
    return advantages, returns


# --------------------------------------------------------------------------- losses


def _token_mean(x: torch.Tensor, mask: torch.Tensor, num_tokens: Optional[Union[int, torch.Tensor]]) -> torch.Tensor:
    """Mean over the batch's response tokens (every token weighs the same, whichever row it is
    in: a sequence mean would give the tokens of short responses more weight), or the masked
    sum over ``num_tokens`` when given."""
    if num_tokens is None:
        return masked_mean(x, mask)
    return torch.where(mask, x, torch.zeros_like(x)).sum() / num_tokens


def clipped_policy_loss(
    new_logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
    num_tokens: Optional[Union[int, torch.Tensor]] = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate objective, as a loss to minimize.

    ``ratio = exp(new - old)``; per token the loss is
    ``max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps))``, the pessimistic
    bound, averaged over the response tokens of the (micro)batch.

    Args:
        new_logprobs: ``(B, T)`` log-probs under the policy being optimized (with grad).
        old_logprobs: ``(B, T)`` rollout log-probs (no grad).
        advantages: ``(B, T)`` advantages, usually whitened.
        mask: ``(B, T)`` response mask.
        clip_range: epsilon, e.g. 0.2.
        num_tokens: divide the summed per-token losses by this instead of this batch's own
            token count. With gradient accumulation, pass the whole minibatch's count: the
            micro-batch losses then add up to the minibatch's token mean exactly (a mean of
            micro-batch means would weigh a short micro-batch's tokens more).

    Returns:
        ``(loss, stats)``: a scalar loss, and detached scalar statistics:
        ``clipfrac`` (fraction of tokens where the clipped term is the larger
        one, TRL's ``policy/clipfrac_avg``), ``approxkl``
        (``0.5 * mean(log_ratio ** 2)``, TRL's ``policy/approxkl_avg``) and
        ``ratio`` (mean ratio, TRL's ``val/ratio``), all over the mask.
    """
    mask = mask.bool()
    zeros = torch.zeros_like(new_logprobs)
    # Sanitize before exp: padding log-probs can be anything and exp(inf) would poison gradients.
    log_ratio = torch.where(mask, new_logprobs - old_logprobs, zeros)
    advantages = torch.where(mask, advantages, torch.zeros_like(advantages))
    ratio = torch.exp(log_ratio)
    losses = -advantages * ratio
    losses_clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = _token_mean(torch.maximum(losses, losses_clipped), mask, num_tokens)
    with torch.no_grad():
        stats = {
            "clipfrac": masked_mean((losses_clipped > losses).float(), mask),
            "approxkl": 0.5 * masked_mean(log_ratio**2, mask),
            "ratio": masked_mean(ratio, mask),
        }
    return loss, stats


def clipped_value_loss(
    new_values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range_value: float,
    num_tokens: Optional[Union[int, torch.Tensor]] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss: ``0.5 * mean(max((V - R)^2, (clip(V, V_old +- c) - R)^2))``.

    The value prediction may not move more than ``clip_range_value`` from its
    rollout value for the clipped term, and the max makes the loss pessimistic,
    as in TRL (the N-details note this clipping is inherited from OpenAI's
    baselines). ``vf_coef`` is applied by the caller: ``loss = pg + vf_coef * vf``.

    Args:
        new_values: ``(B, T)`` value predictions being optimized (with grad).
        old_values: ``(B, T)`` rollout values (no grad).
        returns: ``(B, T)`` targets from :func:`compute_gae`.
        mask: ``(B, T)`` response mask.
        clip_range_value: the clip width ``c``, e.g. 0.2.
        num_tokens: the token count to divide by, as in :func:`clipped_policy_loss`.

    Returns:
        ``(loss, vf_clipfrac)``: scalar loss, and the detached fraction of
        tokens where the clipped term was larger (TRL's ``val/clipfrac_avg``).
    """
    mask = mask.bool()
    zeros = torch.zeros_like(new_values)
    # Sanitize first: a square of inf in the padding would give 0 * inf = nan gradients.
    new_values = torch.where(mask, new_values, zeros)
    old_values = torch.where(mask, old_values, zeros)
    returns = torch.where(mask, returns, zeros)
    clipped = torch.clamp(new_values, old_values - clip_range_value, old_values + clip_range_value)
    losses = (new_values - returns) ** 2
    losses_clipped = (clipped - returns) ** 2
    loss = 0.5 * _token_mean(torch.maximum(losses, losses_clipped), mask, num_tokens)
    with torch.no_grad():
        clipfrac = masked_mean((losses_clipped > losses).float(), mask)
    return loss, clipfrac


# --------------------------------------------------------------------------- KL controllers


class FixedKLController:
    """A constant KL coefficient. Same interface as :class:`AdaptiveKLController`."""

    def __init__(self, kl_coef: float) -> None:
        self.value = float(kl_coef)

    def update(self, current_kl: Union[float, torch.Tensor], n_steps: int) -> None:
        """No-op: the coefficient is fixed."""

    def state_dict(self) -> dict:
        return {"type": "fixed", "value": self.value}

    def load_state_dict(self, state: dict) -> None:
        _check_type(state, "fixed")
        self.value = float(state["value"])


class AdaptiveKLController:
    """Ziegler et al. (2019)'s proportional controller driving the KL towards a target.

    After each batch: ``e = clip(current_kl / target - 1, -0.2, 0.2)`` and
    ``value *= 1 + e * n_steps / horizon``. The coefficient grows while the
    KL is above target and shrinks while below; the clip bounds each change,
    so one noisy batch cannot swing it far.

    Args:
        init_kl_coef: starting coefficient.
        target: target KL, in the units passed to :meth:`update` (the mean
            per-sequence KL, i.e. ``objective/kl``, in nats).
        horizon: how many samples (episodes) it takes for a full-size error to
            change the coefficient by a factor of about ``e^0.2``; Ziegler et
            al. use 10000.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: float) -> None:
        if target <= 0:
            raise ValueError(f"KL target must be > 0, got {target}")
        if horizon <= 0:
            raise ValueError(f"KL horizon must be > 0, got {horizon}")
        self.value = float(init_kl_coef)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: Union[float, torch.Tensor], n_steps: int) -> None:
        """Adjust the coefficient after a batch.

        Args:
            current_kl: the batch's mean per-sequence KL (a float or a scalar tensor).
            n_steps: samples in the batch (the batch size), as in Ziegler et al.
        """
        proportional_error = min(max(float(current_kl) / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + proportional_error * n_steps / self.horizon

    def state_dict(self) -> dict:
        return {"type": "adaptive", "value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict) -> None:
        _check_type(state, "adaptive")
        self.value = float(state["value"])
        self.target = float(state["target"])
        self.horizon = float(state["horizon"])


KLController = Union[FixedKLController, AdaptiveKLController]


def _check_type(state: dict, expected: str) -> None:
    if state.get("type") != expected:
        raise ValueError(f"state is for a {state.get('type')!r} KL controller, not {expected!r}")
