package io.github.tilewise.it.bench;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import io.github.tilewise.djl.lowp.Precision;
import io.github.tilewise.tribuo.TilewiseBERTFeatureExtractor;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.tribuo.classification.Label;
import org.tribuo.classification.LabelFactory;
import org.tribuo.data.text.TextFeatureExtractor;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor;
import org.tribuo.interop.onnx.extractors.BERTFeatureExtractor.OutputPooling;

/**
 * Issue 5's benchmark: Tribuo feature extraction of texts of about 100 word pieces with
 * all-MiniLM-L6-v2, by Tribuo's {@link BERTFeatureExtractor} (ONNX Runtime, one text per call) and
 * by {@link TilewiseBERTFeatureExtractor} one text per call (as Tribuo's data sources call it) and
 * through its batch API, in the same run. One line per case:
 *
 * <pre>
 * tribuo-extract extractor=&lt;class&gt; precision=&lt;p&gt; texts=1000 s=&lt;seconds&gt; texts_per_s=&lt;x&gt; mode=&lt;single|batch&gt;
 * </pre>
 *
 * <p>Arguments: {@code [texts] [batchSize] [precisions] [block]} (default 1000, 32, {@code
 * fp32,int8} and 50; precisions any of {@code fp32,int8,int8_weight_only,bf16,fp16}). All
 * extractors are loaded first; {@code single} runs them in turns of {@code block} texts each.
 */
public final class TribuoExtractBenchmark {

    private static final int WARM_UP = 20;

    private TribuoExtractBenchmark() {}

    /**
     * Runs the benchmark.
     *
     * @param args optional text count and batch size
     * @throws Exception if a model cannot be loaded
     */
    public static void main(String[] args) throws Exception {
        int count = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
        int batchSize = args.length > 1 ? Integer.parseInt(args[1]) : 32;
        List<Precision> precisions = new ArrayList<>();
        for (String p : (args.length > 2 ? args[2] : "fp32,int8").split(",")) {
            precisions.add(Precision.fromName(p));
        }
        int block = args.length > 3 ? Integer.parseInt(args[3]) : 50;
        Path dir = Files.createTempDirectory("tribuo-extract-bench");
        Path model = copy("all-minilm-l6-v2.onnx", dir);
        Path tokenizer = copy("all-minilm-l6-v2-tokenizer.json", dir);
        Path tribuoModel = withTribuoOutputs(model, dir.resolve("all-minilm-l6-v2-tribuo.onnx"));
        List<String> texts = texts(count, 7);
        LabelFactory factory = new LabelFactory();

        List<String> names = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        List<TextFeatureExtractor<Label>> extractors = new ArrayList<>();
        List<TilewiseBERTFeatureExtractor<Label>> dropIns = new ArrayList<>();
        try {
            extractors.add(
                    new BERTFeatureExtractor<>(
                            factory, tribuoModel, tokenizer, OutputPooling.MEAN, 512, false));
            names.add("BERTFeatureExtractor");
            labels.add("fp32");
            for (Precision precision : precisions) {
                TilewiseBERTFeatureExtractor<Label> dropIn;
                try {
                    dropIn =
                            new TilewiseBERTFeatureExtractor<>(
                                    factory,
                                    model,
                                    tokenizer,
                                    OutputPooling.MEAN,
                                    512,
                                    false,
                                    precision,
                                    batchSize);
                } catch (RuntimeException e) {
                    System.out.println("# precision " + precision + " skipped: " + e.getMessage());
                    continue;
                }
                extractors.add(dropIn);
                dropIns.add(dropIn);
                names.add("TilewiseBERTFeatureExtractor");
                labels.add(precision.name().toLowerCase(Locale.ROOT));
            }
            if (!dropIns.isEmpty()) {
                // Both extractors split texts the same way.
                TilewiseBERTFeatureExtractor<Label> first = dropIns.get(0);
                System.out.printf(
                        Locale.ROOT,
                        "# mean word pieces per text: %.1f%n",
                        texts.stream().mapToInt(t -> first.tokenize(t).size()).average().orElse(0));
            }
            single(names, labels, extractors, texts, block);
            for (int i = 0; i < extractors.size(); i++) {
                if (extractors.get(i) instanceof TilewiseBERTFeatureExtractor) {
                    TilewiseBERTFeatureExtractor<Label> dropIn =
                            (TilewiseBERTFeatureExtractor<Label>) extractors.get(i);
                    dropIn.embed(texts.subList(0, Math.min(texts.size(), batchSize)));
                    long start = System.nanoTime();
                    dropIn.embed(texts);
                    double s = (System.nanoTime() - start) / 1e9;
                    report(names.get(i), labels.get(i), texts.size(), s, "batch");
                }
            }
        } finally {
            for (TextFeatureExtractor<Label> e : extractors) {
                ((AutoCloseable) e).close();
            }
        }
    }

