"""Generation events as tokenwire.v1 messages (the one place that builds them)."""

from __future__ import annotations

from typing import assert_never

from tokenwire.v1 import generation_pb2

from service.durations import duration
from service.generation import Delta, EndReason, Finished, GenerationEvent, Started
from service.prepared import PreparedGeneration

_REASONS = {
    EndReason.END_OF_SEQUENCE: generation_pb2.FINISH_REASON_END_OF_SEQUENCE,
    EndReason.LENGTH: generation_pb2.FINISH_REASON_LENGTH,
    EndReason.STOP_STRING: generation_pb2.FINISH_REASON_STOP_STRING,
    EndReason.STOP_TOKEN: generation_pb2.FINISH_REASON_STOP_TOKEN,
    EndReason.CANCELLED: generation_pb2.FINISH_REASON_CANCELLED,
    EndReason.DEADLINE: generation_pb2.FINISH_REASON_DEADLINE,
    EndReason.STRUCTURED_OUTPUT_COMPLETE: generation_pb2.FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE,
}


def fill_delta(
    response: generation_pb2.GenerateResponse | generation_pb2.SessionResponse,
    event: Delta,
    prepared: PreparedGeneration,
) -> None:
    """Set ``response``'s delta from ``event`` (what ``fill`` does for a delta; most events are one)."""
    message = response.delta
    message.SetInParent()  # an empty delta (nothing requested) is still a delta
    if prepared.include_token_ids:
        message.token_ids.extend(event.token_ids)
    if prepared.include_text:
        message.text = event.text
    if event.sample_index:
        message.sample_index = event.sample_index
    for item in event.logprobs:
        message.logprobs.append(
            generation_pb2.TokenLogprob(
                token_id=item.token_id,
                logprob=item.logprob,
                top=[generation_pb2.TopLogprob(token_id=t.token_id, logprob=t.logprob) for t in item.top],
            )
        )


def _finished(event: Finished) -> generation_pb2.Finished:
    stats = event.stats
    message = generation_pb2.Finished(
        reason=_REASONS[event.reason],
        usage=generation_pb2.Usage(
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            cached_prompt_tokens=stats.cached_prompt_tokens,
        ),
        timing=generation_pb2.Timing(queued=duration(stats.queued_s), total=duration(event.total_s)),
        speculative=generation_pb2.SpeculativeStats(
            draft_tokens=stats.draft_tokens,
            accepted_tokens=stats.accepted_draft_tokens,
            decode_steps=stats.decode_steps,
        ),
        sample_index=event.sample_index,
    )
    if event.time_to_first_token_s is not None:
        message.timing.time_to_first_token.CopyFrom(duration(event.time_to_first_token_s))
    if event.stop_string is not None:
        message.stop_string = event.stop_string
    elif event.stop_token_id is not None:
        message.stop_token_id = event.stop_token_id
    return message


def fill(
    response: generation_pb2.GenerateResponse | generation_pb2.SessionResponse,
    event: GenerationEvent,
    prepared: PreparedGeneration,
    model: str,
) -> None:
    """Set ``response``'s event oneof from ``event`` (both response types share it)."""
    match event:
        case Started():
            response.started.prompt_tokens = event.prompt_tokens
            response.started.model = model
        case Delta():
            fill_delta(response, event, prepared)
        case Finished():
            response.finished.CopyFrom(_finished(event))
        case _:
            assert_never(event)
