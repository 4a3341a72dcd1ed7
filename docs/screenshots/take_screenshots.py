"""Every screenshot in docs/screenshots/, in a real window (xcb) of a 1280x720 screen.

From the repo root, on a fresh demo workspace with a second, shorter SFT run (the blind
comparison's "before" model):

    rlhf-workbench demo --build-only --workspace /tmp/demo
    # a copy of the demo SFT run's config.yaml with max_steps: 120 and snapshot: null
    rlhf-workbench train sft-short.yaml --workspace /tmp/demo
    Xvfb :48 -screen 0 1280x720x24 & DISPLAY=:48 openbox &
    DISPLAY=:48 QT_QPA_PLATFORM=xcb PYTHONPATH=$PWD python docs/screenshots/take_screenshots.py /tmp/demo docs/screenshots

Each PNG is a grab of the whole screen (``import -window root``, ImageMagick), so what is
off screen is not in it. Settings and HOME are scratch folders; the recent list is made up
of three empty example workspaces and one that moved away. Optional trailing arguments
name phases to take (welcome datasets pairwise kwise compare quality train runs).
"""
import json
import os, sys, subprocess, time, traceback, tempfile
from pathlib import Path
TMP = Path(tempfile.mkdtemp(prefix="wb-shots-"))
os.environ["XDG_CONFIG_HOME"] = str(TMP / "config"); os.environ["XDG_DATA_HOME"] = str(TMP / "data")
os.environ["HOME"] = str(TMP / "alex"); (TMP / "alex").mkdir()
from PySide6.QtWidgets import QApplication
app = QApplication([sys.argv[0]])
from ui.theme import apply_stylesheet, app_icon
app.setWindowIcon(app_icon()); apply_stylesheet(app)
from ui.main_window import MainWindow
from ui.settings import Settings
from workbench.store import queue as Q
from workbench.store.workspace import Workspace
ws = Path(sys.argv[1]).absolute(); out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
only = set(sys.argv[3:])
def wait(ms):
    end = time.time() + ms / 1000
    while time.time() < end: app.processEvents(); time.sleep(0.01)
def until(cond, s=120):
    end = time.time() + s
    while not cond():
        if time.time() > end: raise TimeoutError("condition not met")
        app.processEvents(); time.sleep(0.02)
def shot(name, ms=700):
    wait(ms)
    g = w.frameGeometry()
    print(f"{name}: frame {g.x()},{g.y()} {g.width()}x{g.height()} hint {w.minimumSizeHint().width()}x{w.minimumSizeHint().height()}", flush=True)
    subprocess.run(["import", "-display", os.environ["DISPLAY"], "-window", "root", str(out / f"{name}.png")], check=True)
def phase(name):
    return not only or name in only

def write_import_file(path):
    rows = [
     ("How do I undo the last git commit but keep my changes?", "Run `git reset --soft HEAD~1`. The commit is undone and your changes stay staged.", "Delete the .git folder and clone the repository again."),
     ("What's the difference between a list and a tuple in Python?", "Lists are mutable (you can append, remove, reorder); tuples are immutable and can be dict keys.", "There is no difference, they are the same thing."),
     ("Can you suggest a quick vegetarian dinner?", "Try a chickpea and spinach curry: fry onion and garlic, add spices, chickpeas, tomatoes and spinach; 20 minutes.", "Order a pizza."),
     ("Explain what a p-value is in one paragraph.", "A p-value is the probability of seeing data at least this extreme if the null hypothesis were true.", "It is the probability that your hypothesis is correct."),
     ("How should I store passwords in my web app?", "Never store them in plain text. Hash them with a slow, salted algorithm such as Argon2 or bcrypt.", "Encrypt them with AES and keep the key in the source code."),
     ("Write a haiku about autumn rain.", "Cold rain on red leaves / the gutter sings all night long / morning smells of earth", "Rain is wet. Leaves fall. The end."),
     ("Why is the sky blue?", "Sunlight scatters off air molecules, and blue light scatters far more than red (Rayleigh scattering).", None),
     ("How do I center a div with CSS?", "Make the parent a flex container: `display: flex; justify-content: center; align-items: center;`.", "Use <center> tags everywhere."),
    ]
    src = ["forum-2024", "support-tickets", "internal-eval"]
    with open(path, "w") as f:
        for i in range(40):
            q, good, bad = rows[i % len(rows)]
            r = {"question": q, "better_answer": good, "worse_answer": bad, "source": src[i % 3], "annotator": f"a{i % 5 + 1}"}
            if i == 13: r["better_answer"] = 42
            f.write(json.dumps(r) + "\n")


