"""The ranking queue: order, resume, decisions, undo/redo, skips, repeats, comparisons, progress."""

import json

import pytest

from workbench.errors import WorkbenchError
from workbench.store import annotations as A
from workbench.store import datasets as D
from workbench.store import queue as Q
from workbench.store.records import Record
from workbench.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


def _prompts(ws, n, k=2, tags=("set1",), start=0):
    """``n`` prompts with ``k`` candidates each; returns {prompt id: [candidate ids]}."""
    out = {}
    with ws.transaction() as c:
        for i in range(start, start + n):
            pid = A.add_prompt(c, f"Tell me about topic {i}.", tags=tags)
            out[pid] = [A.add_candidate(c, pid, f"answer {i}.{j}", model=f"m{j}") for j in range(k)]
    return out


def _queue(ws, **kw):
    spec = Q.QueueSpec(**{"annotator": "ana", "repeat_every": 0, **kw})
    with ws.transaction() as c:
        qid = Q.create_queue(c, spec)
    return Q.RankingQueue(ws.conn, qid)


def test_order_fresh_then_shared_then_skipped_and_resume(ws):
    cands = _prompts(ws, 6)
    pids = sorted(cands)
    # Someone else ranked the 2nd prompt: it is "shared" and comes after every fresh one.
    with ws.transaction() as c:
        A.record_ranking(c, pids[1], "bo", [[cands[pids[1]][0]], [cands[pids[1]][1]]])
    q = _queue(ws)
    assert q.upcoming(10) == [pids[0], pids[2], pids[3], pids[4], pids[5], pids[1]]
    assert q.current.tier == "fresh"
    q.choose(0)
    q.skip()                      # pids[2] goes to the back
    q.tie()
    assert q.current.prompt_id == pids[4]
    # A new queue object over the same workspace (a restart) resumes exactly here.
    again = Q.RankingQueue(ws.conn, q.id)
    assert again.upcoming(10) == [pids[4], pids[5], pids[1], pids[2]]
    assert [it for it in (again.current.tier,)] == ["fresh"]
    rows = A.rankings(ws.conn, annotator="ana")
    assert [r.prompt_id for r in rows] == [pids[0], pids[3]]
    assert ws.conn.execute("SELECT queue_id, shown FROM rankings WHERE annotator='ana' ORDER BY id").fetchall()[0] \
        == (q.id, json.dumps(list(q.build_item(pids[0]).shown)))


def test_positions_are_randomized_deterministically(ws):
    cands = _prompts(ws, 40, k=3)
    q = _queue(ws)
    items = [q.build_item(pid) for pid in sorted(cands)]
    assert all(len(it.candidates) == 2 for it in items)                # pairwise: two of three
    again = Q.RankingQueue(ws.conn, q.id)
    assert [it.shown for it in items] == [again.build_item(pid).shown for pid in sorted(cands)]
    left_is_lower = sum(it.shown[0] < it.shown[1] for it in items)
    assert 8 <= left_is_lower <= 32                                     # both orders occur
    other = _queue(ws, seed=7)
    assert [it.shown for it in items] != [other.build_item(pid).shown for pid in sorted(cands)]


def test_decision_validation_and_kwise(ws):
    cands = _prompts(ws, 3, k=5)
    q = _queue(ws, mode="kwise", k=4)
    item = q.current
    assert len(item.candidates) == 4 and set(item.shown) <= set(cands[item.prompt_id])
    with pytest.raises(WorkbenchError, match="every candidate shown"):
        q.decide([[item.shown[0]], [item.shown[1]]])
    with pytest.raises(WorkbenchError, match="unknown flags"):
        q.decide([[c] for c in item.shown], flags=["rude"])
    d = q.decide([[item.shown[2]], [item.shown[0], item.shown[1]], [item.shown[3]]], note=" too long ",
                 flags=["off-topic"])
    (r,) = A.rankings(ws.conn, annotator="ana")
    assert r.ordering == ((item.shown[2],), tuple(sorted(item.shown[:2])), (item.shown[3],))
    assert r.note == "too long" and r.flags == ("off-topic",) and d.ranking_id == r.id
    with pytest.raises(WorkbenchError):
        Q.QueueSpec(annotator="ana", mode="kwise", k=6).validated()
    with pytest.raises(WorkbenchError, match="annotator"):
        Q.QueueSpec(annotator="  ").validated()


