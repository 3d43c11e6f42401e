"""Greedy decoding with llama.cpp (llama-cpp-python) for bench/speculation.py and bench/engine.py.

Runs in bench/.venv-llamacpp (made by bench/llamacpp_env.sh), never in the
service's environment. Reads a JSON job on stdin: the GGUF path, the prompts
as token ids (rendered and tokenized by tokenwire, so both engines see the
same tokens), new tokens per prompt and threads; writes one JSON result per
prompt to stdout: the tokens, the time to the first token and to the last
(both from the call, prompt evaluation included) and the decode time after the
first token. Every prompt is evaluated from an empty cache: llama-cpp-python
would otherwise reuse the prefix (the chat template's system prompt) it shares
with the previous one. An optional "warmup" count of untimed tokens is
generated from the first prompt before anything is timed.
"""

from __future__ import annotations

import json
import sys
import time

from llama_cpp import Llama  # type: ignore[import-not-found]  # only in bench/.venv-llamacpp


def main() -> None:
    job = json.load(sys.stdin)
    llm = Llama(
        model_path=job["gguf"],
        n_threads=job["threads"],
        n_threads_batch=job["threads"],
        n_ctx=job["context"],
        n_batch=512,
        verbose=False,
    )
    if job.get("warmup", 0) and job["prompts"]:
        _generate(llm, job["prompts"][0], job["warmup"])
    results = []
    for _ in range(job["reps"]):
        for prompt in job["prompts"]:
            results.append(_generate(llm, prompt, job["new_tokens"]))
    json.dump(results, sys.stdout)


def _generate(llm: Llama, prompt: list[int], new_tokens: int) -> dict[str, object]:
    llm.reset()  # no prefix reuse: every prompt pays its full evaluation, as in tokenwire
    tokens: list[int] = []
    start = time.perf_counter()
    first = end = start
    # temp 0: greedy; no penalties. generate() yields every sampled token, EOS included.
    for token in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
        now = time.perf_counter()
        if not tokens:
            first = now
        tokens.append(int(token))
        end = now
        if len(tokens) == new_tokens:
            break
    return {"tokens": tokens, "decode_s": end - first, "first_s": first - start, "total_s": end - start}


if __name__ == "__main__":
    main()
