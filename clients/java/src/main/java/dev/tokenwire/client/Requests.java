package dev.tokenwire.client;

import dev.tokenwire.v1.Chat;
import dev.tokenwire.v1.ChatMessage;
import dev.tokenwire.v1.Choice;
import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.Grammar;
import dev.tokenwire.v1.JsonObjectFormat;
import dev.tokenwire.v1.SamplingParams;
import dev.tokenwire.v1.StoppingCriteria;
import dev.tokenwire.v1.StructuredOutput;
import dev.tokenwire.v1.StructuredOutputKind;
import dev.tokenwire.v1.TokenIds;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Shortcuts for building {@link GenerateRequest}s; the builders stay open for anything else.
 *
 * <pre>{@code
 * GenerateRequest request = Requests.chat("Extract the person as JSON.")
 *     .setSampling(Requests.greedy())
 *     .setStopping(Requests.maxTokens(64))
 *     .setStructuredOutput(Requests.jsonSchema(schemaJson))   // or jsonObject(), regex(...), ...
 *     .build();
 * GenerateRequest samples = Requests.chat("Name a colour.")
 *     .setSampling(Requests.sampling(1.0f, 7))                // n > 1 needs temperature > 0
 *     .setN(3)                                                // three samples of one prompt
 *     .build();
 * }</pre>
 */
public final class Requests {
  private Requests() {}

  /** A request whose input is a one-message chat from the user. */
  public static GenerateRequest.Builder chat(String userMessage) {
    return GenerateRequest.newBuilder()
        .setChat(Chat.newBuilder()
            .addMessages(ChatMessage.newBuilder().setRole("user").setContent(userMessage)));
  }

  /** A request whose input is a plain text prompt. */
  public static GenerateRequest.Builder text(String prompt) {
    return GenerateRequest.newBuilder().setText(prompt);
  }

  /** A request whose input is a conversation ({@link #message}s, oldest first). */
  public static GenerateRequest.Builder chat(List<ChatMessage> messages) {
    return GenerateRequest.newBuilder().setChat(Chat.newBuilder().addAllMessages(messages));
  }

  /** One chat message: {@code role} is "system", "user", "assistant" or "tool". */
  public static ChatMessage message(String role, String content) {
    return ChatMessage.newBuilder().setRole(role).setContent(content).build();
  }

  /** A request whose input is token ids, used as they are (each an unsigned id in the vocabulary). */
  public static GenerateRequest.Builder tokens(int... ids) {
    TokenIds.Builder tokenIds = TokenIds.newBuilder();
    for (int id : ids) {
      if (id < 0) {
        throw new IllegalArgumentException("token id " + id + " is negative");
      }
      tokenIds.addIds(id);
    }
    return GenerateRequest.newBuilder().setTokenIds(tokenIds);
  }

  /** A text request with {@code options} (every other GenerateRequest field). */
  public static GenerateRequest text(String prompt, GenerateOptions options) {
    return options.applyTo(text(prompt)).build();
  }

  /** A one-message chat request from the user with {@code options}. */
  public static GenerateRequest chat(String userMessage, GenerateOptions options) {
    return options.applyTo(chat(userMessage)).build();
  }

  /** A chat request with {@code options}. */
  public static GenerateRequest chat(List<ChatMessage> messages, GenerateOptions options) {
    return options.applyTo(chat(messages)).build();
  }

  /** Greedy decoding (temperature 0): the same request gives the same output. */
  public static SamplingParams greedy() {
    return SamplingParams.newBuilder().setTemperature(0f).build();
  }

  /**
   * Sampling at {@code temperature} with a fixed {@code seed}: the same request gives the same
   * output on the same server, and with {@code n} > 1 sample {@code i} draws with
   * {@code seed + i}.
   */
  public static SamplingParams sampling(float temperature, long seed) {
    return SamplingParams.newBuilder().setTemperature(temperature).setSeed(seed).build();
  }

  /**
   * {@code sampling} with a bias added to the logits of the given token ids (token id -> bias in
   * [-100, 100]; -100 bans the token, +100 makes it the choice wherever it is allowed; at most 300
   * entries, each id below {@code GetModelInfo.vocab_size}; the server refuses anything else with
   * INVALID_ARGUMENT). For example {@code Requests.logitBias(Requests.greedy(), Map.of(13, -100f))}.
   * Entries for ids already biased in {@code sampling} are replaced.
   *
   * @throws IllegalArgumentException for a negative token id (token ids are unsigned)
   */
  public static SamplingParams logitBias(SamplingParams sampling, Map<Integer, Float> bias) {
    for (Map.Entry<Integer, Float> entry : bias.entrySet()) {
      if (Objects.requireNonNull(entry.getKey(), "token id") < 0) {
        throw new IllegalArgumentException("logit_bias token id " + entry.getKey() + " is negative");
      }
      Objects.requireNonNull(entry.getValue(), "bias");
    }
    return sampling.toBuilder().putAllLogitBias(bias).build();
  }