    /**
     * One {@code extract} call per text, the extractors in turns of {@code block} texts (so that a
     * change in the machine's load reaches every extractor alike), after {@value #WARM_UP} warm-up
     * calls each.
     */
    private static void single(
            List<String> names,
            List<String> labels,
            List<TextFeatureExtractor<Label>> extractors,
            List<String> texts,
            int block) {
        Label label = new Label("x");
        for (TextFeatureExtractor<Label> extractor : extractors) {
            for (int i = 0; i < WARM_UP; i++) {
                extractor.extract(label, texts.get(i % texts.size()));
            }
        }
        long[] nanos = new long[extractors.size()];
        for (int from = 0; from < texts.size(); from += block) {
            List<String> part = texts.subList(from, Math.min(texts.size(), from + block));
            for (int e = 0; e < extractors.size(); e++) {
                TextFeatureExtractor<Label> extractor = extractors.get(e);
                long start = System.nanoTime();
                for (String text : part) {
                    extractor.extract(label, text);
                }
                nanos[e] += System.nanoTime() - start;
            }
        }
        for (int e = 0; e < extractors.size(); e++) {
            report(names.get(e), labels.get(e), texts.size(), nanos[e] / 1e9, "single");
        }
    }

    private static void report(String name, String precision, int n, double s, String mode) {
        System.out.printf(
                Locale.ROOT,
                "tribuo-extract extractor=%s precision=%s texts=%d s=%.3f texts_per_s=%.1f"
                        + " mode=%s%n",
                name,
                precision,
                n,
                s,
                n / s,
                mode);
    }

    /** Texts of 60 to 90 words from a fixed list: about 100 word pieces each. */
    static List<String> texts(int count, long seed) {
        String[] words =
                ("the quick brown fox jumps over a lazy dog while researchers measure throughput"
                                + " of transformer encoders on ordinary processors using integer"
                                + " arithmetic and careful memory layouts, tokenization splits"
                                + " unfamiliar words into pieces such as unbelievably"
                                + " internationalization or photosynthesis; numbers like 2024 and"
                                + " 3.14 appear too")
                        .split(" ");
        Random random = new Random(seed);
        List<String> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            int n = 60 + random.nextInt(31);
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < n; w++) {
                sb.append(w == 0 ? "" : " ").append(words[random.nextInt(words.length)]);
            }
            out.add(sb.toString());
        }
        return out;
    }

    private static Path copy(String resource, Path dir) throws IOException {
        Path target = dir.resolve(resource);
        try (InputStream in =
                TribuoExtractBenchmark.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException(resource + " is not on the class path");
            }
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
        }
        target.toFile().deleteOnExit();
        return target;
    }

    /**
     * A copy of the graph with the outputs Tribuo's extractor insists on: {@code output_0} (the
     * last hidden state) and {@code output_1} (the first token's, since the model has no pooler).
     */
    private static Path withTribuoOutputs(Path model, Path target) throws IOException {
        ModelProto proto = ModelProto.parseFrom(Files.readAllBytes(model));
        GraphProto graph = proto.getGraph();
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
                                        .setOpType("Identity")
                                        .addInput("last_hidden_state")
                                        .addOutput("output_0"))
                        .addNode(
                                NodeProto.newBuilder()
                                        .setOpType("Gather")
                                        .addInput("last_hidden_state")
                                        .addInput("tribuo_first_position")
                                        .addOutput("output_1")
                                        .addAttribute(
                                                AttributeProto.newBuilder()
                                                        .setName("axis")
                                                        .setType(AttributeProto.AttributeType.INT)
                                                        .setI(1)))
                        .addOutput(last.toBuilder().setName("output_0"))
                        .addOutput(
                                ValueInfoProto.newBuilder().setName("output_1").setType(firstType));
        Files.write(target, proto.toBuilder().setGraph(edited).build().toByteArray());
        target.toFile().deleteOnExit();
        return target;
    }
}
