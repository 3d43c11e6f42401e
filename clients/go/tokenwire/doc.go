// SPDX-License-Identifier: Apache-2.0

// Package tokenwire is a thin, typed Go client for the tokenwire.v1 gRPC API.
//
// The generated messages and stubs live in
// github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1 (imported here
// as pb); this package adds what the raw stubs leave to the caller:
//
//   - [Connect] with [WithTLS], [WithClientCert] and [WithToken] for TLS,
//     mTLS and a bearer token on every call ([ConnectOptionsFromEnv] reads
//     them from TOKENWIRE_TLS_CA, TOKENWIRE_CLIENT_CERT, TOKENWIRE_CLIENT_KEY and
//     TOKENWIRE_TOKEN);
//   - [Client.Generate] streams one generation as typed [Event] values, and
//     [Stream.Collect] gathers them into a [Result];
//   - [Client.OpenSession] multiplexes many generations on one bidirectional
//     Session stream, routes each event to its [Generation] by request id, and
//     cancels one generation by id ([Session.Cancel], [Generation.Cancel]);
//   - [Client.Abort] cancels a generation by id from any connection;
//   - request helpers ([TextRequest], [ChatRequest], [Option]) for the
//     common fields, structured output ([WithJSONSchema], [WithJSONObject],
//     [WithRegex], [WithLarkGrammar], [WithGBNFGrammar], [WithChoice]),
//     logit bias ([WithLogitBias]) and n samples of one prompt ([WithN]);
//   - options for every GenerateRequest field (sampling, stopping, output and
//     logprobs, speculation: [WithTopP], [WithStopTokenIDs], [WithLogprobs],
//     [WithSpeculation] and more);
//   - retries of UNAVAILABLE and RESOURCE_EXHAUSTED before the first event,
//     honouring google.rpc.RetryInfo ([RetryPolicy], [WithRetryPolicy],
//     [WithCallRetryPolicy]; [Stream.Attempts] counts the calls made);
//   - the google.rpc error details decoded: [FieldViolations], [RetryDelay],
//     [ErrorInfo], [ErrorReason];
//   - for n > 1, streams that end after every sample's Finished event and
//     [Stream.CollectSamples] / [Client.CompleteSamples], which give one
//     [Result] per sample ([Stream.Collect] refuses n > 1 with
//     [ErrMultipleSamples]).
//
// Deadlines: the context passed to Generate and OpenSession carries the gRPC
// deadline (when it passes the call fails with codes.DeadlineExceeded and the
// server cancels the generation). [WithTimeout] instead sets the request's
// own timeout: the generation then ends normally with FINISH_REASON_DEADLINE
// and keeps its partial output.
package tokenwire
