"""Stream one completion to stdout.

    TOKENWIRE_TARGET=127.0.0.1:50051 python clients/python/examples/stream.py "What is the capital of France?"

The prompt (default: the France question) is sent as a chat user message,
decoded greedily, at most 32 tokens; each delta's text is printed as it arrives.

For a server with TLS and token auth, also set:
  TOKENWIRE_TLS_CA     CA bundle (PEM) that signed the server's certificate; setting it turns TLS on
  TOKENWIRE_CLIENT_CERT   client certificate (PEM) for mTLS, with
  TOKENWIRE_CLIENT_KEY    its private key (PEM)
  TOKENWIRE_TOKEN      bearer token, sent as ``authorization: Bearer <token>``
To continue a trace, set TOKENWIRE_TRACEPARENT to a W3C traceparent: it is sent as
``traceparent`` metadata with the call (an OpenTelemetry app would fill the metadata
with ``opentelemetry.propagate.inject(carrier)`` instead).
A failed call prints ``error: <CODE>: <message>`` to stderr and exits 1.
"""

from __future__ import annotations

import asyncio
import os
import sys

from tokenwire.client import AsyncClient, Delta, Finished, TlsOptions, TokenwireError, user


def tls_from_environment() -> TlsOptions | None:
    """TLS options from TOKENWIRE_TLS_CA / _CERT / _KEY; None (plaintext) when none is set."""
    ca = os.environ.get("TOKENWIRE_TLS_CA") or None
    cert = os.environ.get("TOKENWIRE_CLIENT_CERT") or None
    key = os.environ.get("TOKENWIRE_CLIENT_KEY") or None
    if ca is None and cert is None and key is None:
        return None
    return TlsOptions.from_files(root_certificates=ca, certificate_chain=cert, private_key=key)


async def main(prompt: str) -> int:
    target = os.environ.get("TOKENWIRE_TARGET", "127.0.0.1:50051")
    token = os.environ.get("TOKENWIRE_TOKEN") or None
    async with AsyncClient(target, tls=tls_from_environment(), token=token) as client:
        try:
            traceparent = os.environ.get("TOKENWIRE_TRACEPARENT")
            metadata = (("traceparent", traceparent),) if traceparent else ()
            stream = client.generate([user(prompt)], temperature=0.0, max_tokens=32, metadata=metadata)
            async for event in stream:
                if isinstance(event, Delta):
                    print(event.text, end="", flush=True)
                elif isinstance(event, Finished):
                    print()
                    print(
                        f"[{event.reason.proto_name}, {event.usage.completion_tokens} tokens]",
                        file=sys.stderr,
                    )
        except TokenwireError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or "What is the capital of France?")))
