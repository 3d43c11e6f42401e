"""Generated protobuf and gRPC code for tokenwire.v1 (``make generate``; never edit by hand)."""
