// Run by Maven (pom.xml, execution "java-proto-options") as a single-file program of the JDK
// that runs Maven, before protoc:
//   java codegen/JavaProtoOptions.java <proto root> <output root> <java package prefix>
//
// protos/ sets no Java options (Go, Python, TypeScript and Rust get theirs from buf's managed
// mode). This copies every .proto file under <proto root> to <output root> (target/protos) and
// appends the three Java file options that buf's managed mode gave the Java code before it was
// generated at build time, so the classes keep their names:
//   option java_package = "<prefix>.<proto package>";      // tokenwire.v1 -> dev.tokenwire.v1
//   option java_multiple_files = true;                     // one class per message
//   option java_outer_classname = "<PascalCaseFileName>Proto";  // generation.proto -> GenerationProto
// Nothing else changes: no line moves, so protoc's messages point at the right lines. Files are
// rewritten only when their content changes, and copies whose source is gone are deleted.
// Imports that are not under <proto root> (google/rpc/status.proto, google/protobuf/*.proto)
// come from the dependencies' jars and keep their own options.

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

public final class JavaProtoOptions {
  private static final Pattern PACKAGE =
      Pattern.compile("^\\s*package\\s+([A-Za-z_][A-Za-z0-9_.]*)\\s*;", Pattern.MULTILINE);
  private static final Pattern JAVA_OPTION =
      Pattern.compile("^\\s*option\\s+(java_package|java_multiple_files|java_outer_classname)\\b",
          Pattern.MULTILINE);

  private JavaProtoOptions() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 3) {
      System.err.println("usage: java JavaProtoOptions.java <proto root> <output root> <java package prefix>");
      System.exit(2);
    }
    Path source = Path.of(args[0]).toAbsolutePath().normalize();
    Path output = Path.of(args[1]).toAbsolutePath().normalize();
    String prefix = args[2];

    List<Path> protos = protoFiles(source);
    if (protos.isEmpty()) {
      throw new IllegalStateException("no .proto files under " + source);
    }
    Set<Path> written = new HashSet<>();
    int changed = 0;
    for (Path proto : protos) {
      Path relative = source.relativize(proto);
      Path target = output.resolve(relative);
      String text = withJavaOptions(relative, Files.readString(proto, StandardCharsets.UTF_8), prefix);
      written.add(target);
      if (Files.exists(target) && Files.readString(target, StandardCharsets.UTF_8).equals(text)) {
        continue;
      }
      Files.createDirectories(target.getParent());
      Files.writeString(target, text, StandardCharsets.UTF_8);
      changed++;
    }
    int removed = 0;
    if (Files.isDirectory(output)) {
      for (Path stale : protoFiles(output)) {
        if (!written.contains(stale)) {
          Files.delete(stale);
          removed++;
        }
      }
    }
    System.out.printf("JavaProtoOptions: %d .proto files in %s (%d written, %d stale removed)%n",
        protos.size(), output, changed, removed);
  }

  private static List<Path> protoFiles(Path root) throws IOException {
    try (Stream<Path> files = Files.walk(root)) {
      List<Path> protos = new ArrayList<>();
      files.filter(p -> Files.isRegularFile(p) && p.toString().endsWith(".proto")).sorted().forEach(protos::add);
      return protos;
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }

  static String withJavaOptions(Path relative, String text, String prefix) {
    Matcher javaOption = JAVA_OPTION.matcher(text);
    if (javaOption.find()) {
      throw new IllegalStateException(relative + " sets " + javaOption.group(1)
          + " itself: drop the Java build's own options (clients/java/codegen/JavaProtoOptions.java)");
    }
    Matcher packageName = PACKAGE.matcher(text);
    if (!packageName.find()) {
      throw new IllegalStateException(relative + " has no package statement");
    }
    String fileName = relative.getFileName().toString();
    String outerClass = pascalCase(fileName.substring(0, fileName.length() - ".proto".length())) + "Proto";
    StringBuilder out = new StringBuilder(text);
    if (!text.isEmpty() && !text.endsWith("\n")) {
      out.append('\n');
    }
    out.append("// Added by clients/java/codegen/JavaProtoOptions.java for the Java build only.\n")
        .append("option java_package = \"").append(prefix).append('.').append(packageName.group(1)).append("\";\n")
        .append("option java_multiple_files = true;\n")
        .append("option java_outer_classname = \"").append(outerClass).append("\";\n");
    return out.toString();
  }

  // generation -> Generation, model_info -> ModelInfo, foo-bar.v2 -> FooBarV2 (as buf names them).
  static String pascalCase(String name) {
    StringBuilder out = new StringBuilder();
    for (String part : name.split("[^A-Za-z0-9]+")) {
      if (!part.isEmpty()) {
        out.append(part.substring(0, 1).toUpperCase(Locale.ROOT)).append(part.substring(1));
      }
    }
    return out.toString();
  }
}
