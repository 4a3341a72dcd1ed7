"""The generate stage on a tiny local model: through the real job process, cancel and resume."""

import shutil

import pytest

from workbench.jobs.events import MetricEvent, SamplesEvent, read_events
from workbench.store import annotations as A
from workbench.store import datasets as D
from workbench.store import queue as Q
from workbench.store.records import Record
from workbench.store.workspace import Workspace


@pytest.fixture
def gen_ws(tmp_path, gen_model):
    root = tmp_path / "ws"
    with Workspace.init(root) as ws:
        shutil.copytree(gen_model, ws.models_dir / "tiny")
        with ws.transaction() as c:
            d = D.create_dataset(c, "asks", "prompts", "standard")
            for topic in ("river", "garden", "music"):
                D.add_record(c, d, Record(prompt=f"Tell me about {topic}."))
            d = D.create_dataset(c, "chats", "sft", "conversational")
            D.add_record(c, d, Record(messages=[{"role": "user", "content": "Tell me about coffee."},
                                                {"role": "assistant", "content": "warm bright"}]))
    return root


def test_generation_job_streams_candidates_into_the_queue(gen_ws):
    """N candidates per prompt from each model of a comparison, through the real job process."""
    from workbench.jobs.supervisor import Supervisor

    sup = Supervisor(gen_ws)
    handle = sup.start("generate", {"model": "./models/tiny", "model_b": "./models/tiny",
                                    "prompt_dataset": "asks", "n": 3, "max_new_tokens": 8, "temperature": 1.0,
                                    "batch_size": 2, "seed": 5, "device": "cpu"})
    info = handle.wait(timeout=180)
    assert info.status == "completed", (info.error, (handle.path / "stderr.log").read_text()[-2000:])
    events = read_events(handle.path / "events.jsonl")
    progress = [e.values["generate/progress"] for e in events if isinstance(e, MetricEvent)]
    assert progress == [0.25, 0.5, 0.75, 1.0]          # 2 batches x 2 models
    assert any(isinstance(e, SamplesEvent) and e.rows for e in events)
    with Workspace.open(gen_ws) as ws:
        prompts = ws.conn.execute("SELECT id, prompt, tags, record_id FROM prompts ORDER BY id").fetchall()
        assert [p[1] for p in prompts] == ["Tell me about river.", "Tell me about garden.", "Tell me about music."]
        assert all(p[2] == '["asks"]' and p[3] is not None for p in prompts)
        arms = Q.generation_arms(ws.conn, handle.run_id)
        for pid, *_ in prompts:
            cands = A.candidates_for(ws.conn, pid)
            assert len(cands) == 6 and all(c.model == "./models/tiny" for c in cands)
            assert all(c.params["max_new_tokens"] == 8 and c.params["seed"] == 5 for c in cands)
            by_arm = {arm: [c.response for c in cands if c.params["arm"] == arm] for arm in ("a", "b")}
            # Same model, same per-batch seeds: arm B draws exactly what arm A drew.
            assert by_arm["a"] == by_arm["b"] and all(isinstance(r, str) for r in by_arm["a"])
        # A blind comparison queue over this run sees every prompt.
        with ws.transaction() as c:
            qid = Q.create_queue(c, Q.QueueSpec(annotator="ana", compare=Q.CompareArms(run_id=handle.run_id)))
        q = Q.RankingQueue(ws.conn, qid)
        assert q.upcoming(5) == [p[0] for p in prompts] and set(arms) == {"a", "b"}


def test_cancel_at_a_batch_boundary_then_resume(gen_ws):
    """A cancel stops after the batch in progress (committed batches stay); a rerun answers the rest once.

    The recipe runs in this process with a real job context; the cancel is the real control file,
    requested from the first metric event."""
    from workbench.generate import recipe
    from workbench.jobs.events import EventWriter
    from workbench.jobs.rundir import new_run_dir, request_cancel
    from workbench.jobs.run import JobContext, StopRequested

    config = {"model": "./models/tiny", "prompts": [f"Tell me about {w}." for w in
                                                    ("river", "city", "book", "ocean", "bridge")],
              "tag": "five", "n": 2, "max_new_tokens": 6, "batch_size": 1, "device": "cpu"}
    rd = new_run_dir(gen_ws / "runs", "generate", config)

    class CancelAfterFirstBatch(JobContext):
        def metric(self, step, values=None, /, **named):
            super().metric(step, values, **named)
            request_cancel(self.run_dir)

    with EventWriter(rd.events) as writer:
        with pytest.raises(StopRequested):
            recipe.run(CancelAfterFirstBatch(rd, dict(config), stage="generate", writer=writer))
    with Workspace.open(gen_ws) as ws:
        first = ws.conn.execute("SELECT p.prompt, c.response FROM candidates c JOIN prompts p ON p.id = c.prompt_id"
                                " ORDER BY c.id").fetchall()
    assert [p for p, _ in first] == ["Tell me about river."] * 2
    rd.path.joinpath("control", "cancel").unlink()
    with EventWriter(rd.events) as writer:
        recipe.run(JobContext(rd, dict(config), stage="generate", writer=writer))
    with Workspace.open(gen_ws) as ws:
        rows = ws.conn.execute("SELECT p.prompt, c.response FROM candidates c JOIN prompts p ON p.id = c.prompt_id"
                               " ORDER BY c.id").fetchall()
        assert rows[:2] == first and len(rows) == 10
        assert ws.conn.execute("SELECT count(*) FROM prompts").fetchone()[0] == 5
        assert len(Q.generation_arms(ws.conn, rd.run_id)["a"]) == 1


def test_chat_prompts_get_chat_responses(gen_ws):
    """Conversational prompts (from an SFT dataset) go through the chat template and give assistant
    messages (the recipe in this process: the job process path is the first test's)."""
    from workbench.generate import recipe
    from workbench.jobs.events import EventWriter
    from workbench.jobs.rundir import new_run_dir
    from workbench.jobs.run import JobContext

    config = {"model": "./models/tiny", "prompt_dataset": "chats", "n": 2, "max_new_tokens": 6, "device": "cpu"}
    rd = new_run_dir(gen_ws / "runs", "generate", config)
    with EventWriter(rd.events) as writer:
        recipe.run(JobContext(rd, dict(config), stage="generate", writer=writer))
    with Workspace.open(gen_ws) as ws:
        (pid,) = [p for (p,) in ws.conn.execute("SELECT id FROM prompts")]
        assert A.get_prompt(ws.conn, pid).prompt == [{"role": "user", "content": "Tell me about coffee."}]
        cands = A.candidates_for(ws.conn, pid)
        assert len(cands) == 2 and all(c.response[0]["role"] == "assistant" for c in cands)
        assert all(isinstance(c.response[0]["content"], str) for c in cands)
