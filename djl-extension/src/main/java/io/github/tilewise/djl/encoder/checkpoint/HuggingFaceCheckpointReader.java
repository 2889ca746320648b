package io.github.tilewise.djl.encoder.checkpoint;

import ai.djl.MalformedModelException;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Reads a Hugging Face model directory: {@code config.json} (the configuration) and {@code
 * model.safetensors} (the weights). Tensor names may carry the {@code bert.} prefix of task models
 * ({@code BertForSequenceClassification}); the configuration is checked against the tensors'
 * shapes.
 */
public final class HuggingFaceCheckpointReader {

    /** {@code model_type} values whose checkpoints have BERT's layout. */
    private static final Set<String> SUPPORTED_TYPES = Set.of("bert");

    private HuggingFaceCheckpointReader() {}

    /**
     * Reads a directory.
     *
     * @param dir the directory
     * @return the checkpoint
     * @throws IOException if {@code config.json} or {@code model.safetensors} is missing or
     *     unreadable
     * @throws MalformedModelException naming the file and the problem for an unknown architecture,
     *     a malformed file, or a configuration contradicting the weights
     */
    public static EncoderCheckpoint read(Path dir) throws IOException, MalformedModelException {
        Path configFile = dir.resolve("config.json");
        if (!Files.isRegularFile(configFile)) {
            throw new NoSuchFileException(
                    configFile.toString(),
                    null,
                    "a Hugging Face model directory needs config.json");
        }
        JsonObject json = parseJson(configFile);
        Path weightsFile = dir.resolve(SafetensorsFile.DEFAULT_NAME);
        if (!Files.isRegularFile(weightsFile)) {
            String hint =
                    Files.isRegularFile(dir.resolve("pytorch_model.bin"))
                            ? ": pytorch_model.bin (pickle) is not supported, save the model with"
                                    + " safe_serialization=True"
                            : "";
            throw new NoSuchFileException(
                    weightsFile.toString(), null, "no model.safetensors in " + dir + hint);
        }
        String modelType = string(json, "model_type", null, configFile);
        if (modelType == null) {
            throw new MalformedModelException(configFile + ": no model_type: unknown architecture");
        }
        if (!SUPPORTED_TYPES.contains(modelType.toLowerCase(Locale.ROOT))) {
            throw new MalformedModelException(
                    configFile
                            + ": unknown architecture model_type='"
                            + modelType
                            + "': supported are "
                            + SUPPORTED_TYPES);
        }
        String positionType = string(json, "position_embedding_type", "absolute", configFile);
        if (!"absolute".equals(positionType)) {
            throw new MalformedModelException(
                    configFile
                            + ": position_embedding_type='"
                            + positionType
                            + "' is not supported (only absolute)");
        }
        // The sizes alone (ranges, divisibility) are checked before the weights are read.
        configFrom(configFile, json, Map.of());
        Map<String, CheckpointTensor> raw = SafetensorsFile.read(weightsFile);
        Map<String, CheckpointTensor> tensors = new LinkedHashMap<>();
        for (CheckpointTensor t : raw.values()) {
            String name = t.getName().startsWith("bert.") ? t.getName().substring(5) : t.getName();
            tensors.put(name, t.rename(name));
        }
        EncoderConfig config = configFrom(configFile, json, tensors);
        // Then against the weights, before a single layer is built.
        ConfigAgainstWeights.check(configFile, weightsFile, config, tensors);
        EncoderCheckpoint checkpoint = new EncoderCheckpoint(dir, config, tensors, "config.json");
        // Fail here, naming both files, rather than at load time.
        checkpoint.checkShapes(
                new TextEncoderBlock(config, Pooling.CLS, false).getCheckpointParameters());
        return checkpoint;
    }

    private static EncoderConfig configFrom(
            Path configFile, JsonObject json, Map<String, CheckpointTensor> tensors)
            throws MalformedModelException {
        List<String> labels = new ArrayList<>();
        CheckpointTensor classifier = tensors.get("classifier.weight");
        if (classifier != null) {
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
        HiddenActivation activation;
        try {
            activation = HiddenActivation.fromName(string(json, "hidden_act", "gelu", configFile));
        } catch (IllegalArgumentException e) {
            throw new MalformedModelException(configFile + ": " + e.getMessage(), e);
        }
        try {
            return EncoderConfig.builder()
                    .setHiddenSize(integer(json, "hidden_size", configFile))
                    .setNumHeads(integer(json, "num_attention_heads", configFile))
                    .setNumLayers(integer(json, "num_hidden_layers", configFile))
                    .setIntermediateSize(integer(json, "intermediate_size", configFile))
                    .setMaxPositions(integer(json, "max_position_embeddings", configFile))
                    .setVocabSize(integer(json, "vocab_size", configFile))
                    .optTypeVocabSize(
                            tensors.containsKey("embeddings.token_type_embeddings.weight")
                                    ? integer(json, "type_vocab_size", configFile)
                                    : 0)
                    .optLayerNormEps(layerNormEps(json, configFile))
                    .optActivation(activation)
                    .optPooler(tensors.containsKey("pooler.dense.weight"))
                    .optLabels(labels)
                    .build();
        } catch (IllegalArgumentException e) {
            throw new MalformedModelException(configFile + ": " + e.getMessage(), e);
        }
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

    private static float layerNormEps(JsonObject json, Path file) throws MalformedModelException {
        JsonElement e = json.get("layer_norm_eps");
        if (e == null || e.isJsonNull()) {
            return 1e-12f;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw new MalformedModelException(
                    file + ": layer_norm_eps is not a number: " + CheckpointLimits.abbreviate(e));
        }
        return e.getAsFloat();
    }
}
