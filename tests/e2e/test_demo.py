"""The demo end to end (:mod:`workbench.train.demo`): tiny model, SFT job, scripted rankings,
reward-model job and PPO job through the real Supervisor, on the CPU.

The demo runs once per module at the :data:`~workbench.train.demo.QUICK` sizes
(about a minute on 2 cores); the tests then check what it reports and what it
left in the workspace. The scripted annotator's preference is known, so the
checks compare against the truth: held-out reward accuracy, the PPO score
curve, and the annotator's own score of the PPO samples.
"""

from __future__ import annotations

import math
import time

import pytest

from workbench.train import demo_task as task
from workbench.train.demo import ANNOTATOR, PAIRS_DATASET, QUEUE_NAME, QUICK, SFT_DATASET, preference_score

#: Jobs inherit this process's environment. One thread per job: the tiny models gain
#: little from a second one, and lose a lot when anything else holds the other core.
JOB_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
#: Every word and mark of the demo's language: decoded model text must be made of these.
LANGUAGE = {w for line in task.corpus() for w in line.replace(".", " . ").replace("?", " ? ").split()}


def readable(text: str) -> bool:
    """Whole words of the language, one space apart, marks right after a word."""
    spaced = text.replace(".", " .").replace("?", " ?").replace("!", " !").replace(",", " ,")
    return ("  " not in text and "\ufffd" not in text and text == text.strip()
            and set(spaced.split()) <= LANGUAGE | {"!", ","})


# -- the demo end to end (slow) ----------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``(result, progress calls as (time, fraction, message), workspace)`` of one QUICK demo."""
    from workbench.train.demo import run_demo

    ws = tmp_path_factory.mktemp("demo") / "ws"
    calls: list[tuple[float, float, str]] = []
    with pytest.MonkeyPatch.context() as mp:
        for key, value in JOB_ENV.items():
            mp.setenv(key, value)
        result = run_demo(ws, seed=0, sizes=QUICK,
                          progress=lambda f, m: calls.append((time.time(), f, m)))
    print(f"\ndemo: held-out RM accuracy {result['rm_accuracy']:.3f}, "
          f"PPO score {result['ppo_score_first']:.2f} -> {result['ppo_score_last']:.2f}, "
          f"true score {result['true_score_first']:.2f} -> {result['true_score_last']:.2f}, "
          f"KL {result['kl_last']:.2f}, {result['compare']}, {result['timing']['total_s']:.0f} s "
          f"({', '.join(f'{k} {v:.0f}' for k, v in result['timing'].items())})")
    return result, calls, ws


@pytest.mark.slow
def test_the_reward_model_learns_the_hidden_preference(demo):
    result, _, _ = demo
    assert result["rm_accuracy"] >= 0.8
    assert result["pairs_validation"] > 50 and result["pairs_train"] > 500
    # Ties give no pair (some are expected), and the chosen response is not mostly the longer one.
    assert 0.05 < result["ties"] < 0.4
    assert 0.35 < result["chosen_longer"] < 0.65
    assert -0.6 < result["rm_length_corr"] < 0.6


@pytest.mark.slow
def test_ppo_raises_the_score_and_the_true_preference(demo):
    result, _, _ = demo
    assert result["ppo_steps"] == QUICK.ppo_steps
    assert result["ppo_score_last"] >= result["ppo_score_first"] + 0.75, result
    # The annotator agrees: the policy says more good (and fewer bad or garbled) sentences.
    assert result["true_score_last"] >= result["true_score_first"] + 0.5, result


@pytest.mark.slow
def test_blind_comparison_on_held_out_prompts_prefers_ppo(demo):
    """PPO's samples beat SFT's on prompts no ranking or PPO step saw, as the annotator judges
    them: the lower end of the 95% interval is above a coin flip."""
    result, _, _ = demo
    assert result["compare_n"] == len(task.held_out_prompts()) * QUICK.compare_samples
    assert result["ppo_win_low"] > 0.5 and result["ppo_win_rate"] > result["ppo_win_low"], result["compare"]
    assert result["ppo_heldout_score"] > result["sft_heldout_score"]
    assert [e["prompt"] for e in result["examples"]] == task.held_out_prompts()


