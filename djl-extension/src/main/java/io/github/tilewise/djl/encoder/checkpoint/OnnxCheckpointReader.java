package io.github.tilewise.djl.encoder.checkpoint;

import static io.github.tilewise.djl.encoder.checkpoint.OnnxNodes.input;
import static io.github.tilewise.djl.encoder.checkpoint.OnnxNodes.output;

import ai.djl.MalformedModelException;
import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import io.github.tilewise.djl.encoder.EncoderArchitecture;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.HiddenActivation;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads an encoder from an ONNX file as exported by {@code torch.onnx} or Hugging Face Optimum,
 * mapping its initializers onto Hugging Face tensor names.
 *
 * <p>Named initializers ({@code embeddings.word_embeddings.weight}, the biases, layer norms, a
 * pooler exported as {@code Gemm}) keep their names, without a {@code bert.} prefix. The linear
 * weights of such exports are usually anonymous ({@code onnx::MatMul_787}, {@code 182}) and stored
 * transposed ({@code [in, out]}): each is named after the bias {@code Add} that follows its {@code
 * MatMul} ({@code encoder.layer.0.attention.self.query.bias} names {@code ...query.weight}) and
 * transposed to {@code [out, in]}.
 *
 * <p>With the export's {@code config.json} beside the file (as transformers and Optimum write it),
 * every {@link io.github.tilewise.djl.encoder.EncoderArchitecture} loads: the configuration is read
 * from it and the initializers are only the weights, mapped and checked exactly as a {@code
 * model.safetensors} would be ({@link HuggingFaceCheckpointReader}). Names may carry any prefix
 * (found before the word-embedding table's name); weights behind a {@code Transpose} keep their
 * parameter name; anonymous ones are named after their bias, or, for layers without bias
 * (ModernBERT, whose exports fold the transposes into anonymous {@code val_N} initializers), by
 * their position in the chain of linear layers.
 *
 * <p>Without {@code config.json}, the configuration of a BERT export is read off the graph: sizes
 * from the tables, the number of heads from the constants of the {@code Reshape} that splits the
 * query into heads (checked against the score scale {@code 1/√headDim}), the layer-norm epsilon
 * from {@code LayerNormalization} or the decomposed pattern {@code (x − mean)/√(var + eps)}, the
 * activation from the feed-forward's ops ({@code Erf}: GELU, {@code Tanh}: tanh-GELU, {@code
 * Relu}). Contradictions are errors.
 *
 * <p>Every initializer's dims and data length are checked ({@link CheckpointLimits}) before it is
 * widened, and nodes are read through {@link OnnxNodes}, so a crafted file ends in a {@link
 * MalformedModelException} naming the file and the tensor, never in an allocation it merely claims.
 */
public final class OnnxCheckpointReader {

    // At most 9 digits: a longer index cannot be a layer, and must not overflow parseInt.
    private static final Pattern LAYER = Pattern.compile("^encoder\\.layer\\.(\\d{1,9})\\.");
    private static final String WORDS = "embeddings.word_embeddings.weight";
    private static final String MODERN_WORDS = "embeddings.tok_embeddings.weight";
    private static final Pattern MODERN_LAYER = Pattern.compile("^layers\\.(\\d{1,9})\\.");

    private final Path file;
    private final Map<String, TensorProto> initializers = new LinkedHashMap<>();
    private final Map<String, TensorProto> constants = new HashMap<>();
    private final Map<String, NodeProto> producers = new HashMap<>();
    private final Map<String, List<NodeProto>> consumers = new HashMap<>();
    private final Map<String, CheckpointTensor> tensors = new LinkedHashMap<>();
    private String prefix = "";

    private OnnxCheckpointReader(Path file) {
        this.file = file;
    }