def test_undo_redo_and_skip_undo(ws):
    cands = _prompts(ws, 4)
    pids = sorted(cands)
    q = _queue(ws)
    d1 = q.choose(1)
    d2 = q.skip()
    assert q.current.prompt_id == pids[2]
    q.undo(d2)
    assert q.current.prompt_id == pids[1]
    assert ws.conn.execute("SELECT count(*) FROM queue_skips").fetchone()[0] == 0
    q.undo(d1)
    assert q.current.prompt_id == pids[0] and A.rankings(ws.conn) == []
    assert q.upcoming(4) == pids                                        # the same order as before
    q.redo(d1)
    assert q.current.prompt_id == pids[1] and len(A.rankings(ws.conn)) == 1
    assert A.rankings(ws.conn)[0].ordering[0] == (q.build_item(pids[0]).shown[1],)
    # A decision already exported into a dataset cannot be undone.
    with ws.transaction() as c:
        A.rankings_to_dataset(c, "prefs")
    with pytest.raises(WorkbenchError, match="exported"):
        q.undo(d1)
    assert len(A.rankings(ws.conn)) == 1


def test_skipped_only_item_comes_back(ws):
    _prompts(ws, 1)
    q = _queue(ws)
    first = q.current.prompt_id
    q.skip()
    assert q.current.prompt_id == first and q.current.tier == "skipped"
    q.skip()
    assert q.current.prompt_id == first
    q.choose(0)
    assert q.current is None
    assert q.progress() == Q.QueueProgress(done=1, remaining=0, skipped=0, repeats=0,
                                           rate_per_hour=None)


def test_repeats_show_an_old_item_with_positions_swapped(ws):
    _prompts(ws, 10)
    q = _queue(ws, repeat_every=3)
    decided = [q.choose(0) for _ in range(3)]
    assert q.current.tier == "fresh"          # due, but the last three decisions are too recent
    decided.append(q.choose(1))
    rep = q.current
    assert rep.tier == "repeat" and rep.repeat_of == decided[0].ranking_id
    assert rep.shown == tuple(reversed(decided[0].item.shown))
    # A restart shows the same repeat.
    assert Q.RankingQueue(ws.conn, q.id).current == rep
    d = q.choose(1)   # the right one now is the left one before: a consistent annotator
    row = ws.conn.execute("SELECT repeat_of, shown FROM rankings WHERE id = ?", (d.ranking_id,)).fetchone()
    assert row == (decided[0].ranking_id, json.dumps(list(rep.shown)))
    assert q.current.tier == "fresh"
    assert q.progress().repeats == 1 and q.progress().done == 4
    q.undo(d)
    assert q.current == rep
    # Repeats are left out of exported pairs.
    q.choose(1)
    with ws.transaction() as c:
        assert A.rankings_to_dataset(c, "prefs") == 4


def test_prefer_edited_adds_a_preferred_candidate(ws):
    _prompts(ws, 2)
    q = _queue(ws)
    item = q.current
    with pytest.raises(WorkbenchError, match="empty"):
        q.prefer_edited("  ", item.shown[0])
    d = q.prefer_edited("A better answer.", item.shown[0], flags=["factual-error"])
    (r,) = A.rankings(ws.conn)
    new = d.candidate_id
    assert r.ordering == ((new,), tuple(sorted(item.shown)))
    cand = next(c for c in A.candidates_for(ws.conn, item.prompt_id) if c.id == new)
    assert cand.parent_id == item.shown[0] and cand.response == "A better answer."
    q.undo(d)
    assert A.rankings(ws.conn) == [] and all(c.id != new for c in A.candidates_for(ws.conn, item.prompt_id))


def test_sources_dataset_and_tag(ws):
    tagged = _prompts(ws, 3, tags=("alpha",))
    _prompts(ws, 2, tags=("beta",), start=3)
    with ws.transaction() as c:
        ds = D.create_dataset(c, "asks", "prompts", "standard")
        rid = D.add_record(c, ds, Record(prompt="From the dataset"))
        pid = A.add_prompt(c, "From the dataset", record_id=rid)
        A.add_candidate(c, pid, "x")
        A.add_candidate(c, pid, "y")
        lonely = A.add_prompt(c, "one candidate only", tags=("alpha",))
        A.add_candidate(c, lonely, "z")
    assert _queue(ws, source=Q.PromptSource("tag", "alpha")).upcoming(10) == sorted(tagged)
    assert _queue(ws, source=Q.PromptSource("dataset", "asks")).upcoming(10) == [pid]
    assert len(_queue(ws).upcoming(10)) == 6
    with pytest.raises(WorkbenchError, match="no dataset"):
        _queue(ws, source=Q.PromptSource("dataset", "nope"))


