"""Prompts, candidates, rankings: decisions persist and become lineage-carrying pairs."""

import pytest

from workbench.errors import WorkbenchError
from workbench.store import annotations as A
from workbench.store import datasets as R
from workbench.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


def _prompt_with_candidates(ws, texts=("best", "mid", "worst")):
    with ws.transaction() as c:
        pid = A.add_prompt(c, "Tell me about cats.", tags=["animals"])
        cids = [A.add_candidate(c, pid, t, model="tiny", params={"temperature": 0.7, "seed": i})
                for i, t in enumerate(texts)]
    return pid, cids


def test_ranking_round_trip_and_validation(ws):
    pid, (a, b, c) = _prompt_with_candidates(ws)
    with ws.transaction() as conn:
        rid = A.record_ranking(conn, pid, "ana", [[a], [b, c]], note="b and c equally vague",
                               flags=["off-topic"])
    (r,) = A.rankings(ws.conn, annotator="ana")
    assert r.id == rid and r.ordering == ((a,), tuple(sorted((b, c)))) and r.flags == ("off-topic",)
    assert A.candidates_for(ws.conn, pid)[0].params == {"seed": 0, "temperature": 0.7}
    with pytest.raises(WorkbenchError, match="twice"):
        with ws.transaction() as conn:
            A.record_ranking(conn, pid, "ana", [[a], [a]])
    other, (x, *_rest) = _prompt_with_candidates(ws)
    with pytest.raises(WorkbenchError, match="do not belong"):
        with ws.transaction() as conn:
            A.record_ranking(conn, pid, "ana", [[a], [x]])
    assert len(A.rankings(ws.conn)) == 1


def test_rankings_expand_to_pairs_with_lineage(ws):
    pid, (a, b, c) = _prompt_with_candidates(ws)
    pid2, (d, e) = _prompt_with_candidates(ws, ("x", "y"))
    with ws.transaction() as conn:
        r1 = A.record_ranking(conn, pid, "ana", [[a], [b], [c]])
        A.record_ranking(conn, pid2, "ana", [[d, e]])               # a tie: no pair
        A.record_ranking(conn, pid2, "bo", [[d], [e]], all_bad=True)  # all bad: left out
    with ws.transaction() as conn:
        n = A.rankings_to_dataset(conn, "prefs")
    assert n == 3
    info = R.get_dataset(ws.conn, "prefs")
    recs = list(R.iter_records(ws.conn, info))
    assert {(r.chosen, r.rejected) for r in recs} == {("best", "mid"), ("best", "worst"), ("mid", "worst")}
    assert all(r.lineage.ranking_id == r1 for r in recs)
    with ws.transaction() as conn:
        assert A.rankings_to_dataset(conn, "with_ties", ties="both", include_all_bad=True) == 3 + 2 + 1


def test_demonstration_from_edited_candidate(ws):
    pid, (a, *_rest) = _prompt_with_candidates(ws)
    with ws.transaction() as conn:
        rid = A.add_demonstration(conn, "demos", "Tell me about cats.", "Cats are small felines.",
                                  candidate_id=a)
    info = R.get_dataset(ws.conn, "demos")
    rec = R.get_record(ws.conn, info, rid)
    assert info.kind == "sft" and rec.completion == "Cats are small felines."
    assert rec.lineage.candidate_id == a


def test_committed_ranking_survives_kill(tmp_path):
    """A decision committed by a process that is then SIGKILLed is on disk."""
    import subprocess
    import sys
    import textwrap

    root = tmp_path / "ws"
    Workspace.init(root).close()
    script = textwrap.dedent(f"""
        import os, signal
        from workbench.store.workspace import Workspace
        from workbench.store import annotations as A
        ws = Workspace.open({str(root)!r})
        for i in range(5):
            with ws.transaction() as c:
                pid = A.add_prompt(c, f"p{{i}}")
                a = A.add_candidate(c, pid, "a"); b = A.add_candidate(c, pid, "b")
            with ws.transaction() as c:
                A.record_ranking(c, pid, "ana", [[a], [b]])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == -9
    ws = Workspace.open(root)
    assert ws.integrity_check() == "ok"
    assert len(A.rankings(ws.conn, annotator="ana")) == 5


def test_deleting_a_ranking_keeps_its_self_consistency_repeat(tmp_path):
    """Undo deletes a ranking; a later repeat of it stays, unlinked (ON DELETE SET NULL)."""
    from workbench.store import annotations as A
    from workbench.store.workspace import Workspace

    with Workspace.init(tmp_path / "ws") as ws:
        with ws.transaction() as c:
            p = A.add_prompt(c, [{"role": "user", "content": "q"}])
            a, b = A.add_candidate(c, p, "x"), A.add_candidate(c, p, "y")
            first = A.record_ranking(c, p, "me", [[a], [b]])
            repeat = A.record_ranking(c, p, "me", [[b], [a]])
            c.execute("UPDATE rankings SET repeat_of = ? WHERE id = ?", (first, repeat))
        with ws.transaction() as c:
            A.delete_ranking(c, first)
        assert ws.conn.execute("SELECT id, repeat_of FROM rankings").fetchall() == [(repeat, None)]
