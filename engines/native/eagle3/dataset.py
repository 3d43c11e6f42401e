"""Training data for the EAGLE-3 head: the target model's own answers to a committed prompt set.

Step 1 (``generate_sequences``): every prompt of ``data/train_prompts.txt`` is
rendered with the model's chat template and answered greedily by the native
engine itself (speculation off), so the sequences are exactly what the target
produces when it serves. Each finished sequence is appended to a JSONL file at
once, so an interrupted run resumes where it stopped.

Step 2 (``extract_features``, in ``features``) runs the target once over every
whole sequence and keeps what the head learns from.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from engines.contract import (
    ChatMessage,
    EngineRequest,
    RequestId,
    SamplingParams,
    SpeculationMethod,
    StoppingParams,
    TokenId,
)

_log = structlog.get_logger(__name__)

DATA_DIR = Path(__file__).parent / "data"
TRAIN_PROMPTS = DATA_DIR / "train_prompts.txt"
"""Instructions the head is trained on (composed for this repository)."""
HELDOUT_PROMPTS = DATA_DIR / "heldout_prompts.txt"
"""Instructions it never sees in training: acceptance is measured on these."""


@dataclass(frozen=True, slots=True)
class TrainingSequence:
    """One chat prompt and the target's greedy answer, as token ids."""

    prompt: tuple[int, ...]
    answer: tuple[int, ...]

    @property
    def tokens(self) -> tuple[int, ...]:
        return self.prompt + self.answer


def read_prompts(path: Path) -> list[str]:
    """Non-empty lines of a prompt file."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_sequences(path: Path) -> list[TrainingSequence]:
    """Sequences written by ``generate_sequences`` (empty if the file does not exist)."""
    if not path.exists():
        return []
    sequences = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        sequences.append(TrainingSequence(tuple(record["prompt"]), tuple(record["answer"])))
    return sequences


def _answered(path: Path) -> set[str]:
    """Prompts already answered in ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return {json.loads(line)["text"] for line in lines}


async def generate_sequences(
    prompts: Sequence[str],
    out_path: Path,
    *,
    max_tokens: int,
    concurrency: int,
    threads: int | None = None,
) -> None:
    """Answer every prompt not yet in ``out_path`` greedily and append the results."""
    # Imported here: the engine pulls in torch and the weights, the readers above do not.
    from engines.native.engine import NativeEngine, NativeEngineConfig

    done = _answered(out_path)
    todo = [p for p in prompts if p not in done]
    _log.info("draft_data_generate", prompts=len(prompts), already_done=len(done), todo=len(todo))
    if not todo:
        return
    engine = NativeEngine(
        NativeEngineConfig(
            max_batch_size=concurrency, speculation=SpeculationMethod.OFF, draft_head=None, threads=threads
        )
    )
    await engine.start()
    tokenizer = engine.tokenizer
    gate = asyncio.Semaphore(concurrency)
    written = 0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("a", encoding="utf-8") as out:

        async def answer(index: int, text: str) -> None:
            nonlocal written
            rendered = tokenizer.render_chat([ChatMessage(role="user", content=text)])
            prompt = tuple(tokenizer.encode(rendered, add_special_tokens=False))
            request = EngineRequest(
                request_id=RequestId(f"draft-data-{index}"),
                prompt_token_ids=prompt,
                sampling=SamplingParams(temperature=0.0),
                stopping=StoppingParams(max_tokens=max_tokens),
            )
            async with gate:
                answer_ids: list[TokenId] = []
                async for output in engine.generate(request):
                    answer_ids.extend(output.token_ids)
            record = {"text": text, "prompt": list(prompt), "answer": [int(t) for t in answer_ids]}
            out.write(json.dumps(record) + "\n")
            out.flush()
            written += 1
            if written % 20 == 0:
                _log.info("draft_data_progress", written=written, todo=len(todo))

        try:
            await asyncio.gather(*(answer(i, text) for i, text in enumerate(todo)))
        finally:
            await engine.shutdown()
