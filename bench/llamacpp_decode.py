"""Greedy decoding with llama.cpp (llama-cpp-python) for bench/speculation.py.

Runs in bench/.venv-llamacpp (made by bench/llamacpp_env.sh), never in the
service's environment. Reads a JSON job on stdin: the GGUF path, the prompts
as token ids (rendered and tokenized by tokenwire, so both engines see the
same tokens), new tokens per prompt and threads; writes one JSON result per
prompt to stdout: the tokens and the decode time after the first token.
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
    results = []
    for _ in range(job["reps"]):
        for prompt in job["prompts"]:
            tokens: list[int] = []
            first = end = 0.0
            # temp 0: greedy; no penalties. generate() yields every sampled token, EOS included.
            for token in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
                now = time.perf_counter()
                if not tokens:
                    first = now
                tokens.append(int(token))
                end = now
                if len(tokens) == job["new_tokens"]:
                    break
            results.append({"tokens": tokens, "decode_s": end - first})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
