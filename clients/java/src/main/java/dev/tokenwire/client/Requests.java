package dev.tokenwire.client;

import dev.tokenwire.v1.Chat;
import dev.tokenwire.v1.ChatMessage;
import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.SamplingParams;
import dev.tokenwire.v1.StoppingCriteria;

/** Shortcuts for building {@link GenerateRequest}s; the builders stay open for anything else. */
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

  /** Greedy decoding (temperature 0): the same request gives the same output. */
  public static SamplingParams greedy() {
    return SamplingParams.newBuilder().setTemperature(0f).build();
  }

  /** Stop after at most {@code maxTokens} tokens. */
  public static StoppingCriteria maxTokens(int maxTokens) {
    return StoppingCriteria.newBuilder().setMaxTokens(maxTokens).build();
  }
}
