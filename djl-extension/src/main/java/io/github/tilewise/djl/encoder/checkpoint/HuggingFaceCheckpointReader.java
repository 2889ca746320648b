package io.github.tilewise.djl.encoder.checkpoint;

import ai.djl.MalformedModelException;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.github.tilewise.djl.encoder.EncoderArchitecture;
import io.github.tilewise.djl.encoder.EncoderConfig;
import io.github.tilewise.djl.encoder.HiddenActivation;
import io.github.tilewise.djl.encoder.Pooling;
import io.github.tilewise.djl.encoder.TextEncoderBlock;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reads a Hugging Face model directory: {@code config.json} (the configuration) and the weights,
 * {@code model.safetensors} or shards listed by {@code model.safetensors.index.json}. Every {@link
 * EncoderArchitecture} is accepted; its tensor names (with or without the prefix of task models
 * such as {@code bert.} or {@code roberta.}) are mapped onto the names Tilewise's blocks declare,
 * and the configuration is checked against the tensors' shapes before anything is built.
 */
public final class HuggingFaceCheckpointReader {

    private HuggingFaceCheckpointReader() {}

    /**
     * Reads a directory.
     *
     * @param dir the directory
     * @return the checkpoint
     * @throws IOException if {@code config.json} or the weights are missing or unreadable
     * @throws MalformedModelException naming the file and the problem for an unknown architecture
     *     (the message lists the supported ones), a malformed file, or a configuration
     *     contradicting the weights
     */
    public static EncoderCheckpoint read(Path dir) throws IOException, MalformedModelException {
        Path configFile = configFileOf(dir);
        Path weightsFile = weightsFile(dir);
        // The sizes alone (ranges, divisibility) are checked before the weights are read.
        checkConfig(configFile);
        Map<String, CheckpointTensor> raw =
                weightsFile.getFileName().toString().equals(SafetensorsIndex.INDEX_NAME)
                        ? SafetensorsIndex.read(weightsFile)
                        : SafetensorsFile.read(weightsFile);
        return withWeights(dir, configFile, weightsFile, raw);
    }

    /**
     * Builds a checkpoint from a directory's {@code config.json} and weights read from another
     * container (an ONNX export's initializers), with the same name mapping and checks as {@link
     * #read}.
     *
     * @param dir the directory holding {@code config.json}
     * @param weightsFile the file the tensors came from, for messages
     * @param raw the tensors under their Hugging Face names (task prefixes allowed)
     * @return the checkpoint
     * @throws IOException if {@code config.json} is missing or unreadable
     * @throws MalformedModelException as {@link #read} does
     */
    static EncoderCheckpoint read(Path dir, Path weightsFile, Map<String, CheckpointTensor> raw)
            throws IOException, MalformedModelException {
        Path configFile = configFileOf(dir);
        checkConfig(configFile);
        return withWeights(dir, configFile, weightsFile, raw);
    }

    /**
     * Returns the {@code model_type} of a directory's {@code config.json}, or null if it has none.
     *
     * @param dir the directory
     * @return the model type, or null without {@code config.json} or without the field
     * @throws IOException if {@code config.json} is unreadable
     * @throws MalformedModelException if it is not a JSON object
     */
    static String modelTypeIn(Path dir) throws IOException, MalformedModelException {
        Path configFile = dir.resolve("config.json");
        return Files.isRegularFile(configFile)
                ? string(parseJson(configFile), "model_type", null, configFile)
                : null;
    }

    private static Path configFileOf(Path dir) throws NoSuchFileException {
        Path configFile = dir.resolve("config.json");
        if (!Files.isRegularFile(configFile)) {
            throw new NoSuchFileException(
                    configFile.toString(),
                    null,
                    "a Hugging Face model directory needs config.json");
        }
        return configFile;
    }

    /** The architecture and the sizes alone (ranges, divisibility), before any weight is read. */
    private static void checkConfig(Path configFile) throws IOException, MalformedModelException {
        JsonObject json = parseJson(configFile);
        EncoderArchitecture architecture = architectureOf(json, configFile);
        if (architecture.isBertLayout()) {
            String positionType = string(json, "position_embedding_type", "absolute", configFile);
            if (!"absolute".equals(positionType)) {
                throw new MalformedModelException(
                        configFile
                                + ": position_embedding_type='"
                                + positionType
                                + "' is not supported (only absolute)");
            }
        }
        configFrom(architecture, configFile, json, Map.of());
    }

