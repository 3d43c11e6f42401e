"""Extract structured data: the answer is JSON valid against a JSON Schema.

    TOKENWIRE_TARGET=127.0.0.1:50051 python clients/python/examples/structured.py

Asks the model to extract a person from a sentence, constrained to a schema
(greedy, at most 64 tokens), and prints two lines: the JSON text the deltas
make up, then the finish reason (FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE once
the schema allows nothing more). A failed call prints ``error: ...`` to stderr
and exits 1.
"""

from __future__ import annotations

import asyncio
import os
import sys

from tokenwire.client import AsyncClient, TokenwireError, user

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "birth_year": {"type": "integer", "minimum": 1000, "maximum": 2100},
        "city": {"type": "string", "maxLength": 40},
    },
    "required": ["name", "birth_year", "city"],
    "additionalProperties": False,
}


async def main() -> int:
    target = os.environ.get("TOKENWIRE_TARGET", "127.0.0.1:50051")
    async with AsyncClient(target) as client:
        try:
            completion = await client.complete(
                [user("Ada Lovelace was born in 1815 in London. Extract the person as JSON.")],
                temperature=0.0,
                max_tokens=64,
                json_schema=PERSON,
            )
        except TokenwireError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(completion.text)
    print(completion.reason.proto_name)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
