"""The job callback with a real TrainerControl and TrainerState, the reward evaluation maths,
and turning workspace records into trainer rows."""

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from workbench.errors import WorkbenchError
from workbench.jobs.events import CheckpointEvent, MetricEvent, WarningEvent, read_events
from workbench.jobs.rundir import list_checkpoints, new_run_dir, request_cancel
from workbench.jobs.events import EventWriter
from workbench.jobs.run import JobContext
from workbench.store.records import Record


@pytest.fixture
def job(tmp_path):
    """A JobContext on a real run dir, and a function returning the events written so far."""
    rd = new_run_dir(tmp_path / "runs", "sft", {})
    with EventWriter(rd.events) as writer:
        yield JobContext(rd, {}, stage="sft", writer=writer), lambda: read_events(rd.events)


class FakeTrainer:
    """Records what the callback saves; the real save path runs in the end-to-end tests."""

    def __init__(self):
        from transformers import TrainerState

        self.state = TrainerState()
        self.optimizer = object()
        self.saved = []

    def save_model(self, folder):
        self.saved.append(folder)
        (Path(folder) / "model.safetensors").write_bytes(b"w")

    def _save_optimizer_and_scheduler(self, folder):
        (Path(folder) / "optimizer.pt").write_bytes(b"o")

    def _save_scaler(self, folder):
        pass

    def _save_rng_state(self, folder):
        (Path(folder) / "rng_state.pth").write_bytes(b"r")


def step(cb, trainer, control, n, logs):
    """One optimizer step as the HF loop calls the callback: step end, then the log if asked."""
    trainer.state.global_step = n
    cb.on_step_end(None, trainer.state, control)
    if control.should_log or logs:
        cb.on_log(None, trainer.state, control, logs=logs)


def test_logs_become_metrics_with_the_trainer_names(job):
    from transformers import TrainerControl

    from workbench.train.callbacks import JobCallback

    ctx, events = job
    trainer, control = FakeTrainer(), TrainerControl()
    cb = JobCallback(ctx).bind(trainer)
    step(cb, trainer, control, 1, {"loss": 2.5, "grad_norm": 1.0, "rewards/margins": 0.25, "epoch": 0.1,
                                   "note": "text is dropped", "flag": True})
    [metric] = events()
    assert isinstance(metric, MetricEvent) and metric.step == 1
    assert metric.values == {"loss": 2.5, "grad_norm": 1.0, "rewards/margins": 0.25, "epoch": 0.1}
    assert not control.should_training_stop and cb.diverged is None


@pytest.mark.parametrize("logs", [{"loss": math.nan, "grad_norm": 1.0}, {"loss": 1.0, "grad_norm": math.inf}])
def test_a_non_finite_loss_or_grad_norm_stops_without_saving(job, logs):
    from transformers import TrainerControl

    from workbench.train.callbacks import JobCallback

    ctx, events = job
    trainer, control = FakeTrainer(), TrainerControl()
    cb = JobCallback(ctx, save_steps=2).bind(trainer)
    step(cb, trainer, control, 1, {"loss": 3.0, "grad_norm": 1.0})
    step(cb, trainer, control, 2, logs)  # a save step: the diverged weights must not be saved
    assert control.should_training_stop
    kinds = [type(e) for e in events()]
    assert kinds == [MetricEvent, MetricEvent, WarningEvent]
    warning = events()[-1]
    assert warning.code == "nan_loss" and warning.step == 2 and "diverged at step 2" in warning.message
    assert cb.diverged == warning.message and list_checkpoints(ctx.run_dir) == []
    cb.on_train_end(None, trainer.state, control)
    assert list_checkpoints(ctx.run_dir) == []