    private static EncoderCheckpoint withWeights(
            Path dir, Path configFile, Path weightsFile, Map<String, CheckpointTensor> raw)
            throws IOException, MalformedModelException {
        JsonObject json = parseJson(configFile);
        EncoderArchitecture architecture = architectureOf(json, configFile);
        Map<String, CheckpointTensor> tensors = TensorNames.canonical(architecture, raw);
        EncoderConfig config = configFrom(architecture, configFile, json, tensors);
        // Then against the weights, before a single layer is built.
        ConfigAgainstWeights.check(configFile, weightsFile, config, tensors);
        EncoderCheckpoint checkpoint = new EncoderCheckpoint(dir, config, tensors, "config.json");
        // Fail here, naming both files, rather than at load time.
        checkpoint.checkShapes(
                new TextEncoderBlock(config, Pooling.CLS, false).getCheckpointParameters());
        return checkpoint;
    }

    /** {@code model.safetensors}, else the index of sharded weights. */
    private static Path weightsFile(Path dir) throws NoSuchFileException {
        Path single = dir.resolve(SafetensorsFile.DEFAULT_NAME);
        if (Files.isRegularFile(single)) {
            return single;
        }
        Path index = dir.resolve(SafetensorsIndex.INDEX_NAME);
        if (Files.isRegularFile(index)) {
            return index;
        }
        String hint =
                Files.isRegularFile(dir.resolve("pytorch_model.bin"))
                        ? ": pytorch_model.bin (pickle) is not supported, save the model with"
                                + " safe_serialization=True"
                        : "";
        throw new NoSuchFileException(
                single.toString(),
                null,
                "no model.safetensors or " + SafetensorsIndex.INDEX_NAME + " in " + dir + hint);
    }

    private static EncoderArchitecture architectureOf(JsonObject json, Path configFile)
            throws MalformedModelException {
        String modelType = string(json, "model_type", null, configFile);
        if (modelType == null) {
            throw new MalformedModelException(
                    configFile
                            + ": no model_type: unknown architecture (supported are "
                            + EncoderArchitecture.supported()
                            + ")");
        }
        try {
            return EncoderArchitecture.fromModelType(modelType);
        } catch (IllegalArgumentException e) {
            throw new MalformedModelException(configFile + ": " + e.getMessage(), e);
        }
    }

    private static EncoderConfig configFrom(
            EncoderArchitecture architecture,
            Path configFile,
            JsonObject json,
            Map<String, CheckpointTensor> tensors)
            throws MalformedModelException {
        List<String> labels = new ArrayList<>();
        CheckpointTensor classifier = tensors.get("classifier.weight");
        if (classifier != null && architecture.isBertLayout()) {
            long[] shape = classifier.getShape();
            if (shape.length != 2) {
                throw new MalformedModelException(
                        configFile
                                + ": classifier.weight has shape "
                                + Arrays.toString(shape)
                                + ", not a matrix");
            }
            int numLabels =
                    CheckpointLimits.inRange(
                            configFile,
                            "the classifier's output count (classifier.weight rows)",
                            shape[0],
                            1,
                            EncoderConfig.MAX_LABELS);
            labels.addAll(labelsOf(json, numLabels, configFile));
        }
        boolean distil = architecture == EncoderArchitecture.DISTILBERT;
        boolean modern = architecture == EncoderArchitecture.MODERNBERT;
        String activationKey = distil ? "activation" : modern ? "hidden_activation" : "hidden_act";
        HiddenActivation activation;
        try {
            activation = HiddenActivation.fromName(string(json, activationKey, "gelu", configFile));
        } catch (IllegalArgumentException e) {
            throw new MalformedModelException(configFile + ": " + e.getMessage(), e);
        }
        try {
            EncoderConfig.Builder b =
                    EncoderConfig.builder()
                            .optArchitecture(architecture)
                            .setHiddenSize(
                                    integer(json, distil ? "dim" : "hidden_size", configFile))
                            .setNumHeads(
                                    integer(
                                            json,
                                            distil ? "n_heads" : "num_attention_heads",
                                            configFile))
                            .setNumLayers(
                                    integer(
                                            json,
                                            distil ? "n_layers" : "num_hidden_layers",
                                            configFile))
                            .setIntermediateSize(
                                    integer(
                                            json,
                                            distil ? "hidden_dim" : "intermediate_size",
                                            configFile))
                            .setMaxPositions(integer(json, "max_position_embeddings", configFile))
                            .setVocabSize(integer(json, "vocab_size", configFile))
                            .optTypeVocabSize(
                                    tensors.containsKey("embeddings.token_type_embeddings.weight")
                                            ? integer(json, "type_vocab_size", configFile)
                                            : 0)
                            .optActivation(activation)
                            .optPooler(tensors.containsKey("pooler.dense.weight"))
                            .optLabels(labels)
                            // MPNet's embeddings hard-code padding_idx = 1, whatever
                            // pad_token_id says.
                            .optPadTokenId(
                                    architecture == EncoderArchitecture.MPNET
                                            ? 1
                                            : integer(
                                                    json,
                                                    "pad_token_id",
                                                    architecture.positionsAfterPadding()
                                                            ? 1
                                                            : modern ? 50283 : 0,
                                                    configFile));
            if (distil) {
                b.optLayerNormEps(1e-12f);
            } else if (modern) {
                modernBert(b, json, configFile);
            } else {
                b.optLayerNormEps(number(json, "layer_norm_eps", 1e-12f, configFile));
            }
            if (architecture == EncoderArchitecture.MPNET) {
                b.optRelativeBuckets(
                        integer(json, "relative_attention_num_buckets", 32, configFile), 128);
            }
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new MalformedModelException(configFile + ": " + e.getMessage(), e);
        }
    }

