"""Structured-output formats compiled before a request is accepted, off the event loop.

A format is compiled by the engine (``Engine.compile_structured_output``, which caches what it
compiled) on one thread of its own, so a slow grammar takes at most one core and never delays
tokenizing. Each compile has a time limit (beyond it the request is refused: INVALID_ARGUMENT),
and at most ``max_pending`` may wait (beyond that: RESOURCE_EXHAUSTED with a retry delay). A
compile that outlives its time limit keeps its thread until it ends (llguidance's parser limits,
``engines.structured.LIMITS``, bound how long that can be) and counts as pending till then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from engines.contract import InvalidStructuredOutput, StructuredOutput, StructuredOutputKind
from service.errors import FieldViolation, InvalidArgument, ResourceExhausted
from service.offload import Offload

FIELDS = {
    StructuredOutputKind.JSON_SCHEMA: "structured_output.json_schema",
    StructuredOutputKind.JSON_OBJECT: "structured_output.json_object",
    StructuredOutputKind.REGEX: "structured_output.regex",
    StructuredOutputKind.GRAMMAR_LARK: "structured_output.grammar.text",
    StructuredOutputKind.GRAMMAR_GBNF: "structured_output.grammar.text",
    StructuredOutputKind.CHOICE: "structured_output.choice.options",
}
"""The request field a format's compile error names."""


class CompileQueueFull(ResourceExhausted):
    reason = "COMPILE_QUEUE_FULL"


def _compile_queue_full(pending: int, retry_after_s: float) -> CompileQueueFull:
    return CompileQueueFull(
        f"{pending} structured-output formats are being compiled; retry shortly", retry_after_s
    )


class FormatCompiler:
    def __init__(
        self,
        compile_format: Callable[[StructuredOutput], None],
        *,
        time_limit_s: float = 10.0,
        max_pending: int = 16,
        retry_after_s: float = 1.0,
    ) -> None:
        self._compile = compile_format
        self._time_limit_s = time_limit_s
        self._worker = Offload(
            max_pending, retry_after_s, thread_name="tokenwire-compile", refusal=_compile_queue_full
        )

    async def check(self, spec: StructuredOutput) -> None:
        """Compile ``spec`` (or find it compiled); raises ``InvalidArgument`` naming the field with the
        compiler's reason, or ``CompileQueueFull``."""
        future = self._worker.submit(self._compile, spec)
        field = FIELDS[spec.kind]
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self._time_limit_s)
        except TimeoutError:
            reason = f"did not compile within {self._time_limit_s:g} s; simplify it"
            raise InvalidArgument([FieldViolation(field, reason)]) from None
        except InvalidStructuredOutput as error:
            raise InvalidArgument([FieldViolation(field, f"does not compile: {error}")]) from None

    @property
    def pending(self) -> int:
        return self._worker.pending

    def shutdown(self) -> None:
        self._worker.shutdown()