projects = Path.home() / "rlhf"
for n in ("helpfulness-v2", "code-review-prefs", "summaries-2026q3"):
    Workspace.init(projects / n).close()
settings = Settings()
for p in (projects / "summaries-2026q3", projects / "code-review-prefs", ws, projects / "helpfulness-v2"):
    settings.add_recent_workspace(p)
settings.add_recent_workspace(Path.home() / "archive" / "hh-rlhf-baseline")
settings.add_recent_workspace(projects / "helpfulness-v2")
w = MainWindow(settings=settings, gpu_probe_delay_ms=None)
w.showMaximized(); wait(1500)
if phase("welcome"): shot("welcome")
w.open_workspace(ws); wait(1500)
with Workspace.open(ws) as x:
    qs = Q.list_queues(x.conn)
    pair = next(q.id for q in qs if q.spec.mode == "pairwise" and not q.spec.compare)
    kws = [q.id for q in qs if q.spec.mode == "kwise"]
    if kws: kw = kws[0]
    else:
        with x.transaction() as c:
            kw = Q.create_queue(c, Q.QueueSpec(annotator=qs[0].spec.annotator, mode="kwise", k=4,
                                               source=Q.PromptSource("tag", "demo"), seed=1))
    sfts = sorted(r.name for r in (ws / "runs").iterdir() if "-sft-" in r.name)
    sft_run = sfts[0]  # the demo's own SFT run
    before = f"./runs/{sfts[1]}" if len(sfts) > 1 else "./models/demo-base"
try:
    if phase("datasets"):
        d = w.show_page("Datasets"); wait(2500)
        d.refresh_datasets(select="demo-pairs"); wait(2000)
        try:
            d.table.selectRow(2)
        except Exception: traceback.print_exc()
        shot("dataset_manager")
        d._on_stats_triggered(); wait(3000)
        shot("dataset_stats"); d.stats_dialog.close()
        d.open_import_wizard(); wz = d.import_wizard; wait(800)
        pairs = TMP / "helpful_pairs.jsonl"; write_import_file(pairs); wz.file_page.path_edit.setText(str(pairs)); wait(500)
        wz.next(); wait(3000)
        for col, dst in (("question", "prompt"), ("better_answer", "chosen"), ("worse_answer", "rejected")):
            cb = wz.preview_page.mapping_combo(col); cb.setCurrentIndex(cb.findData(dst)); wait(1500)
        wait(2000)
        shot("import_wizard"); wz.reject()
except Exception: traceback.print_exc()
try:
    p = w.show_page("Rank")
    if phase("pairwise"):
        p.open_queue(pair); wait(500)
        p.note.setText("B answers the question and stays polite")
        shot("main_window")
        p.choose(1); p.reveal_button.setChecked(True); shot("ranking_pairwise")
    if phase("kwise"):
        p.open_queue(kw); wait(800)
        p.order_view.assign(2); p.order_view.assign(0); shot("ranking_kwise")
    if phase("compare"):
        from workbench.train.demo_task import preference_score
        def txt(t): return t if isinstance(t, str) else t[-1]["content"]
        A_REF, B_REF = before, f"./runs/{sft_run}"
        dlg = p.open_comparison_dialog(A_REF, B_REF); wait(1000)
        dlg.sampling.limit.setValue(36)
        dlg._on_start_clicked(); wait(300)
        print("dialog error:", dlg.error.text() if hasattr(dlg.error, "text") else "", flush=True)
        until(lambda: p.queue is not None and p.queue.current is not None, 300)
        shot("ranking_comparison_job", 300)
        until(lambda: not p.job_strip.running, 400); print("job:", p.job_strip.status, flush=True)
        wait(2000)
        i = 0
        while p.queue is not None and p.queue.current is not None and i < 300:
            it = p.queue.current; pr = txt(it.prompt)
            sc = [preference_score(txt(c.response), pr) for c in it.candidates]
            p.choose(0 if sc[0] >= sc[1] else 1); i += 1; wait(50)
        p.refresh_counts(); p.job_strip.hide(); shot("ranking_comparison_done", 1500)
    if phase("quality"):
        q = p.open_quality_dialog(); wait(3000); shot("ranking_quality"); q.close()
except Exception: traceback.print_exc()
try:
    if phase("train"):
        t = w.show_page("Train"); wait(1000); t.select_stage("ppo"); shot("training_pipeline", 1500)
    if phase("runs"):
        r = w.show_page("Runs"); wait(1000); r.select_run(sft_run); shot("training_runs", 4000)
except Exception: traceback.print_exc()
w._quit_anyway = True
w.close_without_asking() if hasattr(w, "close_without_asking") else w.close()
