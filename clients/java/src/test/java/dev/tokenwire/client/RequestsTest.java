package dev.tokenwire.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tokenwire.v1.FinishReason;
import dev.tokenwire.v1.Finished;
import dev.tokenwire.v1.Grammar;
import dev.tokenwire.v1.SamplingParams;
import dev.tokenwire.v1.StructuredOutput;
import dev.tokenwire.v1.StructuredOutputKind;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The request shortcuts build the messages generation.proto describes; no server. */
class RequestsTest {

  @Test
  void structuredOutputOfEveryKind() {
    StructuredOutput schema = Requests.jsonSchema("{\"type\": \"integer\"}");
    assertEquals(StructuredOutput.FormatCase.JSON_SCHEMA, schema.getFormatCase());
    assertEquals("{\"type\": \"integer\"}", schema.getJsonSchema());

    assertEquals(StructuredOutput.FormatCase.JSON_OBJECT, Requests.jsonObject().getFormatCase());

    StructuredOutput regex = Requests.regex("[0-9]{4}");
    assertEquals("[0-9]{4}", regex.getRegex());

    StructuredOutput lark = Requests.larkGrammar("start: \"yes\" | \"no\"");
    assertEquals(Grammar.Syntax.SYNTAX_LARK, lark.getGrammar().getSyntax());
    assertEquals("start: \"yes\" | \"no\"", lark.getGrammar().getText());

    StructuredOutput gbnf = Requests.gbnfGrammar("root ::= \"yes\" | \"no\"");
    assertEquals(Grammar.Syntax.SYNTAX_GBNF, gbnf.getGrammar().getSyntax());
    assertEquals("root ::= \"yes\" | \"no\"", gbnf.getGrammar().getText());

    assertEquals(List.of("red", "green"), Requests.choice("red", "green").getChoice().getOptionsList());
    assertEquals(List.of("blue"), Requests.choice(List.of("blue")).getChoice().getOptionsList());

    assertEquals(StructuredOutput.FormatCase.GRAMMAR,
        Requests.grammar(Grammar.Syntax.SYNTAX_LARK, "start: \"a\"").getFormatCase());
  }

  @Test
  void kindOfMapsEachFormatToWhatModelInfoAdvertises() {
    assertEquals(StructuredOutputKind.STRUCTURED_OUTPUT_KIND_JSON_SCHEMA, Requests.kindOf(Requests.jsonSchema("{}")));
    assertEquals(StructuredOutputKind.STRUCTURED_OUTPUT_KIND_JSON_OBJECT, Requests.kindOf(Requests.jsonObject()));
    assertEquals(StructuredOutputKind.STRUCTURED_OUTPUT_KIND_REGEX, Requests.kindOf(Requests.regex("a")));
    assertEquals(StructuredOutputKind.STRUCTURED_OUTPUT_KIND_GRAMMAR_LARK, Requests.kindOf(Requests.larkGrammar("x")));
    assertEquals(StructuredOutputKind.STRUCTURED_OUTPUT_KIND_GRAMMAR_GBNF, Requests.kindOf(Requests.gbnfGrammar("x")));
    assertEquals(StructuredOutputKind.STRUCTURED_OUTPUT_KIND_CHOICE, Requests.kindOf(Requests.choice("a")));
    assertEquals(StructuredOutputKind.STRUCTURED_OUTPUT_KIND_UNSPECIFIED,
        Requests.kindOf(StructuredOutput.getDefaultInstance()));
    assertEquals(StructuredOutputKind.STRUCTURED_OUTPUT_KIND_UNSPECIFIED,
        Requests.kindOf(Requests.grammar(Grammar.Syntax.SYNTAX_UNSPECIFIED, "x")));
  }

  @Test
  void samplingAndLogitBias() {
    SamplingParams sampled = Requests.sampling(1.0f, 7);
    assertEquals(1.0f, sampled.getTemperature());
    assertEquals(7, sampled.getSeed());

    SamplingParams biased = Requests.logitBias(Requests.greedy(), Map.of(5, -100f, 9, 100f));
    assertTrue(biased.hasTemperature());
    assertEquals(0f, biased.getTemperature());
    assertEquals(Map.of(5, -100f, 9, 100f), biased.getLogitBiasMap());
    // Later entries replace earlier ones for the same id.
    assertEquals(Map.of(5, 1f, 9, 100f), Requests.logitBias(biased, Map.of(5, 1f)).getLogitBiasMap());
    assertThrows(IllegalArgumentException.class, () -> Requests.logitBias(Requests.greedy(), Map.of(-1, 1f)));

    assertEquals(3, Requests.chat("hi").setN(3).build().getN());
    assertEquals(1, Accumulator.samples(Requests.chat("hi").build()));
    assertEquals(1, Accumulator.samples(Requests.chat("hi").setN(0).build()));
    assertEquals(16, Accumulator.samples(Requests.chat("hi").setN(16).build()));
  }

  @Test
  void isCompleteForEveryFinishReason() {
    EnumSet<FinishReason> complete = EnumSet.of(
        FinishReason.FINISH_REASON_END_OF_SEQUENCE, FinishReason.FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE);
    for (FinishReason reason : FinishReason.values()) {
      if (reason == FinishReason.UNRECOGNIZED) {
        continue;
      }
      GenerationResult result =
          new GenerationResult("r", "", List.of(), Finished.newBuilder().setReason(reason).build());
      assertEquals(complete.contains(reason), result.isComplete(), reason.name());
    }
    assertFalse(new GenerationResult("r", "", List.of(), Finished.newBuilder().setReasonValue(99).build()).isComplete());
  }
}
