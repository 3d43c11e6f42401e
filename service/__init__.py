"""The tokenwire gRPC service: servers, servicers, validation, detokenization, CLI."""
