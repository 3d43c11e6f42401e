"""The embedded default engine: SmolLM2-135M-Instruct in plain PyTorch on the CPU."""
