package dev.tokenwire.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.SpeculativeOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class GenerateOptionsTest {
  private static GenerateOptions everything() {
    return GenerateOptions.builder()
        .requestId("r")
        .temperature(0.5f).topP(0.9f).topK(40).minP(0.05f).seed(7)
        .repetitionPenalty(1.1f).presencePenalty(0.5f).frequencyPenalty(0.25f)
        .logitBias(Map.of(13, -100f))
        .maxTokens(64).minTokens(2).stop("\n\n", "END").stopTokenIds(2, 3).ignoreEos(true)
        .outputTokenIds(false).outputText(true).logprobs(5)
        .timeout(Duration.ofMillis(1500))
        .speculative(SpeculativeOptions.SpeculativeMethod.SPECULATIVE_METHOD_NGRAM).draftLength(3)
        .structuredOutput(Requests.regex("[a-z]+"))
        .n(2)
        .build();
  }

  /** Every field of GenerateRequest (and of its option messages) not set by the options. */
  private static List<String> unset(Message message, String prefix, Set<String> inputs) {
    List<String> missing = new ArrayList<>();
    for (FieldDescriptor field : message.getDescriptorForType().getFields()) {
      String name = prefix + field.getName();
      if (inputs.contains(name)) {
        continue;
      }
      boolean set = field.isRepeated() ? message.getRepeatedFieldCount(field) > 0 : message.hasField(field);
      if (!set) {
        missing.add(name);
      } else if (field.getJavaType() == FieldDescriptor.JavaType.MESSAGE && !field.isRepeated()
          && field.getMessageType().getFile() == GenerateRequest.getDescriptor().getFile()
          && !name.equals("structured_output")) {
        missing.addAll(unset((Message) message.getField(field), name + ".", inputs));
      }
    }
    return missing;
  }

  @Test
  void everyGenerateRequestFieldIsReachable() {
    GenerateRequest request = Requests.text("hi", everything());
    // The inputs come from Requests.text / chat / tokens, not from the options.
    assertEquals(List.of(), unset(request, "", Set.of("text", "token_ids", "chat")));
    assertEquals("hi", request.getText());
    assertEquals(40, request.getSampling().getTopK());
    assertEquals(List.of("\n\n", "END"), request.getStopping().getStopList());
    assertEquals(5, request.getOutput().getTopLogprobs());
    assertTrue(request.getOutput().getLogprobs());
    assertEquals(1, request.getTimeout().getSeconds());
    assertEquals(500_000_000, request.getTimeout().getNanos());
    assertEquals(3, request.getSpeculative().getDraftLength());
    assertEquals(2, request.getN());
    assertEquals(Map.of(13, -100f), request.getSampling().getLogitBiasMap());
  }

  @Test
  void inputsAndDefaults() {
    GenerateRequest tokens = Requests.tokens(1, 2, 3).build();
    assertEquals(List.of(1, 2, 3), tokens.getTokenIds().getIdsList());
    GenerateRequest chat = Requests.chat(List.of(Requests.message("system", "Be brief."),
        Requests.message("user", "Hi")), GenerateOptions.builder().greedy().build());
    assertEquals(2, chat.getChat().getMessagesCount());
    assertEquals("system", chat.getChat().getMessages(0).getRole());
    assertEquals(0f, chat.getSampling().getTemperature());
    assertTrue(chat.getSampling().hasTemperature());
    GenerateRequest plain = Requests.chat("Hi", GenerateOptions.builder().build());
    assertEquals(GenerateRequest.newBuilder().setChat(Requests.chat("Hi").getChat()).build(), plain,
        "unset options stay absent");
    assertEquals(7, everything().toBuilder().maxTokens(7).build().asRequest().getStopping().getMaxTokens());
  }

  @Test
  void nonsenseIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> GenerateOptions.builder().maxTokens(-1));
    assertThrows(IllegalArgumentException.class, () -> GenerateOptions.builder().timeout(Duration.ZERO));
    assertThrows(IllegalArgumentException.class, () -> GenerateOptions.builder().stopTokenIds(-2));
    assertThrows(IllegalArgumentException.class, () -> Requests.tokens(-1));
  }
}