@pytest.mark.slow
def test_what_the_models_write_is_whole_words(demo):
    """No glued words, no half characters: every SFT candidate, PPO sample and comparison
    sample decodes into words of the demo's language."""
    from workbench.jobs.events import SamplesEvent, read_events
    from workbench.store import annotations as A
    from workbench.store.workspace import Workspace

    result, _, ws_root = demo
    texts = [t for e in result["examples"] for t in (e["sft"], e["ppo"])]
    texts += [r["response"] for e in read_events(result["runs"]["ppo"] / "events.jsonl")
              if isinstance(e, SamplesEvent) for r in e.rows]
    with Workspace.open(ws_root) as ws:
        for ranking in A.rankings(ws.conn, annotator=ANNOTATOR):
            texts += [c.response[-1]["content"] for c in A.candidates_for(ws.conn, ranking.prompt_id)]
    bad = [t for t in texts if t and not readable(t)]
    assert not bad, bad[:5]


@pytest.mark.slow
def test_kl_stays_finite_and_bounded(demo):
    result, _, _ = demo
    assert math.isfinite(result["kl_last"]) and -0.5 < result["kl_last"] < 10
    assert math.isfinite(result["kl_k3_last"]) and 0 <= result["kl_k3_last"] < 10
    assert 0 < result["length_last"] <= QUICK.max_new_tokens


@pytest.mark.slow
def test_every_event_of_every_run_parses_and_every_run_completed(demo):
    from workbench.jobs.events import FinishedEvent, StartedEvent, decode
    from workbench.jobs.supervisor import Supervisor

    result, _, ws = demo
    runs = result["runs"]
    assert set(runs) == {"sft", "reward", "ppo"}
    for stage, path in runs.items():
        lines = (path / "events.jsonl").read_bytes().splitlines()
        events = [decode(line) for line in lines]  # raises on any line that does not parse
        assert isinstance(events[0], StartedEvent) and events[0].stage == stage
        assert isinstance(events[-1], FinishedEvent) and events[-1].status == "completed"
    infos = Supervisor(ws).list_runs()
    assert sorted(i.path for i in infos) == sorted(runs.values())
    assert all(i.status == "completed" and not i.alive for i in infos)