    /**
     * ModernBERT's fields: norms and biases, rotary bases and which layers attend locally, in both
     * the Hub's spelling ({@code global_rope_theta}, {@code global_attn_every_n_layers}) and that
     * of transformers 5 ({@code rope_parameters}, {@code layer_types}).
     */
    private static void modernBert(EncoderConfig.Builder b, JsonObject json, Path configFile)
            throws MalformedModelException {
        boolean attentionBias = bool(json, "attention_bias", false, configFile);
        boolean mlpBias = bool(json, "mlp_bias", false, configFile);
        if (attentionBias != mlpBias) {
            throw new MalformedModelException(
                    configFile
                            + ": attention_bias = "
                            + attentionBias
                            + " with mlp_bias = "
                            + mlpBias
                            + " is not supported (both true or both false)");
        }
        b.optLayerNormEps(number(json, "norm_eps", 1e-5f, configFile))
                .optBiases(attentionBias, bool(json, "norm_bias", false, configFile));
        int layers = integer(json, "num_hidden_layers", configFile);
        CheckpointLimits.inRange(
                configFile, "num_hidden_layers", layers, 1, EncoderConfig.MAX_LAYERS);
        boolean[] local = new boolean[layers];
        JsonElement types = json.get("layer_types");
        if (types != null && !types.isJsonNull()) {
            if (!types.isJsonArray() || types.getAsJsonArray().size() != layers) {
                throw new MalformedModelException(
                        configFile + ": layer_types is not a list of " + layers + " layer types");
            }
            for (int i = 0; i < layers; i++) {
                JsonElement t = types.getAsJsonArray().get(i);
                String type = t.isJsonPrimitive() ? t.getAsString() : "";
                if (!type.equals("full_attention") && !type.equals("sliding_attention")) {
                    throw new MalformedModelException(
                            configFile
                                    + ": layer_types["
                                    + i
                                    + "] is "
                                    + CheckpointLimits.abbreviate(t)
                                    + ", not full_attention or sliding_attention");
                }
                local[i] = type.equals("sliding_attention");
            }
        } else {
            int every = integer(json, "global_attn_every_n_layers", 3, configFile);
            CheckpointLimits.inRange(
                    configFile, "global_attn_every_n_layers", every, 1, EncoderConfig.MAX_LAYERS);
            for (int i = 0; i < layers; i++) {
                local[i] = i % every != 0;
            }
        }
        float globalTheta = number(json, "global_rope_theta", 160_000f, configFile);
        float localTheta = number(json, "local_rope_theta", 10_000f, configFile);
        JsonElement rope = json.get("rope_parameters");
        if (rope != null && !rope.isJsonNull()) {
            if (!rope.isJsonObject()) {
                throw new MalformedModelException(
                        configFile + ": rope_parameters is not an object");
            }
            globalTheta =
                    ropeTheta(rope.getAsJsonObject(), "full_attention", globalTheta, configFile);
            localTheta =
                    ropeTheta(rope.getAsJsonObject(), "sliding_attention", localTheta, configFile);
        }
        int localAttention = integer(json, "local_attention", 128, configFile);
        CheckpointLimits.inRange(
                configFile, "local_attention", localAttention, 0, EncoderConfig.MAX_POSITIONS);
        b.optRotary(globalTheta, localTheta, localAttention / 2, local);
    }

    private static float ropeTheta(JsonObject rope, String type, float fallback, Path file)
            throws MalformedModelException {
        JsonElement e = rope.get(type);
        if (e == null || e.isJsonNull()) {
            return fallback;
        }
        if (!e.isJsonObject()) {
            throw new MalformedModelException(
                    file + ": rope_parameters." + type + " is not an object");
        }
        JsonObject params = e.getAsJsonObject();
        String ropeType = string(params, "rope_type", "default", file);
        if (!"default".equals(ropeType)) {
            throw new MalformedModelException(
                    file
                            + ": rope_parameters."
                            + type
                            + ".rope_type = "
                            + CheckpointLimits.abbreviate(ropeType)
                            + " is not supported (only default)");
        }
        return number(params, "rope_theta", fallback, file);
    }

