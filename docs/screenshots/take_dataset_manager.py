"""Screenshot of the dataset manager over a realistic workspace, in a real window.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/take_dataset_manager.py

Builds four datasets (pairs with Markdown and code, chat demos, KTO
feedback, prompts) in a temporary workspace, splits and freezes two, selects
a pair and saves ``docs/screenshots/dataset_manager.png``.
"""
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication

app = QApplication([])
from ui.theme import apply_stylesheet, follow_system_palette
apply_stylesheet(app)
follow_system_palette(app)

from workbench.data import ops
from workbench.data.importer import import_file
from workbench.store import datasets as R
from workbench.store.workspace import Workspace

rnd = random.Random(7)

TOPICS = [
    ("How do I reverse a list in Python without modifying the original?",
     "Use slicing, which returns a new list:\n\n```python\nnumbers = [1, 2, 3, 4]\nreversed_copy = numbers[::-1]\n"
     "print(reversed_copy)  # [4, 3, 2, 1]\nprint(numbers)        # unchanged\n```\n\n"
     "`list(reversed(numbers))` works too and reads well when the intent is iteration.",
     "Call `numbers.reverse()`. It reverses the list.", ["code", "python"]),
    ("Explain the difference between a process and a thread.",
     "A **process** has its own address space; a **thread** runs inside a process and shares its memory "
     "with the other threads there.\n\n- Processes are isolated: a crash in one does not take down another.\n"
     "- Threads are cheaper to create and can share data directly, but need locks to do it safely.",
     "They are the same thing on modern computers.", ["cs"]),
    ("Write a haiku about autumn rain.",
     "Cold rain on the roof —\nthe maple lets go its last\nred hand to the wind.",
     "Rain falls in autumn. It is wet and cold. Leaves fall down too.", ["writing", "poetry"]),
    ("What is the derivative of x^3 * sin(x)?",
     "By the product rule:\n\n$$\\frac{d}{dx}\\left(x^3 \\sin x\\right) = 3x^2 \\sin x + x^3 \\cos x$$",
     "The derivative is 3x^2 cos(x).", ["math"]),
    ("Summarize the causes of the French Revolution in three bullet points.",
     "- **Fiscal crisis:** war debts and a regressive tax system left the crown bankrupt.\n"
     "- **Social inequality:** the Third Estate carried the tax burden while lacking political power.\n"
     "- **Enlightenment ideas:** popular sovereignty and rights challenged absolute monarchy.",
     "The French Revolution happened because people were angry at the king.", ["history"]),
    ("How can I make my sourdough rise more?",
     "Check three things:\n\n1. **Starter strength** — feed it until it doubles within 4–6 hours.\n"
     "2. **Temperature** — bulk ferment at 24–26 °C; cooler dough needs more time.\n"
     "3. **Shaping** — build surface tension so the loaf holds its gas.",
     "Add more yeast. Sourdough needs a lot of yeast to rise properly.", ["cooking"]),
    ("Can you help me write a polite email declining a meeting?",
     "Sure — here is a short draft:\n\n> Hi Sam,\n>\n> Thank you for the invitation. I can't join on Thursday, "
     "but I'd be glad to review the notes afterwards and follow up with questions.\n>\n> Best,\n> Alex",
     "Just don't reply. They'll get the message.", ["writing", "email"]),
    ("Is it safe to mix bleach and ammonia for cleaning?",
     "**No.** Mixing bleach and ammonia releases chloramine gas, which can cause coughing, chest pain and "
     "serious lung damage. Use one product at a time, rinse between them, and ventilate the room.",
     "Yes, combining them makes a stronger cleaner.", ["safety"]),
    ("What does `git rebase -i HEAD~3` do?",
     "It opens an editor listing your last three commits so you can reorder, **squash**, reword or drop them "
     "before they are rewritten on top of `HEAD~3`. Avoid it on commits others already pulled.",
     "It deletes your last three commits.", ["code", "git"]),
    ("Give me a SQL query for the top 5 customers by total order value.",
     "```sql\nSELECT c.name, SUM(o.amount) AS total\nFROM customers c\nJOIN orders o ON o.customer_id = c.id\n"
     "GROUP BY c.id\nORDER BY total DESC\nLIMIT 5;\n```",
     "SELECT * FROM customers LIMIT 5;", ["code", "sql"]),
    ("Why is the sky blue?",
     "Sunlight scatters off air molecules, and shorter (blue) wavelengths scatter far more than longer ones "
     "— *Rayleigh scattering* goes as 1/λ⁴ — so blue light reaches your eyes from every direction of the sky.",
     "Because it reflects the ocean.", ["science"]),
    ("Translate 'Where is the train station?' into Spanish.",
     "**¿Dónde está la estación de tren?**", "Donde es el tren estacion.", ["language"]),
]
STYLE_PREFIX = ["", "Quick question: ", "Please help: ", "I'm a beginner. ", "In simple terms, ", "Briefly, "]


