"""The production engine: an in-process TensorRT-LLM executor (``tensorrt_llm.LLM``, PyTorch backend).

``tensorrt_llm`` is imported lazily: nothing in this package imports it at
module import time, so the service and its tests run where it is absent.
"""
