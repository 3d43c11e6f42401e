"""tokenwire.v1.ModelService: model facts, engine load, tokenizer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from grpc import aio
from tokenwire.v1 import model_pb2, model_pb2_grpc

from engines.contract import OPTIONAL_REQUEST_FIELDS
from service import errors
from service.orca import LoadFigures, clamp_interval
from service.rejections import rejected
from service.runtime import Runtime
from service.validation import KIND_NUMBERS, detokenize_ids, input_bytes, tokenize_request


def _load_message(figures: LoadFigures) -> model_pb2.GetLoadResponse:
    return model_pb2.GetLoadResponse(
        active_requests=figures.active,
        waiting_requests=figures.waiting,
        in_flight_requests=figures.in_flight,
        slots=figures.slots,
        kv_cache_utilization=figures.kv_cache_utilization,
        cpu_utilization=figures.cpu_utilization,
        requests_per_second=figures.requests_per_second,
    )


def _interval(request: model_pb2.WatchLoadRequest) -> float:
    if not request.HasField("interval"):
        return clamp_interval(0.0)
    interval = request.interval
    if interval.seconds < 0 or interval.nanos < 0 or interval.nanos > 999_999_999:
        raise errors.InvalidArgument([errors.FieldViolation("interval", "must be a positive duration")])
    return clamp_interval(interval.seconds + interval.nanos / 1e9)


class ModelServicer(model_pb2_grpc.ModelServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def GetModelInfo(
        self,
        request: model_pb2.GetModelInfoRequest,
        context: aio.ServicerContext[model_pb2.GetModelInfoRequest, model_pb2.GetModelInfoResponse],
    ) -> model_pb2.GetModelInfoResponse:
        try:
            info, limits = self._runtime.require_serving()
        except errors.ServiceError as error:
            await errors.abort(context, error)
        tokenizer = self._runtime.engine.tokenizer
        unsupported = {item.field for item in info.unsupported_fields}
        return model_pb2.GetModelInfoResponse(
            model=info.model_name,
            engine=info.engine_name,
            context_length=info.context_length,
            vocab_size=info.vocab_size,
            has_chat_template=tokenizer.has_chat_template,
            speculative=model_pb2.SpeculativeConfig(
                enabled=bool(info.speculative.name),
                method=info.speculative.name,
                draft_length=info.speculative.draft_length,
                available_methods=[method.value for method in info.speculative.available_methods],
                draft_model=info.speculative.draft_model,
            ),
            max_batch_size=info.max_batch_size,
            default_max_tokens=limits.default_max_tokens,
            eos_token_ids=sorted(tokenizer.eos_token_ids),
            honored_fields=[name for name in OPTIONAL_REQUEST_FIELDS if name not in unsupported],
            unsupported_fields=[
                model_pb2.UnsupportedField(field=item.field, reason=item.reason, allowed=item.allowed)
                for item in info.unsupported_fields
            ],
            structured_output_kinds=[KIND_NUMBERS[kind] for kind in info.structured_output_kinds],
            max_samples=limits.max_samples,
        )

    async def GetLoad(
        self,
        request: model_pb2.GetLoadRequest,
        context: aio.ServicerContext[model_pb2.GetLoadRequest, model_pb2.GetLoadResponse],
    ) -> model_pb2.GetLoadResponse:
        try:
            self._runtime.require_serving()
        except errors.ServiceError as error:
            await errors.abort(context, error)
        return _load_message(self._runtime.load.figures())

    async def WatchLoad(
        self,
        request: model_pb2.WatchLoadRequest,
        context: aio.ServicerContext[model_pb2.WatchLoadRequest, model_pb2.WatchLoadResponse],
    ) -> AsyncIterator[model_pb2.WatchLoadResponse]:
        try:
            self._runtime.require_serving()
            interval = _interval(request)
        except errors.ServiceError as error:
            rejected(error, rpc="WatchLoad", metrics=self._runtime.metrics)
            await errors.abort(context, error)
        closing = self._runtime.streams.closing
        while not closing.is_set():
            yield model_pb2.WatchLoadResponse(load=_load_message(self._runtime.load.figures()))
            try:
                await asyncio.wait_for(closing.wait(), interval)
            except TimeoutError:
                continue

    async def Tokenize(
        self,
        request: model_pb2.TokenizeRequest,
        context: aio.ServicerContext[model_pb2.TokenizeRequest, model_pb2.TokenizeResponse],
    ) -> model_pb2.TokenizeResponse:
        try:
            _, limits = self._runtime.require_serving()
            prompt = await self._runtime.offload.run(
                input_bytes(request), tokenize_request, request, self._runtime.engine.tokenizer, limits
            )
        except errors.ServiceError as error:
            rejected(error, rpc="Tokenize", metrics=self._runtime.metrics)
            await errors.abort(context, error)
        return model_pb2.TokenizeResponse(token_ids=prompt.token_ids, rendered_prompt=prompt.rendered)

    async def Detokenize(
        self,
        request: model_pb2.DetokenizeRequest,
        context: aio.ServicerContext[model_pb2.DetokenizeRequest, model_pb2.DetokenizeResponse],
    ) -> model_pb2.DetokenizeResponse:
        try:
            _, limits = self._runtime.require_serving()
            ids = detokenize_ids(request, limits)
            # A token is a few bytes of text: weigh the work like that much input.
            text = await self._runtime.offload.run(
                4 * len(ids),
                self._runtime.engine.tokenizer.decode,
                ids,
                skip_special_tokens=not request.keep_special_tokens,
            )
        except errors.ServiceError as error:
            rejected(error, rpc="Detokenize", metrics=self._runtime.metrics)
            await errors.abort(context, error)
        return model_pb2.DetokenizeResponse(text=text)
