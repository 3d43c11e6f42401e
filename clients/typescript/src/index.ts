export {
  GenerationError,
  Session,
  SessionGeneration,
  TokenwireClient,
  chatPrompt,
  collect,
  finishReasonName,
  textPrompt,
  tokenPrompt,
} from "./client.js";
export type {
  CallOpts,
  GenerateRequestInit,
  GenerationEvent,
  GenerationResult,
  PromptInit,
  SessionStartInit,
  TokenwireClientOptions,
} from "./client.js";
export { durationFromMs } from "@bufbuild/protobuf/wkt";
export * from "../gen/tokenwire/v1/generation_pb.js";
export * from "../gen/tokenwire/v1/model_pb.js";
export type { Status } from "../gen/google/rpc/status_pb.js";
