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
from collections import OrderedDict
from collections.abc import Callable

from engines.contract import InvalidStructuredOutput, StructuredOutput, StructuredOutputKind
from engines.structured import key_of
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
        known_capacity: int = 1024,
    ) -> None:
        self._compile = compile_format
        self._time_limit_s = time_limit_s
        self._known: OrderedDict[bytes, None] = OrderedDict()
        """Formats that compiled, most recent last: a burst of requests with one schema costs one
        compile, and the others pass at once instead of queueing behind it (or being refused)."""
        self._known_capacity = known_capacity
        self._compiling: dict[bytes, asyncio.Future[None]] = {}
        """Formats being compiled now: a request for one of them waits for that compile."""
        self._worker = Offload(
            max_pending, retry_after_s, thread_name="tokenwire-compile", refusal=_compile_queue_full
        )

    async def check(self, spec: StructuredOutput) -> None:
        """Compile ``spec`` (or find it compiled); raises ``InvalidArgument`` naming the field with the
        compiler's reason, or ``CompileQueueFull``."""
        key = key_of(spec)
        if key in self._known:
            self._known.move_to_end(key)
            return
        compiling = self._compiling.get(key)
        if compiling is None:
            compiling = asyncio.wrap_future(self._worker.submit(self._compile, spec))
            self._compiling[key] = compiling
            compiling.add_done_callback(lambda done: self._compiled(key, done))
        field = FIELDS[spec.kind]
        try:
            await asyncio.wait_for(asyncio.shield(compiling), self._time_limit_s)
        except TimeoutError:
            reason = f"did not compile within {self._time_limit_s:g} s; simplify it"
            raise InvalidArgument([FieldViolation(field, reason)]) from None
        except InvalidStructuredOutput as error:
            raise InvalidArgument([FieldViolation(field, f"does not compile: {error}")]) from None
        self._known[key] = None
        if len(self._known) > self._known_capacity:
            self._known.popitem(last=False)

    def _compiled(self, key: bytes, done: asyncio.Future[None]) -> None:
        del self._compiling[key]
        if not done.cancelled():
            done.exception()  # retrieved here, so one nobody waits for any more is not reported

    @property
    def pending(self) -> int:
        return self._worker.pending

    def shutdown(self) -> None:
        self._worker.shutdown()