  /** Stop after at most {@code maxTokens} tokens. */
  public static StoppingCriteria maxTokens(int maxTokens) {
    return StoppingCriteria.newBuilder().setMaxTokens(maxTokens).build();
  }

  /**
   * Output one JSON value valid against {@code schema}, a JSON Schema document as JSON text (see
   * {@code StructuredOutput.json_schema} in generation.proto for the keywords supported).
   */
  public static StructuredOutput jsonSchema(String schema) {
    return StructuredOutput.newBuilder().setJsonSchema(schema).build();
  }

  /** Output any JSON object. */
  public static StructuredOutput jsonObject() {
    return StructuredOutput.newBuilder().setJsonObject(JsonObjectFormat.getDefaultInstance()).build();
  }

  /**
   * Output text the regular expression {@code pattern} matches as a whole (Rust regex syntax,
   * anchored at both ends; no lookaround or backreferences).
   */
  public static StructuredOutput regex(String pattern) {
    return StructuredOutput.newBuilder().setRegex(pattern).build();
  }

  /** Output text the Lark grammar {@code grammar} derives from its {@code start} rule. */
  public static StructuredOutput larkGrammar(String grammar) {
    return grammar(Grammar.Syntax.SYNTAX_LARK, grammar);
  }

  /** Output text the GBNF (llama.cpp) grammar {@code grammar} derives from its {@code root} rule. */
  public static StructuredOutput gbnfGrammar(String grammar) {
    return grammar(Grammar.Syntax.SYNTAX_GBNF, grammar);
  }

  /** Output text the grammar {@code text}, written in {@code syntax}, derives. */
  public static StructuredOutput grammar(Grammar.Syntax syntax, String text) {
    return StructuredOutput.newBuilder()
        .setGrammar(Grammar.newBuilder().setSyntax(syntax).setText(text))
        .build();
  }

  /** Output exactly one of {@code options} (1 to 256 strings, each 1 to 1024 characters). */
  public static StructuredOutput choice(String... options) {
    return choice(List.of(options));
  }

  /** Output exactly one of {@code options} (1 to 256 strings, each 1 to 1024 characters). */
  public static StructuredOutput choice(List<String> options) {
    return StructuredOutput.newBuilder().setChoice(Choice.newBuilder().addAllOptions(options)).build();
  }

  /**
   * The kind of {@code format}, as {@code GetModelInfo.structured_output_kinds} lists the kinds a
   * server supports: {@code client.modelInfo().getStructuredOutputKindsList().contains(
   * Requests.kindOf(format))}. STRUCTURED_OUTPUT_KIND_UNSPECIFIED for an empty format or a grammar
   * without a syntax (both refused by the server).
   */
  public static StructuredOutputKind kindOf(StructuredOutput format) {
    return switch (format.getFormatCase()) {
      case JSON_SCHEMA -> StructuredOutputKind.STRUCTURED_OUTPUT_KIND_JSON_SCHEMA;
      case JSON_OBJECT -> StructuredOutputKind.STRUCTURED_OUTPUT_KIND_JSON_OBJECT;
      case REGEX -> StructuredOutputKind.STRUCTURED_OUTPUT_KIND_REGEX;
      case CHOICE -> StructuredOutputKind.STRUCTURED_OUTPUT_KIND_CHOICE;
      case GRAMMAR -> switch (format.getGrammar().getSyntax()) {
        case SYNTAX_LARK -> StructuredOutputKind.STRUCTURED_OUTPUT_KIND_GRAMMAR_LARK;
        case SYNTAX_GBNF -> StructuredOutputKind.STRUCTURED_OUTPUT_KIND_GRAMMAR_GBNF;
        case SYNTAX_UNSPECIFIED, UNRECOGNIZED -> StructuredOutputKind.STRUCTURED_OUTPUT_KIND_UNSPECIFIED;
      };
      case FORMAT_NOT_SET -> StructuredOutputKind.STRUCTURED_OUTPUT_KIND_UNSPECIFIED;
    };
  }
}
