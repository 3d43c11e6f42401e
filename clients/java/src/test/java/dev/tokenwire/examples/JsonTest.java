package dev.tokenwire.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class JsonTest {
  @Test
  void quotesAsAsciiJson() {
    assertEquals("\" The \\\"sky\\\"\\n\\\\ \\u00e9\\ud83d\\ude00\"", Json.quote(" The \"sky\"\n\\ é😀"));
  }
}