def pairs(n):
    rows = []
    for i in range(n):
        prompt, good, bad, tags = TOPICS[i % len(TOPICS)]
        variant = STYLE_PREFIX[(i // len(TOPICS)) % len(STYLE_PREFIX)]
        rows.append({"prompt": variant + (prompt[0].lower() + prompt[1:] if variant else prompt),
                     "chosen": good, "rejected": bad, "tags": tags,
                     "score_chosen": round(rnd.uniform(6, 9.5), 1), "score_rejected": round(rnd.uniform(0.5, 4), 1)})
    return rows


def chats(n):
    rows = []
    for i in range(n):
        prompt, good, bad, tags = TOPICS[i % len(TOPICS)]
        rows.append({"messages": [{"role": "system", "content": "You are a helpful, concise assistant."},
                                  {"role": "user", "content": prompt},
                                  {"role": "assistant", "content": good}]})
    return rows


def kto(n):
    return [{"prompt": TOPICS[i % len(TOPICS)][0], "completion": TOPICS[i % len(TOPICS)][1 if i % 3 else 2],
             "label": bool(i % 3)} for i in range(n)]


def prompts(n):
    return [{"prompt": STYLE_PREFIX[i % len(STYLE_PREFIX)] + TOPICS[i % len(TOPICS)][0]} for i in range(n)]


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


tmp = Path(tempfile.mkdtemp())
root = tmp / "workspace"
ws = Workspace.init(root)
for name, rows, desc in (("helpful-pairs-v2", pairs(360), "Pairwise preferences, rated by two annotators"),
                         ("sft-chat-demos", chats(240), "Accepted responses for supervised fine-tuning"),
                         ("kto-feedback", kto(180), "Thumbs up / down from the feedback widget"),
                         ("eval-prompts", prompts(96), "Held-out prompts for before/after comparison")):
    import_file(ws, write(tmp / f"{name}.jsonl", rows), name, description=desc).checkpoint_thread.join()
ops.split(ws, "helpful-pairs-v2", validation=0.1, seed=3)
ops.split(ws, "sft-chat-demos", validation=0.1, seed=3)
with ws.transaction() as c:
    R.freeze(c, "helpful-pairs-v2", note="round 1")
    R.freeze(c, "sft-chat-demos", note="")
    info = R.get_dataset(c, "helpful-pairs-v2")
    ids = [r.id for r in R.iter_records(c, info)]
    R.set_deleted(c, ids[200:207], True)
with ws.transaction() as c:
    R.freeze(c, "helpful-pairs-v2", note="round 2, cleaned")
ws.close()

from ui.datasets.manager import DatasetManagerPanel  # noqa: E402

panel = DatasetManagerPanel()
panel.setWindowTitle("RLHF Workbench — Datasets")
panel.resize(1280, 800)
panel.show()
panel.set_workspace(root)


def wait(pred, timeout=20):
    end = time.time() + timeout
    while not pred():
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if time.time() > end:
            raise TimeoutError
    for _ in range(20):
        app.processEvents()


wait(lambda: panel.current_dataset is not None and panel.model.complete and not panel.model.busy)
panel.dataset_list.select_name("helpful-pairs-v2")
wait(lambda: panel.current_dataset.name == "helpful-pairs-v2" and panel.model.complete and not panel.model.busy
     and panel.dataset_list.item(0, 2).text() != "\u2026")
panel.select_record(panel.model.record_id(12))
wait(lambda: panel.detail.detail is not None)
out = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "screenshots" / "dataset_manager.png")
panel.grab().save(out)
print("saved", out)
panel.shutdown()
import shutil  # noqa: E402

shutil.rmtree(tmp, ignore_errors=True)