def test_comparison_queue_pairs_one_candidate_of_each_arm(ws):
    with ws.transaction() as c:
        src = {arm: c.execute("INSERT INTO sources(kind, path, detail, created_at) VALUES"
                              " ('generation', ?, ?, 0)", (f"model-{arm}", json.dumps(
                                  {"run_id": "r1", "arm": arm}))).lastrowid for arm in "ab"}
        pids = [A.add_prompt(c, f"q{i}") for i in range(5)]
        for pid in pids:
            for arm in "ab":
                c.execute("INSERT INTO candidates(prompt_id, response, model, source_id, created_at)"
                          " VALUES (?,?,?,?,0)", (pid, f"{arm} says", f"model-{arm}", src[arm]))
        only_a = A.add_prompt(c, "no b yet")
        c.execute("INSERT INTO candidates(prompt_id, response, source_id, created_at) VALUES (?,?,?,0)",
                  (only_a, "a1", src["a"]))
        c.execute("INSERT INTO candidates(prompt_id, response, source_id, created_at) VALUES (?,?,?,0)",
                  (only_a, "a2", src["a"]))
    assert Q.generation_arms(ws.conn, "r1") == {"a": [src["a"]], "b": [src["b"]]}
    q = _queue(ws, compare=Q.CompareArms(run_id="r1", label_a="base", label_b="tuned"))
    assert q.upcoming(10) == pids
    arms = [q.build_item(p).arms for p in pids]
    assert all(sorted(a) == ["a", "b"] for a in arms) and len(set(arms)) == 2
    # "Done" is per comparison queue: a ranking elsewhere does not count.
    with ws.transaction() as c:
        cs = [x.id for x in A.candidates_for(c, pids[0])]
        A.record_ranking(c, pids[0], "ana", [[cs[0]], [cs[1]]])
    assert Q.RankingQueue(ws.conn, q.id).current.prompt_id == pids[0]
    with pytest.raises(WorkbenchError, match="pairwise"):
        Q.QueueSpec(annotator="ana", mode="kwise", compare=Q.CompareArms(run_id="r1")).validated()


def test_candidates_arriving_later_join_the_queue(ws):
    with ws.transaction() as c:
        early = A.add_prompt(c, "early")
        A.add_candidate(c, early, "only one so far")
    q = _queue(ws)
    assert q.current is None and q.progress().remaining == 0
    late = _prompts(ws, 1)
    q.restart_scan()
    assert q.current.prompt_id == min(late)
    with ws.transaction() as c:
        A.add_candidate(c, early, "the second")
    q.choose(0)
    assert q.current is None
    q.restart_scan()
    assert q.current.prompt_id == early


def test_progress_counts_and_list_queues(ws):
    _prompts(ws, 5)
    q = _queue(ws)
    q2 = _queue(ws, mode="kwise", name="second")
    assert [i.id for i in Q.list_queues(ws.conn)][:1] == [q2.id]      # the newest, nothing decided yet
    assert q.progress().remaining == 5
    q.choose(0)
    q.skip()
    p = q.progress()
    assert (p.done, p.remaining, p.skipped) == (1, 4, 1)
    assert q.count() == (1, 4, 1)      # the incremental figures match a fresh count
    assert [i.id for i in Q.list_queues(ws.conn)][:1] == [q.id]       # the last one decided in
    assert {i.spec.name for i in Q.list_queues(ws.conn)} >= {"second", q.spec.name}
    assert Q.get_queue(ws.conn, q2.id).spec.mode == "kwise"


def test_rate_per_hour_ignores_breaks(ws):
    _prompts(ws, 2)
    q = _queue(ws)
    q._times.extend([0.0, 10.0, 1000.0, 1010.0, 1020.0, 1030.0])
    assert q.rate_per_hour() == pytest.approx(3 / 30 * 3600)


def test_a_new_kwise_queue_does_not_count_pairwise_decisions_as_done(ws):
    """Ranking the same prompts k-wise after pairwise started at "10 done" with nothing to rank."""
    _prompts(ws, 4, k=4)
    pair = _queue(ws)
    while pair.current is not None:
        pair.choose(0)
    assert pair.progress().done == 4
    kwise = _queue(ws, mode="kwise", k=4)
    assert kwise.progress().done == 0 and kwise.progress().remaining == 4
    assert kwise.current is not None and len(kwise.current.candidates) == 4
    kwise.decide([[c] for c in kwise.current.shown])
    assert Q.RankingQueue(ws.conn, kwise.id).count() == (1, 3, 0)
    # Another k-wise queue sees the k-wise ranking; the pairwise queue still counts everything.
    again = _queue(ws, mode="kwise", k=3, name="again")
    assert again.count()[0] == 1 and pair.count() == (4, 0, 0)
