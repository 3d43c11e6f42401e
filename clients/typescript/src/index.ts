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
  GenerateRequestInit,
  GenerationEvent,
  GenerationResult,
  JsonSchema,
  LogitBiasInit,
  PromptInit,
  SessionStartInit,
  StructuredOutputInit,
  TokenwireClientOptions,
} from "./client.js";
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