@pytest.mark.slow
def test_ppo_events_were_seen_while_the_job_ran(demo):
    """The demo tails each job as it runs, as the GUI does: PPO steps reached the progress
    callback before the job wrote its ``finished`` event."""
    from workbench.jobs.events import FinishedEvent, read_events

    result, calls, _ = demo
    assert result["live_metrics"]["ppo"] > 0 and result["live_metrics"]["sft"] > 0
    finished = [e for e in read_events(result["runs"]["ppo"] / "events.jsonl") if isinstance(e, FinishedEvent)]
    ppo_steps = [t for t, _, m in calls if m.startswith("PPO: step ")]
    assert len(ppo_steps) == QUICK.ppo_steps
    assert min(ppo_steps) < finished[-1].time
    fractions = [f for _, f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.slow
def test_the_workspace_holds_the_loop_with_lineage(demo):
    from workbench.store import annotations as A, datasets as D
    from workbench.store.workspace import Workspace

    result, _, ws_root = demo
    with Workspace.open(ws_root) as ws:
        info = ws.info()
        assert info.prompts == len(task.prompts())
        assert info.candidates == len(task.prompts()) * QUICK.candidates_per_prompt == result["candidates"]
        rankings = A.rankings(ws.conn, annotator=ANNOTATOR)
        assert len(rankings) == info.prompts
        sft = D.get_dataset(ws.conn, SFT_DATASET)
        assert (sft.kind, sft.style, sft.rows) == ("sft", "conversational", QUICK.sft_examples)
        pairs = D.get_dataset(ws.conn, PAIRS_DATASET)
        assert (pairs.kind, pairs.style, pairs.rows) == ("preference", "conversational", result["pairs"])
        assert pairs.validation == result["pairs_validation"] and pairs.snapshots  # the RM run froze it
        ranking_ids = {r.id for r in rankings}
        for rec in D.iter_records(ws.conn, pairs):
            assert rec.lineage.ranking_id in ranking_ids
            prompt = rec.prompt[-1]["content"]
            assert preference_score(rec.chosen[-1]["content"], prompt) > preference_score(rec.rejected[-1]["content"],
                                                                                           prompt)
        # Candidates remember the checkpoint that sampled them.
        cand = A.candidates_for(ws.conn, rankings[0].prompt_id)[0]
        assert (ws_root / cand.checkpoint).resolve() == result["sft_model"]


@pytest.mark.slow
def test_the_rank_page_has_an_item_at_once(demo):
    """The seed's ranking queue is for the person at the keyboard (the login name, as the Rank
    page suggests), over the demo prompts, which only the script has ranked: its first item is
    ready, with candidates to rank."""
    import getpass

    from workbench.store import annotations as A, queue as Q
    from workbench.store.workspace import Workspace

    result, _, ws_root = demo
    with Workspace.open(ws_root) as ws:
        [info] = Q.list_queues(ws.conn)  # the one the Rank page opens (most recently used first)
        assert info.id == result["queue_id"] and info.spec.name == QUEUE_NAME
        assert info.spec.annotator == getpass.getuser() != ANNOTATOR
        assert (info.spec.mode, info.spec.source) == ("pairwise", Q.PromptSource("tag", "demo"))
        queue = Q.RankingQueue(ws.conn, info.id)
        item = queue.current
        assert item is not None and len(item.candidates) == 2 and item.tier == "shared"
        assert item.prompt_id in {r.prompt_id for r in A.rankings(ws.conn, annotator=ANNOTATOR)}


@pytest.mark.slow
def test_a_second_demo_in_the_same_workspace_is_refused(demo):
    from workbench.errors import WorkbenchError
    from workbench.train.demo import build_demo

    _, _, ws_root = demo
    runs_before = sorted(p.name for p in (ws_root / "runs").iterdir())
    with pytest.raises(WorkbenchError, match="already holds a demo"):
        build_demo(ws_root, sizes=QUICK)
    assert sorted(p.name for p in (ws_root / "runs").iterdir()) == runs_before


@pytest.mark.slow
def test_cancel_stops_the_running_job(tmp_path, monkeypatch):
    """A cancel token set while the SFT job trains cancels the job and raises ``Cancelled``."""
    from workbench.errors import Cancelled
    from workbench.jobs.supervisor import Supervisor
    from workbench.progress import CancelToken
    from workbench.train.demo import build_demo

    for key, value in JOB_ENV.items():
        monkeypatch.setenv(key, value)
    token = CancelToken()

    def progress(fraction, message):
        if message.startswith("SFT: step"):
            token.cancel()

    with pytest.raises(Cancelled, match="sft job"):
        build_demo(tmp_path / "ws", sizes=QUICK, progress=progress, cancel=token)
    [info] = Supervisor(tmp_path / "ws").list_runs()
    assert info.stage == "sft" and info.status == "cancelled" and not info.alive


@pytest.mark.slow
def test_cli_demo_command_is_wired_and_refuses_a_second_demo(demo):
    """`rlhf-workbench demo` reaches the same code: on a workspace that already holds the
    demo it fails at once with one line, before any job starts."""
    import os
    import subprocess
    import sys

    _, _, ws = demo
    runs_before = sorted(p.name for p in (ws / "runs").iterdir())
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "demo", "--workspace", str(ws), "--json"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **JOB_ENV})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in (ws / "runs").iterdir()) == runs_before