    /** Reads {@code id2label} in id order, or {@code LABEL_i} names when absent. */
    static List<String> labelsOf(JsonObject json, int numLabels, Path configFile)
            throws MalformedModelException {
        List<String> labels = new ArrayList<>();
        JsonElement id2label = json == null ? null : json.get("id2label");
        if (id2label != null && !id2label.isJsonNull()) {
            if (!id2label.isJsonObject()) {
                throw new MalformedModelException(configFile + ": id2label is not a JSON object");
            }
            Map<Integer, String> byId = new TreeMap<>();
            for (Map.Entry<String, JsonElement> e : id2label.getAsJsonObject().entrySet()) {
                JsonElement label = e.getValue();
                Integer id = parseId(e.getKey());
                if (id == null || !label.isJsonPrimitive()) {
                    throw new MalformedModelException(
                            configFile
                                    + ": id2label entry "
                                    + CheckpointLimits.abbreviate(e.getKey())
                                    + " is not an integer id with a string label");
                }
                byId.put(id, label.getAsString());
            }
            if (byId.size() != numLabels
                    || !byId.keySet().equals(new java.util.TreeSet<>(range(numLabels)))) {
                throw new MalformedModelException(
                        configFile
                                + ": id2label has ids "
                                + CheckpointLimits.abbreviate(byId.keySet())
                                + " but the classifier has "
                                + numLabels
                                + " outputs");
            }
            labels.addAll(byId.values());
        } else {
            for (int i = 0; i < numLabels; i++) {
                labels.add("LABEL_" + i);
            }
        }
        return labels;
    }

    private static Integer parseId(String key) {
        try {
            return Integer.valueOf(key);
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static List<Integer> range(int n) {
        Integer[] r = new Integer[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return Arrays.asList(r);
    }

    static JsonObject parseJson(Path file) throws IOException, MalformedModelException {
        try {
            return JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8))
                    .getAsJsonObject();
        } catch (CharacterCodingException e) {
            throw new MalformedModelException(file + ": not UTF-8 text", e);
        } catch (JsonParseException | IllegalStateException e) {
            throw new MalformedModelException(
                    file + ": not a JSON object: " + CheckpointLimits.abbreviate(e.getMessage()),
                    e);
        }
    }

    private static String string(JsonObject json, String key, String fallback, Path file)
            throws MalformedModelException {
        JsonElement e = json.get(key);
        if (e == null || e.isJsonNull()) {
            return fallback;
        }
        if (!e.isJsonPrimitive()) {
            throw new MalformedModelException(
                    file + ": " + key + " is not a string: " + CheckpointLimits.abbreviate(e));
        }
        return e.getAsString();
    }

    private static int integer(JsonObject json, String key, Path file)
            throws MalformedModelException {
        JsonElement e = json.get(key);
        if (e == null || e.isJsonNull()) {
            throw new MalformedModelException(file + ": missing " + key);
        }
        long v = CheckpointLimits.jsonLong(file, key, e);
        // The field's own range is EncoderConfig's; this only keeps the value exact as an int.
        return CheckpointLimits.inRange(file, key, v, Integer.MIN_VALUE, Integer.MAX_VALUE);
    }

    private static int integer(JsonObject json, String key, int fallback, Path file)
            throws MalformedModelException {
        JsonElement e = json.get(key);
        return e == null || e.isJsonNull() ? fallback : integer(json, key, file);
    }

    private static float number(JsonObject json, String key, float fallback, Path file)
            throws MalformedModelException {
        JsonElement e = json.get(key);
        if (e == null || e.isJsonNull()) {
            return fallback;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw new MalformedModelException(
                    file + ": " + key + " is not a number: " + CheckpointLimits.abbreviate(e));
        }
        float v = e.getAsFloat();
        if (!Float.isFinite(v)) {
            throw new MalformedModelException(file + ": " + key + " is not finite: " + v);
        }
        return v;
    }

    private static boolean bool(JsonObject json, String key, boolean fallback, Path file)
            throws MalformedModelException {
        JsonElement e = json.get(key);
        if (e == null || e.isJsonNull()) {
            return fallback;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
            throw new MalformedModelException(
                    file + ": " + key + " is not true or false: " + CheckpointLimits.abbreviate(e));
        }
        return e.getAsBoolean();
    }
}
