"""Several samples of one prompt in one request (n = 3), sharing the prompt's prefill.

    TOKENWIRE_TARGET=127.0.0.1:50051 python clients/python/examples/samples.py

Prints one line per sample, by index: ``<index> <FINISH_REASON> <completion
tokens> <text as a JSON string>``, then ``prompt_tokens <Started.prompt_tokens>
<sum of the samples' usage.prompt_tokens>``: the prompt is counted once. A
failed call prints ``error: ...`` to stderr and exits 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from tokenwire.client import AsyncClient, TokenwireError, user


async def main() -> int:
    target = os.environ.get("TOKENWIRE_TARGET", "127.0.0.1:50051")
    async with AsyncClient(target) as client:
        try:
            samples = await client.complete_samples(
                [user("Name a colour and say why you like it.")], n=3, temperature=1.0, seed=7, max_tokens=16
            )
        except TokenwireError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    for index, sample in enumerate(samples):
        print(index, sample.reason.proto_name, sample.usage.completion_tokens, json.dumps(sample.text))
    print("prompt_tokens", samples[0].started.prompt_tokens, sum(s.usage.prompt_tokens for s in samples))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
