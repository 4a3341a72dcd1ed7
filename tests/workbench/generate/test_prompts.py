"""select_prompts answers distinct prompts: a preference dataset holds many pairs per prompt, and
"Prompts (at most) 10" over ten pairs of one prompt gave ten copies of it, ranked ten times."""

from workbench.generate.config import GenerateConfig
from workbench.generate.prompts import ensure_prompt, select_prompts
from workbench.store import annotations as A
from workbench.store import datasets as D
from workbench.store.records import Record
from workbench.store.workspace import Workspace

CHAT = [{"role": "system", "content": "Réponds brièvement."},
        {"role": "user", "content": "Wie spät ist es in Tōkyō? 🕰️"}]


def _workspace(root):
    ws = Workspace.init(root)
    with ws.transaction() as c:
        d = D.create_dataset(c, "pairs", "preference", "conversational")
        for i in range(10):  # ten pairs of one multi-turn prompt, then three other prompts
            D.add_record(c, d, Record(prompt=CHAT, chosen=[{"role": "assistant", "content": f"good {i}"}],
                                      rejected=[{"role": "assistant", "content": f"bad {i}"}]))
        for q in ("Tell me about rivers.", "Tell me about hills.", "Tell me about rivers."):
            D.add_record(c, d, Record(prompt=[{"role": "user", "content": q}],
                                      chosen=[{"role": "assistant", "content": "yes"}],
                                      rejected=[{"role": "assistant", "content": "no"}]))
    return ws


def test_a_dataset_gives_each_prompt_once(tmp_path):
    with _workspace(tmp_path / "ws") as ws:
        rows, skipped = select_prompts(ws.conn, GenerateConfig(model="m", prompt_dataset="pairs", limit=10))
        assert skipped == 0
        assert [r.text for r in rows] == [CHAT, [{"role": "user", "content": "Tell me about rivers."}],
                                          [{"role": "user", "content": "Tell me about hills."}]]
        rows, _ = select_prompts(ws.conn, GenerateConfig(model="m", prompt_dataset="pairs", limit=2))
        assert len(rows) == 2 and rows[1].text[0]["content"] == "Tell me about rivers."  # the limit counts distinct


def test_a_prompt_answered_before_is_reused_and_tags_and_lists_are_distinct_too(tmp_path):
    with _workspace(tmp_path / "ws") as ws:
        rows, _ = select_prompts(ws.conn, GenerateConfig(model="m", prompt_dataset="pairs"))
        with ws.transaction() as c:  # a first run stored the prompt of one record (not the first one)
            pid = A.add_prompt(c, CHAT, tags=["pairs"])
            second = D.iter_records(c, D.get_dataset(c, "pairs"))
            next(second)
            c.execute("UPDATE prompts SET record_id = ? WHERE id = ?", (next(second).id, pid))
        rows, _ = select_prompts(ws.conn, GenerateConfig(model="m", prompt_dataset="pairs"))
        assert len(rows) == 3 and rows[0].prompt_id == pid  # the candidates meet on the same queue item
        with ws.transaction() as c:
            for row in rows:
                ensure_prompt(c, row, "pairs")
            for _ in range(2):  # the same text stored twice
                A.add_prompt(c, "Tell me about rivers.", tags=["pairs"])
        tagged, _ = select_prompts(ws.conn, GenerateConfig(model="m", prompt_tag="pairs"))
        texts = [str(r.text) for r in tagged]
        assert len(texts) == len(set(texts)) == 4
        listed, _ = select_prompts(ws.conn, GenerateConfig(model="m", prompts=["a", "b", "a", "c"], limit=3))
        assert [r.text for r in listed] == ["a", "b", "c"]
