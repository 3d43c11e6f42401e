package dev.tokenwire.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class StructuredExampleTest {
  @Test
  void schemaIsTheSharedExampleSchemaOnOneLine() {
    assertEquals("{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\", \"maxLength\": 40}, "
        + "\"birth_year\": {\"type\": \"integer\", \"minimum\": 1000, \"maximum\": 2100}, "
        + "\"city\": {\"type\": \"string\", \"maxLength\": 40}}, \"required\": [\"name\", \"birth_year\", \"city\"], "
        + "\"additionalProperties\": false}", StructuredExample.SCHEMA);
  }
}
