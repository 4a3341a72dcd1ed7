"""PPO health: rules over a run's metric series that say when training is going wrong.

PPO rarely crashes when it goes wrong; its curves just stop meaning what the
user thinks. These rules watch the metrics the PPO engine logs (TRL's names,
see :data:`workbench.train.ppo.METRICS`) and raise a :class:`HealthWarning`
with a message a user can act on and the step the problem started:

- ``non_finite``: a metric became NaN or infinite (any stage);
- ``kl_negative``: the k1 KL (``objective/kl_k1``; ``objective/kl`` in runs
  that do not log it) stayed below zero (beyond noise): the
  policy's samples are likelier under the reference than under the policy
  itself, which real training does not do; it points at a mismatch between
  how responses were sampled and how they are scored (sampling settings,
  padding, position ids);
- ``ratio_band``: ``val/ratio`` (new / rollout policy probability) left a
  sane band around 1: the updates are too large for PPO's trust region;
- ``clipfrac_high``: ``policy/clipfrac_avg`` stayed high: most tokens hit
  the clip, the policy is pushed harder than the clip range allows;
- ``length_runaway``: the reward rises while the response length runs away,
  the classic sign of reward hacking (the reward model prefers length);
- ``truncated_high``: ``response/truncated_frac`` stayed high: many
  responses run into ``max_new_tokens`` without an EOS, so the reward model
  mostly judges unfinished text.

References for the thresholds: TRL's PPO documentation ("a ratio like 2.0 or
1000.0 or 0.1 means the updates are too drastic"; "KL should stay
positive"), Huang et al., "The N+ Implementation Details of RLHF with PPO".

:class:`HealthMonitor` processes only the points added since its last
:meth:`~HealthMonitor.update`, so it can run on every redraw of a live run;
each rule warns once per run (and says whether the problem is still going
on). No Qt here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

from ..jobs.metrics import MetricStore

KL = "objective/kl_k1"
#: Runs from before ``objective/kl_k1`` existed logged the k1 estimate as ``objective/kl``.
KL_FALLBACK = "objective/kl"
TRUNCATED = "response/truncated_frac"
RATIO = "val/ratio"
CLIPFRAC = "policy/clipfrac_avg"
LENGTH = "response/length_mean"
#: Reward series the runaway rule follows, the first one present wins.
REWARDS = ("objective/rlhf_reward", "objective/scores")


@dataclass(frozen=True)
class HealthThresholds:
    """When each rule fires. Defaults suit PPO on per-response sums (the engine's metrics)."""

    #: ``objective/kl`` below ``-kl_tolerance`` for ``kl_patience`` steps in a row.
    #: (The k1 estimate dips slightly below zero in the first steps by noise alone.)
    kl_tolerance: float = 0.1
    kl_patience: int = 3
    #: ``val/ratio`` outside ``[ratio_low, ratio_high]`` for ``ratio_patience`` steps in a row.
    ratio_low: float = 0.8
    ratio_high: float = 1.25
    ratio_patience: int = 2
    #: ``policy/clipfrac_avg`` above ``clipfrac_max`` for ``clipfrac_patience`` steps in a row.
    clipfrac_max: float = 0.2
    clipfrac_patience: int = 5
    #: Mean length over the last ``length_window`` steps at least ``1 + length_growth`` times
    #: (and ``length_min_tokens`` more than) the mean over the first ``length_window`` steps,
    #: while the reward's mean over the same windows rose.
    length_window: int = 10
    length_growth: float = 0.5
    length_min_tokens: float = 2.0
    #: ``response/truncated_frac`` above ``truncated_max`` for ``truncated_patience`` steps in a row.
    truncated_max: float = 0.5
    truncated_patience: int = 3


@dataclass(frozen=True)
class HealthWarning:
    """One problem of a run: ``code`` (stable, see the module docstring), a short ``title``,
    the ``message`` for the user, the ``metric`` it is about, the ``step`` it started, the
    ``last_step`` it was seen and whether it is still ``active`` at the latest step."""

    code: str
    title: str
    message: str
    metric: str
    step: int
    last_step: int
    active: bool = True


class _Streak:
    """Counts consecutive points where a condition holds; remembers where the streak began."""

    __slots__ = ("length", "start")

    def __init__(self) -> None:
        self.length = 0
        self.start: Optional[int] = None

    def feed(self, holds: bool, step: int) -> None:
        if holds:
            if self.length == 0:
                self.start = step
            self.length += 1
        else:
            self.length, self.start = 0, None


class HealthMonitor:
    """Applies the rules to a :class:`MetricStore` as it grows (see the module docstring).

    Call :meth:`update` after feeding the store; it returns the warnings
    that are new or changed, and :attr:`warnings` holds all of them (one
    per code and metric), in the order they first fired.
    """

    def __init__(self, thresholds: HealthThresholds = HealthThresholds()):
        self.t = thresholds
        self.reset()

    def reset(self) -> None:
        self._done: dict[str, int] = {}  # series name -> points processed
        self._rewinds: dict[str, int] = {}
        self._streaks: dict[str, _Streak] = {}
        self._warnings: dict[tuple[str, str], HealthWarning] = {}
        self._length_sums: list[float] = [0.0]  # prefix sums of the length series
        self._reward_at: list[float] = []  # reward at each length point (NaN where missing)

    @property
    def warnings(self) -> list[HealthWarning]:
        return list(self._warnings.values())

    def update(self, store: MetricStore) -> list[HealthWarning]:
        """Check the points added since the last call; returns new or changed warnings."""
        if any(name in self._rewinds and store.series[name].rewinds != self._rewinds[name]
               for name in store.series):
            self.reset()  # a resumed run re-reported steps: judge the path it really took
        changed: dict[tuple[str, str], HealthWarning] = {}
        for name, series in list(store.series.items()):
            start = self._done.get(name, 0)
            if start >= len(series):
                continue
            steps = series.steps[start:].tolist()
            values = series.values[start:].tolist()
            self._check_finite(name, steps, values, changed)
            if name == KL or (name == KL_FALLBACK and KL not in store.series):
                self._streak_rule("kl_negative", name, steps, values, lambda v: v < -self.t.kl_tolerance,
                                  self.t.kl_patience, self._kl_warning, changed)
            elif name == RATIO:
                self._streak_rule("ratio_band", name, steps, values,
                                  lambda v: not self.t.ratio_low <= v <= self.t.ratio_high,
                                  self.t.ratio_patience, self._ratio_warning, changed)
            elif name == TRUNCATED:
                self._streak_rule("truncated_high", name, steps, values, lambda v: v > self.t.truncated_max,
                                  self.t.truncated_patience, self._truncated_warning, changed)
            elif name == CLIPFRAC:
                self._streak_rule("clipfrac_high", name, steps, values, lambda v: v > self.t.clipfrac_max,
                                  self.t.clipfrac_patience, self._clip_warning, changed)
            self._done[name] = len(series)
            self._rewinds[name] = series.rewinds
        self._check_length(store, changed)
        return list(changed.values())

    # -- rules ----------------------------------------------------------------------------------
    def _put(self, warning: HealthWarning, changed: dict) -> None:
        key = (warning.code, warning.metric)
        if self._warnings.get(key) != warning:
            self._warnings[key] = warning
            changed[key] = warning

    def _check_finite(self, name: str, steps: list, values: list, changed: dict) -> None:
        key = ("non_finite", name)
        for step, v in zip(steps, values):
            if not math.isfinite(v):
                old = self._warnings.get(key)
                if old is None:
                    what = "NaN" if math.isnan(v) else ("+inf" if v > 0 else "-inf")
                    self._put(HealthWarning(
                        "non_finite", f"{name} is {what}",
                        f"{name} became {what} at step {step}. Training has diverged (or a score or "
                        "loss overflowed); the weights after this step are not usable. Lower the "
                        "learning rate, clip gradients harder, check the reward model's scores, and "
                        "resume from the last checkpoint before this step.",
                        name, step, step), changed)
                elif old.last_step != step:
                    self._put(replace(old, last_step=step, active=True), changed)
            elif key in self._warnings and self._warnings[key].active:
                self._put(replace(self._warnings[key], active=False), changed)

    def _streak_rule(self, code: str, name: str, steps: list, values: list, bad, patience: int, make,
                     changed: dict) -> None:
        """Warn (``make(name, start, step, value)``) once ``bad(value)`` held ``patience`` steps
        in a row; mark the warning inactive when a step is fine again."""
        streak = self._streaks.setdefault(name, _Streak())
        key = (code, name)
        for step, v in zip(steps, values):
            if not math.isfinite(v):
                continue  # the non-finite rule speaks for these
            streak.feed(bad(v), step)
            old = self._warnings.get(key)
            if streak.length >= patience:
                if old is None:
                    self._put(make(name, streak.start, step, v), changed)
                elif not old.active or old.last_step != step:
                    self._put(replace(old, last_step=step, active=True), changed)
            elif old is not None and old.active and streak.length == 0:
                self._put(replace(old, active=False), changed)

    def _kl_warning(self, name: str, start: int, step: int, v: float) -> HealthWarning:
        return HealthWarning(
            "kl_negative", "KL is negative",
            f"The KL to the reference policy has been negative since step {start} (now {v:.3g}). "
            "A real KL cannot be; the policy's own samples look likelier to the reference than "
            "to the policy, which means responses are sampled differently from how they are "
            "scored (temperature, top-k/top-p, padding or position ids). Check the generation "
            "settings; objective/kl_k3 (never negative) shows the true distance.",
            name, start, step)

    def _ratio_warning(self, name: str, start: int, step: int, v: float) -> HealthWarning:
        return HealthWarning(
            "ratio_band", "Policy ratio out of band",
            f"The policy ratio (val/ratio) left the sane band [{self.t.ratio_low:g}, "
            f"{self.t.ratio_high:g}] at step {start} (now {v:.3g}): each update moves the policy "
            "much further than PPO's trust region allows. Lower the learning rate, use fewer PPO "
            "epochs per batch or larger minibatches.",
            name, start, step)

    def _truncated_warning(self, name: str, start: int, step: int, v: float) -> HealthWarning:
        return HealthWarning(
            "truncated_high", "Responses hit the length limit",
            f"Since step {start} more than {self.t.truncated_max:.0%} of responses ran into max_new_tokens "
            f"without an EOS (now {v:.0%}): the reward model mostly scores unfinished text, and PPO "
            "cannot learn to finish. Raise max_new_tokens if answers need the room, or penalize "
            "unfinished responses (missing_eos_penalty, or missing_eos_mode 'replace').",
            name, start, step)

    def _clip_warning(self, name: str, start: int, step: int, v: float) -> HealthWarning:
        return HealthWarning(
            "clipfrac_high", "Clip fraction stays high",
            f"More than {self.t.clipfrac_max:.0%} of tokens have been clipped every step since "
            f"step {start} (now {v:.0%}): the policy is pushed harder than the clip range allows, "
            "so most of each update is thrown away. Lower the learning rate or the PPO epochs.",
            name, start, step)

    def _check_length(self, store: MetricStore, changed: dict) -> None:
        length = store.series.get(LENGTH)
        reward = next((store.series[n] for n in REWARDS if n in store), None)
        if length is None or reward is None:
            return
        done = len(self._reward_at)
        if done >= len(length):
            return
        # Reward at each new length point (same step; NaN where the reward has none).
        new_steps = length.steps[done:]
        idx = reward.steps.searchsorted(new_steps)
        idx_c = idx.clip(0, len(reward) - 1)
        hit = (idx < len(reward)) & (reward.steps[idx_c] == new_steps)
        rew = [float(reward.values[i]) if h else math.nan for i, h in zip(idx_c.tolist(), hit.tolist())]
        w, t = self.t.length_window, self.t
        key = ("length_runaway", LENGTH)
        for j, (step, v) in enumerate(zip(new_steps.tolist(), length.values[done:].tolist())):
            self._length_sums.append(self._length_sums[-1] + (v if math.isfinite(v) else 0.0))
            self._reward_at.append(rew[j])
            n = len(self._reward_at)
            if n < 2 * w:
                continue
            base_len = self._length_sums[w] / w
            recent_len = (self._length_sums[n] - self._length_sums[n - w]) / w
            base_rew = _nanmean(self._reward_at[:w])
            recent_rew = _nanmean(self._reward_at[n - w:])
            runaway = (recent_len >= base_len * (1 + t.length_growth)
                       and recent_len - base_len >= t.length_min_tokens
                       and recent_rew > base_rew)
            old = self._warnings.get(key)
            if runaway and old is None:
                self._put(HealthWarning(
                    "length_runaway", "Reward rising with runaway length",
                    f"Since step {step} the reward keeps rising while responses grew from "
                    f"{base_len:.1f} to {recent_len:.1f} tokens on average: a sign of reward hacking "
                    "(the reward model prefers longer answers, not better ones). Compare a few "
                    "samples; consider a length penalty, a higher KL coefficient, or preference "
                    "pairs of equal length for the reward model.",
                    LENGTH, step, step), changed)
            elif old is not None and (runaway != old.active or (runaway and old.last_step != step)):
                self._put(replace(old, active=runaway, last_step=step if runaway else old.last_step),
                          changed)


def _nanmean(xs: list[float]) -> float:
    good = [x for x in xs if math.isfinite(x)]
    return sum(good) / len(good) if good else math.nan


def check_run(store: MetricStore, thresholds: HealthThresholds = HealthThresholds()) -> list[HealthWarning]:
    """Every warning the rules raise over a whole store (for a finished run, or tests)."""
    monitor = HealthMonitor(thresholds)
    monitor.update(store)
    return monitor.warnings
