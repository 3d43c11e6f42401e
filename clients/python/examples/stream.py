"""Stream one completion to stdout.

    TOKENWIRE_TARGET=127.0.0.1:50051 python clients/python/examples/stream.py "What is the capital of France?"

The prompt (default: the France question) is sent as a chat user message,
decoded greedily, at most 32 tokens; each delta's text is printed as it arrives.
"""

from __future__ import annotations

import asyncio
import os
import sys

from tokenwire.client import AsyncClient, Delta, Finished, user


async def main(prompt: str) -> None:
    target = os.environ.get("TOKENWIRE_TARGET", "127.0.0.1:50051")
    async with AsyncClient(target) as client:
        async for event in client.generate([user(prompt)], temperature=0.0, max_tokens=32):
            if isinstance(event, Delta):
                print(event.text, end="", flush=True)
            elif isinstance(event, Finished):
                print()
                print(
                    f"[{event.reason.proto_name}, {event.usage.completion_tokens} tokens]",
                    file=sys.stderr,
                )


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "What is the capital of France?"))
