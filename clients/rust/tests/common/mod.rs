//! The gRPC wire framing the fake servers of these tests share: each test file
//! runs its own HTTP/2 server (h2) and speaks gRPC's framing by hand.
//!
//! Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use tonic::Status;
use tonic::codegen::Bytes;

/// One gRPC message frame: uncompressed, length-prefixed.
pub fn frame(message: &impl prost::Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut framed = vec![0_u8];
    framed.extend(u32::try_from(body.len()).unwrap().to_be_bytes());
    framed.extend(body);
    Bytes::from(framed)
}

/// Takes every complete gRPC message off the front of `buffer`.
pub fn unframe(buffer: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    while buffer.len() >= 5 {
        let len = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
        if buffer.len() < 5 + len {
            break;
        }
        messages.push(buffer[5..5 + len].to_vec());
        buffer.drain(..5 + len);
    }
    messages
}

/// Trailers with grpc-status OK.
pub fn ok_trailers() -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    Status::ok("").add_header(&mut trailers).unwrap();
    trailers
}

/// The response head of a gRPC call.
pub fn grpc_response() -> http::Response<()> {
    http::Response::builder()
        .header("content-type", "application/grpc")
        .body(())
        .unwrap()
}
