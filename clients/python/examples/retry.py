"""Retries and error details: a busy server's RESOURCE_EXHAUSTED is retried after its RetryInfo
delay, and a bad request's field violation is read from the error.

    TOKENWIRE_TARGET=127.0.0.1:50051 python clients/python/examples/retry.py

Prints ``attempts <n>`` and ``completion_tokens <k>`` for a short generation (retried, before its
first event only, while the server is busy), then ``violation <field> <description>`` for a request
with top_p = 5. A call that still fails prints ``error: ...`` to stderr and exits 1.
"""

from __future__ import annotations

import asyncio
import os
import sys

from tokenwire.client import AsyncClient, InvalidArgumentError, RetryPolicy, TokenwireError


async def main() -> int:
    target = os.environ.get("TOKENWIRE_TARGET", "127.0.0.1:50051")
    async with AsyncClient(target, retry=RetryPolicy(max_attempts=10)) as client:
        try:
            stream = client.generate("Hello", max_tokens=8)
            completion = await stream.collect()
            print("attempts", stream.attempts)
            print("completion_tokens", completion.usage.completion_tokens)
        except TokenwireError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        try:
            await client.complete("Hello", top_p=5.0)
        except InvalidArgumentError as error:
            for violation in error.field_violations:
                print("violation", violation.field, violation.description)
            return 0
    print("error: top_p = 5 was accepted", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
