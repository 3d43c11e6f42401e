"""tokenwire: Python client and generated protobuf code for the tokenwire.v1 API."""
