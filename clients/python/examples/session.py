"""Two generations on one Session stream; cancel one after its first delta.

    TOKENWIRE_TARGET=127.0.0.1:50051 python clients/python/examples/session.py

Prints one line per generation once both ended:
``<request_id> <FINISH_REASON_NAME> <completion_tokens> <text-as-JSON-string>``.
"""

from __future__ import annotations

import asyncio
import json
import os

from tokenwire.client import AsyncClient, Completion, Delta, GenerationHandle


async def cancel_after_first_delta(handle: GenerationHandle) -> Completion:
    async for event in handle:
        if isinstance(event, Delta) and event.token_ids:
            await handle.cancel()
            break
    return await handle.result()  # the rest: up to Finished(reason=CANCELLED)


async def main() -> None:
    target = os.environ.get("TOKENWIRE_TARGET", "127.0.0.1:50051")
    async with AsyncClient(target) as client, client.session() as session:
        keep = await session.start(
            "keep", "The sky is blue because", temperature=0.0, max_tokens=12, ignore_eos=True
        )
        drop = await session.start(
            "drop", "Once upon a time", temperature=0.0, max_tokens=200, ignore_eos=True
        )
        results = await asyncio.gather(keep.result(), cancel_after_first_delta(drop))
    for completion in results:
        print(
            completion.request_id,
            completion.reason.proto_name,
            completion.usage.completion_tokens,
            json.dumps(completion.text),
        )


if __name__ == "__main__":
    asyncio.run(main())
