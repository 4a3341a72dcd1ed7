"""The ``generate`` stage: sample candidates for the ranking queue, streaming them into the workspace.

``run(ctx)`` top to bottom:

1. read the config (:class:`~workbench.generate.config.GenerateConfig`),
   resolve every model and select the prompts, before torch is imported, so
   a bad config fails in a second;
2. for each model (arm ``a``, then ``b`` for a comparison): create or find
   its ``generation`` source, load it, and answer the prompts batch by
   batch. Each batch is **one committed transaction** (its new prompts and
   all their candidates), so the ranking queue picks up candidates while the
   job runs; a ``metric`` event after each batch reports progress
   (``generate/progress`` in [0, 1], prompts, candidates, tokens per second)
   and a ``samples`` event shows a few responses;
3. a cancel request is honoured at the next batch boundary (the batches
   already committed stay). A resumed run skips the prompts its source has
   already answered; every batch is seeded from ``(seed, batch index)``, so
   it draws what the first attempt would have drawn.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..store.records import encode_text
from ..store.workspace import Workspace
from .config import GenerateConfig
from .models import resolve_model
from .prompts import answered, ensure_prompt, generation_source, select_prompts

SAMPLES_PER_BATCH = 4


def batch_seed(seed: int, batch: int) -> int:
    """The seed of one batch: the same for every model of a run."""
    return (int(seed) * 1_000_003 + int(batch)) % (2 ** 63)


def run(ctx) -> None:
    cfg = GenerateConfig.from_dict(ctx.config)
    root = Path(cfg.workspace).expanduser().resolve() if cfg.workspace else ctx.run_dir.path.resolve().parent.parent
    arms = [(arm, resolve_model(ref, root)) for arm, ref in cfg.arms]
    tag = cfg.prompt_tag_for_new
    params = cfg.sampling()
    run_id = ctx.run_dir.run_id
    with Workspace.open(root) as ws:
        rows, skipped = select_prompts(ws.conn, cfg)
        if skipped:
            ctx.warn("no_prompt", f"{skipped} records of {cfg.prompt_dataset!r} hold no prompt; left out")
        batches = [rows[i:i + cfg.batch_size] for i in range(0, len(rows), cfg.batch_size)]
        total = len(batches) * len(arms)
        ctx.log(f"{len(rows)} prompts x {cfg.n} responses from {len(arms)} model(s) in {len(batches)} batches; "
                f"tagging new prompts {tag!r}")
        ctx.raise_if_stopped()

        from .sampler import Sampler  # torch: only once the config is known to be good

        step = prompts_done = candidates = 0
        t0 = time.monotonic()
        tokens = 0
        for arm, model in arms:
            with ws.transaction() as conn:
                source_id = generation_source(conn, run_id, arm, model.label,
                                              {"model": model.describe(), "checkpoint": model.checkpoint,
                                               "params": params})
            done = answered(ws.conn, source_id)
            sampler = None
            for b, batch in enumerate(batches):
                ctx.raise_if_stopped()
                step += 1
                if all(r.prompt_id in done for r in batch):
                    continue  # a resumed run: this batch is in the workspace already
                if sampler is None:
                    ctx.log(f"model {arm.upper()}: loading {model.describe()}")
                    sampler = Sampler(model, cfg)
                    if sampler.ignored_defaults:
                        ctx.log(f"model {arm.upper()}: ignoring its generation_config.json sampling defaults "
                                f"{sampler.ignored_defaults} (candidates use exactly the job's settings)")
                outs, n_tokens = sampler.sample(batch, batch_seed(cfg.seed, b))
                tokens += n_tokens
                added = 0
                with ws.transaction() as conn:
                    for row, responses in zip(batch, outs):
                        if row.prompt_id is not None and row.prompt_id in done:
                            continue
                        pid = ensure_prompt(conn, row, tag)
                        conversational = row.style == "conversational"
                        now = time.time()
                        conn.executemany(
                            "INSERT INTO candidates(prompt_id, response, model, checkpoint, params, source_id,"
                            " created_at) VALUES (?,?,?,?,?,?,?)",
                            [(pid, encode_text([{"role": "assistant", "content": r}] if conversational else r),
                              model.label, model.checkpoint, json.dumps({**params, "arm": arm}, sort_keys=True),
                              source_id, now) for r in responses])
                        done.add(pid)
                        added += len(responses)
                        prompts_done += 1
                candidates += added
                elapsed = max(1e-9, time.monotonic() - t0)
                ctx.metric(step, {"generate/progress": step / total, "generate/prompts": prompts_done,
                                  "generate/candidates": candidates, "generate/tokens_per_s": tokens / elapsed})
                ctx.samples(step, [{"prompt": row.text if isinstance(row.text, str) else row.text[-1]["content"],
                                    "response": responses[0], "score": None}
                                   for row, responses in list(zip(batch, outs))[:SAMPLES_PER_BATCH]])
            if sampler is not None:
                sampler.close()
        ctx.log(f"done: {candidates} candidates for {prompts_done} prompt answers in "
                f"{time.monotonic() - t0:.1f} s")
