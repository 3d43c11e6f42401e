"""Inference engines behind the tokenwire service. No gRPC or protobuf below this package."""