    /**
     * Reads an ONNX file.
     *
     * @param file the {@code .onnx} file
     * @return the checkpoint
     * @throws IOException if the file is missing or unreadable
     * @throws MalformedModelException naming the file and the problem if it is not a valid ONNX
     *     model, uses external data, or is not a BERT-family encoder this reader can map
     */
    public static EncoderCheckpoint read(Path file) throws IOException, MalformedModelException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such ONNX model file");
        }
        long size = Files.size(file);
        if (size >= Integer.MAX_VALUE) {
            throw new MalformedModelException(
                    file
                            + ": "
                            + size
                            + " bytes; ONNX files over 2 GB (external data) are not supported");
        }
        ModelProto model;
        try (InputStream is = Files.newInputStream(file)) {
            CodedInputStream in = CodedInputStream.newInstance(is);
            in.setSizeLimit(Integer.MAX_VALUE);
            model = ModelProto.parseFrom(in);
        } catch (InvalidProtocolBufferException e) {
            throw new MalformedModelException(
                    file + ": not a valid ONNX model (truncated or corrupt): " + e.getMessage(), e);
        }
        if (!model.hasGraph() || model.getGraph().getNodeCount() == 0) {
            throw new MalformedModelException(
                    file + ": not a valid ONNX model (no graph; truncated or not ONNX)");
        }
        return new OnnxCheckpointReader(file).map(model.getGraph());
    }

    /**
     * Finds the ONNX file in a model directory: {@code model.onnx}, else the only {@code .onnx}
     * file.
     *
     * @param dir the directory
     * @return the file
     * @throws IOException if there is none or several
     */
    static Path findOnnxFile(Path dir) throws IOException {
        Path preferred = dir.resolve("model.onnx");
        if (Files.isRegularFile(preferred)) {
            return preferred;
        }
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.onnx")) {
            ds.forEach(found::add);
        }
        if (found.size() != 1) {
            throw new NoSuchFileException(
                    dir.toString(),
                    null,
                    found.isEmpty()
                            ? "no model.onnx, no .onnx file and no config.json + model.safetensors"
                            : "several .onnx files " + found + ": give the file itself");
        }
        return found.get(0);
    }

    private EncoderCheckpoint map(GraphProto graph) throws IOException, MalformedModelException {
        for (TensorProto t : graph.getInitializerList()) {
            if (t.getDataLocation() == TensorProto.DataLocation.EXTERNAL
                    || t.getExternalDataCount() > 0) {
                throw bad(
                        "initializer "
                                + t.getName()
                                + " is stored as external data; ONNX files with external data are"
                                + " not supported");
            }
            checkDataType(t);
            initializers.put(t.getName(), t);
        }
        for (NodeProto n : graph.getNodeList()) {
            if (!n.getDomain().isEmpty() && !"ai.onnx".equals(n.getDomain())) {
                throw bad(
                        "node "
                                + n.getName()
                                + " uses the custom operator "
                                + n.getDomain()
                                + "."
                                + n.getOpType()
                                + ": optimised (fused) graphs are not supported, export without"
                                + " ONNX Runtime optimisations");
            }
            for (String out : n.getOutputList()) {
                producers.put(out, n);
            }
            for (String in : n.getInputList()) {
                consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
            }
            if ("Constant".equals(n.getOpType())) {
                for (AttributeProto a : n.getAttributeList()) {
                    if ("value".equals(a.getName()) && a.hasT()) {
                        checkDataType(a.getT());
                        constants.put(output(n, 0), a.getT());
                    }
                }
            }
        }
        Path dir = file.toAbsolutePath().getParent();
        String modelType = HuggingFaceCheckpointReader.modelTypeIn(dir);
        if (modelType != null) {
            // The export's own config.json: the initializers are only the weights.
            prefix = prefixBefore(List.of(WORDS, MODERN_WORDS));
            collectNamedTensors();
            List<NodeProto> unnamed = collectLinearWeights(graph, true);
            if (!unnamed.isEmpty()) {
                nameInComputeOrder(modelType, unnamed);
            }
            return HuggingFaceCheckpointReader.read(dir, file, tensors);
        }
        if (graph.getNodeList().stream().anyMatch(n -> "CumSum".equals(n.getOpType()))) {
            throw bad(
                    "the graph numbers positions from the padding (CumSum: RoBERTa, XLM-RoBERTa,"
                            + " MPNet), which the configuration inferred from a BERT graph"
                            + " cannot express: put the model's config.json beside the file");
        }
        findPrefix();
        collectNamedTensors();
        collectLinearWeights(graph, false);
        EncoderConfig config = inferConfig(graph);
        return new EncoderCheckpoint(
                file, config, tensors, "the configuration inferred from the graph");
    }

    /**
     * The prefix of the first initializer named {@code <prefix><one of names>} (a task model's
     * {@code bert.}, a wrapper's {@code m.}), or none.
     */
    private String prefixBefore(List<String> names) {
        for (String name : initializers.keySet()) {
            for (String table : names) {
                if (name.endsWith(table)) {
                    return name.substring(0, name.length() - table.length());
                }
            }
        }
        return "";
    }

    /**
     * Names the weights of layers without bias by their order in the graph. ONNX nodes are
     * topologically sorted and an encoder's linear layers form one chain of data dependencies, so
     * the k-th such weight is the k-th in {@link TensorNames#unbiasedLinearsInOrder}; the shapes
     * are checked against the configuration afterwards.
     */
    private void nameInComputeOrder(String modelType, List<NodeProto> unnamed)
            throws MalformedModelException {
        EncoderArchitecture architecture;
        try {
            architecture = EncoderArchitecture.fromModelType(modelType);
        } catch (IllegalArgumentException e) {
            return; // the Hugging Face reader names the unknown model_type
        }
        Set<Integer> layers = new TreeSet<>();
        for (String name : tensors.keySet()) {
            Matcher m = MODERN_LAYER.matcher(name);
            if (m.find()) {
                layers.add(Integer.parseInt(m.group(1)));
            }
        }
        List<String> expected = new ArrayList<>();
        for (String name : TensorNames.unbiasedLinearsInOrder(architecture, layers.size())) {
            if (!tensors.containsKey(name)) {
                expected.add(name);
            }
        }
        if (expected.size() != unnamed.size()) {
            NodeProto first = unnamed.get(0);
            if (TensorNames.unbiasedLinearsInOrder(architecture, 1).isEmpty()) {
                throw bad(
                        "cannot identify the layer of MatMul node "
                                + first.getName()
                                + " (weight "
                                + input(first, 1)
                                + "): no Add of a named bias follows it, and every linear layer"
                                + " of a "
                                + modelType
                                + " has one");
            }
            throw bad(
                    "cannot identify the layer of MatMul node "
                            + first.getName()
                            + " (weight "
                            + input(first, 1)
                            + "): no Add of a named bias follows it, and the graph has "
                            + unnamed.size()
                            + " such weights where a "
                            + modelType
                            + " of "
                            + layers.size()
                            + " layers has "
                            + expected.size());
        }
        for (int i = 0; i < unnamed.size(); i++) {
            TensorProto w = initializers.get(input(unnamed.get(i), 1));
            String name = expected.get(i);
            tensors.put(name, new CheckpointTensor(name, dims(w), floats(w)).transpose(name));
        }
    }

    private void findPrefix() throws MalformedModelException {
        for (String name : initializers.keySet()) {
            if (name.endsWith(WORDS)) {
                prefix = name.substring(0, name.length() - WORDS.length());
                return;
            }
        }
        throw bad(
                "unknown architecture: no initializer named *"
                        + WORDS
                        + ", so this is not a BERT-family encoder export");
    }

    private void collectNamedTensors() throws MalformedModelException {
        for (TensorProto t : initializers.values()) {
            String name = t.getName();
            if (!name.contains(".") || name.startsWith("onnx::")) {
                continue;
            }
            if (!isFloat(t)) {
                if (!isInteger(t)) {
                    throw bad(
                            "initializer "
                                    + name
                                    + ": data_type "
                                    + TensorProto.DataType.forNumber(t.getDataType())
                                    + " is not supported (FLOAT, FLOAT16 or BFLOAT16 weights)");
                }
                continue; // integer buffers (position_ids) are not weights
            }
            String hf = name.startsWith(prefix) ? name.substring(prefix.length()) : name;
            tensors.put(hf, new CheckpointTensor(hf, dims(t), floats(t)));
        }
    }

    /**
     * Names each MatMul/Gemm weight after the bias added to its output. With {@code allowUnbiased},
     * MatMuls of a weight with no bias after them are returned (in graph order) instead of refused.
     */
    private List<NodeProto> collectLinearWeights(GraphProto graph, boolean allowUnbiased)
            throws MalformedModelException {
        List<NodeProto> unbiased = new ArrayList<>();
        for (NodeProto n : graph.getNodeList()) {
            boolean gemm = "Gemm".equals(n.getOpType());
            if (!gemm && !"MatMul".equals(n.getOpType())) {
                continue;
            }
            TensorProto w = initializers.get(input(n, 1));
            if (w == null || w.getDimsCount() != 2 || !isFloat(w)) {
                continue; // activation x activation products (attention scores)
            }
            String biasName;
            boolean transposed; // stored [in, out]
            if (gemm) {
                biasName = input(n, 2);
                if (!initializers.containsKey(biasName)) {
                    throw bad("Gemm node " + n.getName() + " has no bias initializer");
                }
                transposed = attrInt(n, "transB", 0) == 0;
                if (attrInt(n, "transA", 0) != 0
                        || attrFloat(n, "alpha", 1f) != 1f
                        || attrFloat(n, "beta", 1f) != 1f) {
                    throw bad(
                            "Gemm node "
                                    + n.getName()
                                    + " uses transA/alpha/beta, not a linear layer");
                }
            } else {
                biasName = biasAddedTo(output(n, 0));
                transposed = true;
                if (biasName == null && allowUnbiased) {
                    unbiased.add(n);
                    continue;
                }
                if (biasName == null) {
                    throw bad(
                            "cannot identify the layer of MatMul node "
                                    + n.getName()
                                    + " (weight "
                                    + w.getName()
                                    + "): no Add of a named bias follows it (layers without"
                                    + " bias, as in ModernBERT, are identified with the"
                                    + " export's config.json beside the file)");
                }
            }
            if (!biasName.endsWith(".bias")) {
                throw bad(
                        "cannot identify the layer of "
                                + n.getOpType()
                                + " node "
                                + n.getName()
                                + ": its bias is named '"
                                + biasName
                                + "', not <layer>.bias");
            }
            String layer = biasName.substring(0, biasName.length() - ".bias".length());
            if (layer.startsWith(prefix)) {
                layer = layer.substring(prefix.length());
            }
            String weightName = layer + ".weight";
            CheckpointTensor raw = new CheckpointTensor(weightName, dims(w), floats(w));
            CheckpointTensor weight = transposed ? raw.transpose(weightName) : raw;
            CheckpointTensor previous = tensors.put(weightName, weight);
            if (previous != null
                    && !previous.getName().equals(w.getName())
                    && !Arrays.equals(previous.getShape(), weight.getShape())) {
                throw bad("two weights map to " + weightName);
            }
        }
        return unbiased;
    }

    /** Returns the name of the 1-D float initializer added to {@code value}, or null. */
    private String biasAddedTo(String value) {
        for (NodeProto c : consumers.getOrDefault(value, List.of())) {
            if (!"Add".equals(c.getOpType())) {
                continue;
            }
            for (String in : c.getInputList()) {
                TensorProto t = initializers.get(in);
                if (!in.equals(value) && t != null && t.getDimsCount() == 1 && isFloat(t)) {
                    return in;
                }
            }
        }
        return null;
    }

    private EncoderConfig inferConfig(GraphProto graph) throws MalformedModelException {
        // Matrices' dims are at most CheckpointLimits.MAX_ELEMENTS, so they fit an int.
        long[] words = matrix(WORDS);
        int hidden = (int) words[1];
        long[] positions = matrix("embeddings.position_embeddings.weight");
        String typesName = "embeddings.token_type_embeddings.weight";
        long[] types = tensors.containsKey(typesName) ? matrix(typesName) : null;
        Set<Integer> layerIds = new TreeSet<>();
        for (String name : tensors.keySet()) {
            Matcher m = LAYER.matcher(name);
            if (m.find()) {
                layerIds.add(Integer.parseInt(m.group(1)));
            }
        }
        int layers = layerIds.size();
        if (layers == 0 || !layerIds.equals(rangeSet(layers))) {
            throw bad("expected encoder.layer.0 .. encoder.layer.N-1, found layers " + layerIds);
        }
        long[] inter = matrix("encoder.layer.0.intermediate.dense.weight");
        int heads = inferHeads(hidden);
        float eps = inferEps(graph);
        HiddenActivation activation = inferActivation();
        List<String> labels = new ArrayList<>();
        if (tensors.containsKey("classifier.weight")) {
            long rows = matrix("classifier.weight")[0];
            int n =
                    CheckpointLimits.inRange(
                            file, "classifier rows", rows, 1, EncoderConfig.MAX_LABELS);
            for (int i = 0; i < n; i++) {
                labels.add("LABEL_" + i);
            }
        }
        try {
            return EncoderConfig.builder()
                    .setHiddenSize(hidden)
                    .setNumHeads(heads)
                    .setNumLayers(layers)
                    .setIntermediateSize((int) inter[0])
                    .setMaxPositions((int) positions[0])
                    .setVocabSize((int) words[0])
                    .optTypeVocabSize(types == null ? 0 : (int) types[0])
                    .optLayerNormEps(eps)
                    .optActivation(activation)
                    .optPooler(tensors.containsKey("pooler.dense.weight"))
                    .optLabels(labels)
                    .build();
        } catch (IllegalArgumentException e) {
            throw bad("inconsistent configuration: " + e.getMessage());
        }
    }

    /**
     * Heads from the Reshape of the query projection ({@code [B, S, heads, headDim]}), checked
     * against the score scale constant ({@code √headDim} divisor or {@code 1/√headDim} factor).
     */
    private int inferHeads(int hidden) throws MalformedModelException {
        String queryBias = prefix + "encoder.layer.0.attention.self.query.bias";
        String queryOut = null;
        for (NodeProto c : consumers.getOrDefault(queryBias, List.of())) {
            if ("Add".equals(c.getOpType())) {
                queryOut = output(c, 0);
            }
        }
        if (queryOut == null) {
            throw bad("cannot find the query projection of layer 0 (Add of " + queryBias + ")");
        }
        Integer fromReshape = null;
        for (NodeProto c : consumers.getOrDefault(queryOut, List.of())) {
            if ("Reshape".equals(c.getOpType())) {
                long[] shape = resolveShape(input(c, 1));
                if (shape != null && shape.length == 4 && shape[2] > 0) {
                    fromReshape =
                            CheckpointLimits.inRange(
                                    file,
                                    "the head count of the query Reshape",
                                    shape[2],
                                    1,
                                    EncoderConfig.MAX_HEADS);
                    // Compared by division: shape[2] * shape[3] may overflow.
                    if (shape[3] > 0 && (hidden % shape[2] != 0 || hidden / shape[2] != shape[3])) {
                        throw bad(
                                "the query Reshape splits hidden size "
                                        + hidden
                                        + " into "
                                        + shape[2]
                                        + " heads of "
                                        + shape[3]);
                    }
                } else if (shape != null
                        && shape.length == 4
                        && shape[3] > 0
                        && shape[3] <= hidden) {
                    fromReshape = (int) (hidden / shape[3]);
                }
            }
        }
        Integer fromScale = headsFromScale(hidden);
        if (fromReshape != null && fromScale != null && !fromReshape.equals(fromScale)) {
            throw bad(
                    "contradiction: the query Reshape gives "
                            + fromReshape
                            + " heads but the score scale gives "
                            + fromScale);
        }
        Integer heads = fromReshape != null ? fromReshape : fromScale;
        if (heads == null) {
            throw bad("cannot infer the number of attention heads from the graph");
        }
        return heads;
    }

    /** Finds the Div by √d (or Mul by 1/√d) applied to layer 0's attention scores. */
    private Integer headsFromScale(int hidden) throws MalformedModelException {
        for (NodeProto n : producers.values()) {
            if (!"Softmax".equals(n.getOpType())) {
                continue;
            }
            // Walk back from the softmax through Add (mask) to the Div/Mul by the scale.
            Deque<String> todo = new ArrayDeque<>(n.getInputList());
            int steps = 0;
            while (!todo.isEmpty() && steps++ < 6) {
                NodeProto p = producers.get(todo.poll());
                if (p == null) {
                    continue;
                }
                if ("Div".equals(p.getOpType()) || "Mul".equals(p.getOpType())) {
                    float[] c = scalar(input(p, 1));
                    if (c != null && c.length == 1 && c[0] > 0) {
                        double d = "Div".equals(p.getOpType()) ? c[0] * c[0] : 1.0 / (c[0] * c[0]);
                        long headDim = Math.round(d);
                        if (headDim > 0
                                && Math.abs(d - headDim) < 1e-2 * headDim
                                && hidden % headDim == 0) {
                            return (int) (hidden / headDim);
                        }
                    }
                }
                if ("Add".equals(p.getOpType())) {
                    todo.addAll(p.getInputList());
                }
            }
            return null; // one softmax suffices: every layer uses the same scale
        }
        return null;
    }

    private float inferEps(GraphProto graph) throws MalformedModelException {
        Map<String, Float> eps = new LinkedHashMap<>();
        for (String name : tensors.keySet()) {
            if (!name.endsWith("LayerNorm.weight")) {
                continue;
            }
            Float e = epsOf(prefix + name);
            if (e == null) {
                throw bad("cannot find the epsilon of the layer norm " + name);
            }
            eps.put(name, e);
        }
        if (eps.isEmpty()) {
            throw bad("no layer norms (*LayerNorm.weight) found");
        }
        float first = eps.values().iterator().next();
        for (Map.Entry<String, Float> e : eps.entrySet()) {
            if (Math.abs(e.getValue() - first) > 1e-3f * first) {
                throw bad(
                        "layer norms disagree on epsilon: "
                                + e.getKey()
                                + " uses "
                                + e.getValue()
                                + ", embeddings use "
                                + first);
            }
        }
        return first;
    }

    /** The epsilon of the layer norm whose γ initializer is {@code gammaName}. */
    private Float epsOf(String gammaName) throws MalformedModelException {
        for (NodeProto c : consumers.getOrDefault(gammaName, List.of())) {
            if ("LayerNormalization".equals(c.getOpType())) {
                return attrFloat(c, "epsilon", 1e-5f);
            }
            if (!"Mul".equals(c.getOpType())) {
                continue;
            }
            // Decomposed: Mul(Div(x - mean, Sqrt(Add(var, eps))), gamma).
            for (String in : c.getInputList()) {
                NodeProto div = producers.get(in);
                if (div == null || !"Div".equals(div.getOpType())) {
                    continue;
                }
                NodeProto sqrt = producers.get(input(div, 1));
                if (sqrt == null || !"Sqrt".equals(sqrt.getOpType())) {
                    continue;
                }
                NodeProto add = producers.get(input(sqrt, 0));
                if (add == null || !"Add".equals(add.getOpType())) {
                    continue;
                }
                for (String a : add.getInputList()) {
                    float[] v = scalar(a);
                    if (v != null && v.length == 1) {
                        return v[0];
                    }
                }
            }
        }
        return null;
    }

    /** The activation between layer 0's intermediate projection and its output projection. */
    private HiddenActivation inferActivation() throws MalformedModelException {
        String bias = prefix + "encoder.layer.0.intermediate.dense.bias";
        Deque<String> todo = new ArrayDeque<>();
        for (NodeProto c : consumers.getOrDefault(bias, List.of())) {
            todo.addAll(c.getOutputList());
        }
        Set<String> ops = new HashSet<>();
        Set<String> seen = new HashSet<>();
        while (!todo.isEmpty() && seen.size() < 32) {
            String v = todo.poll();
            if (!seen.add(v)) {
                continue;
            }
            for (NodeProto c : consumers.getOrDefault(v, List.of())) {
                if ("MatMul".equals(c.getOpType()) || "Gemm".equals(c.getOpType())) {
                    continue; // reached the output projection
                }
                ops.add(c.getOpType());
                if ("Gelu".equals(c.getOpType())) {
                    for (AttributeProto a : c.getAttributeList()) {
                        if ("approximate".equals(a.getName())
                                && "tanh".equals(a.getS().toStringUtf8())) {
                            ops.add("Tanh");
                        }
                    }
                    ops.add("Erf");
                }
                todo.addAll(c.getOutputList());
            }
        }
        if (ops.contains("Tanh")) {
            return HiddenActivation.GELU_TANH;
        }
        if (ops.contains("Erf")) {
            return HiddenActivation.GELU;
        }
        if (ops.contains("Relu")) {
            return HiddenActivation.RELU;
        }
        throw bad("cannot recognise the feed-forward activation (ops " + ops + ")");
    }

    /** Resolves a shape operand made of constants (directly, or a Concat of constants). */
    private long[] resolveShape(String name) throws MalformedModelException {
        long[] direct = longs(name);
        if (direct != null) {
            return direct;
        }
        NodeProto p = producers.get(name);
        if (p == null || !"Concat".equals(p.getOpType())) {
            return null;
        }
        long[] out = new long[p.getInputCount()];
        for (int i = 0; i < out.length; i++) {
            long[] part = longs(p.getInput(i));
            out[i] = part != null && part.length == 1 ? part[0] : -1; // -1: computed at run time
        }
        return out;
    }

    private long[] longs(String name) throws MalformedModelException {
        TensorProto t =
                initializers.containsKey(name) ? initializers.get(name) : constants.get(name);
        if (t == null || t.getDataType() != TensorProto.DataType.INT64_VALUE) {
            return null;
        }
        long n = CheckpointLimits.elementCount(file, t.getName(), "dims", dims(t));
        if (t.getInt64DataCount() > 0) {
            CheckpointLimits.checkStored(file, t.getName(), "int64_data", t.getInt64DataCount(), n);
            return t.getInt64DataList().stream().mapToLong(Long::longValue).toArray();
        }
        CheckpointLimits.checkStored(
                file, t.getName(), "raw_data (bytes)", t.getRawData().size(), 8 * n);
        ByteBuffer b = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        long[] out = new long[(int) n];
        for (int i = 0; i < out.length; i++) {
            out[i] = b.getLong();
        }
        return out;
    }

    private float[] scalar(String name) throws MalformedModelException {
        TensorProto t =
                initializers.containsKey(name) ? initializers.get(name) : constants.get(name);
        if (t == null
                || !isFloat(t)
                || CheckpointLimits.elementCount(file, t.getName(), "dims", dims(t)) != 1) {
            return null;
        }
        return floats(t);
    }

    private static boolean isFloat(TensorProto t) {
        int dt = t.getDataType();
        return dt == TensorProto.DataType.FLOAT_VALUE
                || dt == TensorProto.DataType.FLOAT16_VALUE
                || dt == TensorProto.DataType.BFLOAT16_VALUE;
    }

    /** Widens a float initializer, after checking its data holds exactly what its dims claim. */
    private float[] floats(TensorProto t) throws MalformedModelException {
        String name = t.getName();
        int n = (int) CheckpointLimits.elementCount(file, name, "dims", dims(t));
        boolean fp32 = t.getDataType() == TensorProto.DataType.FLOAT_VALUE;
        if (fp32 && t.getFloatDataCount() > 0) {
            CheckpointLimits.checkStored(file, name, "float_data", t.getFloatDataCount(), n);
        } else if (!fp32 && t.getInt32DataCount() > 0) {
            CheckpointLimits.checkStored(file, name, "int32_data", t.getInt32DataCount(), n);
        } else {
            long bytes = (fp32 ? 4L : 2L) * n;
            CheckpointLimits.checkStored(
                    file, name, "raw_data (bytes)", t.getRawData().size(), bytes);
        }
        float[] out = new float[n];
        if (fp32) {
            if (t.getFloatDataCount() > 0) {
                for (int i = 0; i < n; i++) {
                    out[i] = t.getFloatData(i);
                }
            } else {
                t.getRawData()
                        .asReadOnlyByteBuffer()
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .asFloatBuffer()
                        .get(out);
            }
            return out;
        }
        // fp16 / bf16: raw little-endian 16-bit values, or widened into int32_data.
        boolean bf16 = t.getDataType() == TensorProto.DataType.BFLOAT16_VALUE;
        ByteBuffer b = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        boolean typed = t.getInt32DataCount() > 0;
        for (int i = 0; i < n; i++) {
            short h = typed ? (short) t.getInt32Data(i) : b.getShort(2 * i);
            out[i] = bf16 ? HalfFloats.bf16ToFloat(h) : HalfFloats.fp16ToFloat(h);
        }
        return out;
    }

    /** Refuses a data_type that ONNX does not define. */
    private void checkDataType(TensorProto t) throws MalformedModelException {
        TensorProto.DataType type = TensorProto.DataType.forNumber(t.getDataType());
        if (type == null || type == TensorProto.DataType.UNDEFINED) {
            throw bad("tensor " + t.getName() + ": data_type " + t.getDataType() + " is unknown");
        }
    }

    private static boolean isInteger(TensorProto t) {
        switch (TensorProto.DataType.forNumber(t.getDataType())) {
            case INT8:
            case INT16:
            case INT32:
            case INT64:
            case UINT8:
            case UINT16:
            case UINT32:
            case UINT64:
            case BOOL:
                return true;
            default:
                return false;
        }
    }

    private static long[] dims(TensorProto t) {
        return t.getDimsList().stream().mapToLong(Long::longValue).toArray();
    }

    /** The shape of a tensor that must be a matrix. */
    private long[] matrix(String name) throws MalformedModelException {
        long[] shape = require(name).getShape();
        if (shape.length != 2) {
            throw bad("tensor " + name + " has shape " + Arrays.toString(shape) + ", not a matrix");
        }
        return shape;
    }

    private CheckpointTensor require(String name) throws MalformedModelException {
        CheckpointTensor t = tensors.get(name);
        if (t == null) {
            throw bad("no tensor " + name + " (not a BERT-family encoder export)");
        }
        return t;
    }

    private static Set<Integer> rangeSet(int n) {
        Set<Integer> s = new TreeSet<>();
        for (int i = 0; i < n; i++) {
            s.add(i);
        }
        return Collections.unmodifiableSet(s);
    }

    private static long attrInt(NodeProto n, String name, long fallback) {
        for (AttributeProto a : n.getAttributeList()) {
            if (name.equals(a.getName())) {
                return a.getI();
            }
        }
        return fallback;
    }

    private static float attrFloat(NodeProto n, String name, float fallback) {
        for (AttributeProto a : n.getAttributeList()) {
            if (name.equals(a.getName())) {
                return a.getF();
            }
        }
        return fallback;
    }

    private MalformedModelException bad(String problem) {
        return new MalformedModelException(file + ": " + problem);
    }
}
