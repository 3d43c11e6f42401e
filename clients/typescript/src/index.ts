export {
  GenerationError,
  Session,
  SessionGeneration,
  TokenwireClient,
  chatPrompt,
  choiceOutput,
  collect,
  collectSamples,
  finishReasonName,
  gbnfGrammarOutput,
  generateRequest,
  jsonObjectOutput,
  jsonSchemaOutput,
  larkGrammarOutput,
  logitBias,
  regexOutput,
  sampleCount,
  statusCodeName,
  textPrompt,
  tokenPrompt,
} from "./client.js";
export type {
  CallOpts,
  GenerateOptions,
  GenerateRequestInit,
  GenerationEvent,
  GenerationStream,
  GenerationResult,
  JsonSchema,
  LoadStream,
  LogitBiasInit,
  PromptInit,
  SessionStartInit,
  StructuredOutputInit,
  TokenwireClientOptions,
} from "./client.js";
export { DEFAULT_RETRY_POLICY } from "./retry.js";
export type { ResolvedRetryPolicy, RetryOption, RetryPolicy } from "./retry.js";
export { TokenwireError, errorInfoOf, fieldViolationsOf, retryDelaySecondsOf } from "./errors.js";
export type { ErrorInfo, FieldViolation } from "./errors.js";
export {
  AUTHORIZATION_HEADER,
  MAX_TOKEN_BYTES,
  bearerToken,
  checkToken,
  optionsFromEnvironment,
} from "./credentials.js";
export type { EnvironmentSettings, TlsOptions } from "./credentials.js";
export { durationFromMs } from "@bufbuild/protobuf/wkt";
export * from "../gen/tokenwire/v1/generation_pb.js";
export * from "../gen/tokenwire/v1/model_pb.js";
export type { Status } from "../gen/google/rpc/status_pb.js";
// The google.rpc error details, for ConnectError.findDetails (the typed
// accessors of TokenwireError cover BadRequest, RetryInfo and ErrorInfo).
export {
  BadRequestSchema,
  BadRequest_FieldViolationSchema,
  DebugInfoSchema,
  ErrorInfoSchema,
  HelpSchema,
  LocalizedMessageSchema,
  PreconditionFailureSchema,
  QuotaFailureSchema,
  RequestInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "../gen/google/rpc/error_details_pb.js";
export type { BadRequest, RetryInfo } from "../gen/google/rpc/error_details_pb.js";