def test_save_steps_and_cancel_save_after_the_steps_log(job):
    from transformers import TrainerControl

    from workbench.train.callbacks import JobCallback

    ctx, events = job
    trainer, control = FakeTrainer(), TrainerControl()
    cb = JobCallback(ctx, save_steps=2, manifest={"stage": "sft"}).bind(trainer)
    step(cb, trainer, control, 1, {})
    assert not control.should_log and list_checkpoints(ctx.run_dir) == []
    control = TrainerControl()
    trainer.state.global_step = 2
    cb.on_step_end(None, trainer.state, control)
    assert control.should_log and list_checkpoints(ctx.run_dir) == []  # waits for the loss
    cb.on_log(None, trainer.state, control, logs={"loss": 1.0})
    assert [s for s, _ in list_checkpoints(ctx.run_dir)] == [2]
    request_cancel(ctx.run_dir)
    control = TrainerControl()
    step(cb, trainer, control, 3, {"loss": 0.9})
    assert control.should_training_stop and cb.cancelled_at == 3
    assert [s for s, _ in list_checkpoints(ctx.run_dir)] == [2, 3]
    folder = list_checkpoints(ctx.run_dir)[-1][1]
    assert {"COMPLETE", "model.safetensors", "optimizer.pt", "rng_state.pth", "trainer_state.json",
            "workbench.json"} <= {p.name for p in folder.iterdir()}
    assert [e.step for e in events() if isinstance(e, CheckpointEvent)] == [2, 3]


def test_pearson():
    from workbench.train.reward import pearson

    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert pearson([1, 1, 1], [1, 2, 3]) is None and pearson([1], [2]) is None


def test_reward_eval_metrics_on_a_model_that_rewards_length():
    import torch

    from workbench.train.reward import reward_eval

    class LengthModel(torch.nn.Module):
        """Reward = number of real tokens: the worst length bias there is."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask, use_cache=False):
            return SimpleNamespace(logits=attention_mask.sum(-1, keepdim=True).float() + self.w)

    def collate(rows):
        seqs = [r["chosen_ids"] for r in rows] + [r["rejected_ids"] for r in rows]
        width = max(map(len, seqs))
        return {"input_ids": torch.tensor([s + [0] * (width - len(s)) for s in seqs]),
                "attention_mask": torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])}

    prompt = [7, 7, 7]
    pairs = [([5] * 4, [6] * 2), ([5] * 1, [6] * 3), ([5] * 5, [6] * 1)]  # chosen longer in 2 of 3
    data = [{"chosen_ids": prompt + c, "rejected_ids": prompt + r} for c, r in pairs]
    model = LengthModel().train()
    values = reward_eval(model, data, collate, batch_size=2)
    assert model.training  # left as it was found
    assert values["eval/accuracy"] == pytest.approx(2 / 3)
    assert values["eval/margin"] == pytest.approx((2 - 2 + 4) / 3)
    rewards = torch.tensor([7.0, 4, 8, 5, 6, 4])
    assert values["eval/reward_mean"] == pytest.approx(rewards.mean().item())
    assert values["eval/reward_std"] == pytest.approx(rewards.std(unbiased=False).item())
    assert values["eval/length_corr"] == pytest.approx(1.0)
    assert values["eval/loss"] > 0


def test_rows_from_records_split_and_shape():
    from workbench.train.data import build_rows

    recs = [Record(id=1, messages=[{"role": "user", "content": "hi"}], split="train"),
            Record(id=2, messages=[{"role": "user", "content": "yo"}], split="validation"),
            Record(id=3, messages=[{"role": "user", "content": "no split"}])]
    train, val = build_rows(recs, "sft")
    assert [r["messages"][0]["content"] for r in train] == ["hi", "no split"]
    assert val == [{"messages": [{"role": "user", "content": "yo"}]}]
    train, val = build_rows(recs, "sft", use_validation=False)
    assert len(train) == 3 and val == []
    pairs = [Record(id=4, prompt="p", chosen="a", rejected="b", score_chosen=1.0)]
    assert build_rows(pairs, "preference") == ([{"prompt": "p", "chosen": "a", "rejected": "b"}], [])
    with pytest.raises(WorkbenchError, match="record #5 has fields prompt, completion but earlier records "
                                             "have messages"):
        build_rows(recs + [Record(id=5, prompt="p", completion="c")], "sft")
