package io.github.tilewise.djl.encoder.checkpoint;

import ai.djl.MalformedModelException;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.github.tilewise.djl.encoder.Pooling;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * What a sentence-transformers model directory says about turning token vectors into a text vector:
 * {@code modules.json}, the {@code Pooling} module's {@code config.json} (e.g. {@code
 * 1_Pooling/config.json}), a {@code Normalize} module, and {@code sentence_bert_config.json}
 * ({@code max_seq_length}, {@code do_lower_case}).
 *
 * <p>The files are untrusted input, read as the checkpoint readers read theirs: each at most {@link
 * #MAX_FILE_BYTES}, every value checked for its type and range, a module's {@code path} kept inside
 * the model directory (no absolute paths, no {@code ..}, no links leading out); any violation is a
 * {@link MalformedModelException} naming the file and the field.
 *
 * <p>Modules Tilewise cannot run (a {@code Dense} projection, an unknown type) and pooling
 * combinations (several {@code pooling_mode_*} at once, which sentence-transformers concatenates)
 * are recorded, not refused, so that a user who chooses the pooling explicitly can still load the
 * model; {@link #getPooling()} refuses them when the model's own pooling is asked for.
 */
public final class SentenceTransformerConfig {

    /** The file listing a sentence-transformers model's modules. */
    public static final String MODULES_FILE = "modules.json";

    /** The file holding the Transformer module's settings. */
    public static final String SENTENCE_BERT_CONFIG = "sentence_bert_config.json";

    /** The largest JSON file read here (real ones are a few hundred bytes). */
    public static final long MAX_FILE_BYTES = 1 << 20;

    /** The most modules {@code modules.json} may list. */
    public static final int MAX_MODULES = 64;

    /** The largest {@code max_seq_length} or {@code word_embedding_dimension} accepted. */
    public static final int MAX_SIZE = 1 << 24;

    private static final String TYPE_PREFIX = "sentence_transformers.";

    /**
     * The {@code pooling_mode_*} flags in the order sentence-transformers concatenates their
     * vectors.
     */
    private static final String[][] MODE_FLAGS = {
        {"pooling_mode_cls_token", "CLS"},
        {"pooling_mode_max_tokens", "MAX"},
        {"pooling_mode_mean_tokens", "MEAN"},
        {"pooling_mode_mean_sqrt_len_tokens", "MEAN_SQRT_LEN"},
        {"pooling_mode_weightedmean_tokens", "WEIGHTED_MEAN"},
        {"pooling_mode_lasttoken", "LAST_TOKEN"},
    };

    private final Path directory;
    private final List<Pooling> poolingModes;
    private final boolean normalize;
    private final Integer maxSeqLength;
    private final boolean doLowerCase;
    private final Integer wordEmbeddingDimension;
    private final boolean includePrompt;
    private final List<String> unsupported;

    private SentenceTransformerConfig(
            Path directory,
            List<Pooling> poolingModes,
            boolean normalize,
            Integer maxSeqLength,
            boolean doLowerCase,
            Integer wordEmbeddingDimension,
            boolean includePrompt,
            List<String> unsupported) {
        this.directory = directory;
        this.poolingModes = Collections.unmodifiableList(poolingModes);
        this.normalize = normalize;
        this.maxSeqLength = maxSeqLength;
        this.doLowerCase = doLowerCase;
        this.wordEmbeddingDimension = wordEmbeddingDimension;
        this.includePrompt = includePrompt;
        this.unsupported = Collections.unmodifiableList(unsupported);
    }

    /**
     * Finds the sentence-transformers files of a model: {@code modules.json} in the model's
     * directory (the path itself, or the directory of a model file), or, for an {@code onnx} folder
     * (the layout sentence-transformers exports to), in that folder's parent.
     *
     * @param modelPath a model directory or file
     * @return the configuration, or empty when there is no {@code modules.json}
     * @throws IOException if a file cannot be read
     * @throws MalformedModelException naming the file and the field if a file is malformed
     */
    public static Optional<SentenceTransformerConfig> find(Path modelPath)
            throws IOException, MalformedModelException {
        Path absolute = modelPath.toAbsolutePath();
        Path dir = Files.isDirectory(absolute) ? absolute : absolute.getParent();
        if (dir == null) {
            return Optional.empty();
        }
        if (Files.isRegularFile(dir.resolve(MODULES_FILE))) {
            return Optional.of(read(dir));
        }
        Path parent = dir.getParent();
        if (parent != null
                && "onnx".equals(String.valueOf(dir.getFileName()))
                && Files.isRegularFile(parent.resolve(MODULES_FILE))) {
            return Optional.of(read(parent));
        }
        return Optional.empty();
    }

    /**
     * Reads a sentence-transformers model directory.
     *
     * @param dir the directory holding {@code modules.json}
     * @return the configuration
     * @throws IOException if {@code modules.json} is missing or a file cannot be read
     * @throws MalformedModelException naming the file and the field if a file is malformed or a
     *     module's path leaves the directory
     */
    public static SentenceTransformerConfig read(Path dir)
            throws IOException, MalformedModelException {
        Path modulesFile = dir.resolve(MODULES_FILE);
        if (!Files.isRegularFile(modulesFile)) {
            throw new NoSuchFileException(
                    modulesFile.toString(), null, "a sentence-transformers model needs it");
        }
        JsonElement root = parse(modulesFile);
        if (!root.isJsonArray()) {
            throw new MalformedModelException(
                    modulesFile + ": not a JSON array of modules: " + abbreviate(root));
        }
        JsonArray modules = root.getAsJsonArray();
        if (modules.size() > MAX_MODULES) {
            throw new MalformedModelException(
                    modulesFile
                            + ": lists "
                            + modules.size()
                            + " modules, more than "
                            + MAX_MODULES);
        }
        List<Pooling> modes = new ArrayList<>();
        List<String> unsupported = new ArrayList<>();
        boolean normalize = false;
        boolean pooled = false;
        boolean includePrompt = true;
        Integer dimension = null;
        Path transformerDir = dir;
        for (int i = 0; i < modules.size(); i++) {
            String where = "module #" + i;
            if (!modules.get(i).isJsonObject()) {
                throw new MalformedModelException(
                        modulesFile + ": " + where + " is not an object: " + abbreviate(modules));
            }
            JsonObject m = modules.get(i).getAsJsonObject();
            String type = string(modulesFile, m, "type", where, true);
            String path = string(modulesFile, m, "path", where, false);
            Path moduleDir = path == null ? dir : inside(modulesFile, dir, path, where);
            String label = where + " (" + abbreviate(type) + ", path '" + abbreviate(path) + "')";
            // sentence_transformers.models.Pooling, or a longer module path to the same class.
            String simple =
                    type.startsWith(TYPE_PREFIX) ? type.substring(type.lastIndexOf('.') + 1) : "";
            switch (simple) {
                case "Transformer":
                    transformerDir = moduleDir;
                    break;
                case "Pooling":
                    if (pooled) {
                        unsupported.add(label + ": a second Pooling module");
                        break;
                    }
                    pooled = true;
                    Path poolingFile = moduleDir.resolve("config.json");
                    if (!Files.isRegularFile(poolingFile)) {
                        throw new NoSuchFileException(
                                poolingFile.toString(),
                                null,
                                "the Pooling module of " + modulesFile + " has no config.json");
                    }
                    JsonObject pc = object(poolingFile);
                    modes.addAll(poolingModes(poolingFile, pc));
                    dimension = optionalSize(poolingFile, pc, "word_embedding_dimension");
                    includePrompt = bool(poolingFile, pc, "include_prompt", true);
                    break;
                case "Normalize":
                    if (!pooled) {
                        unsupported.add(label + ": normalises token vectors before pooling");
                    }
                    normalize = true;
                    break;
                case "Dense":
                    unsupported.add(
                            label
                                    + ": a Dense projection after pooling is not supported by"
                                    + " Tilewise");
                    break;
                default:
                    unsupported.add(label + ": an unknown module type");
                    break;
            }
        }
        Integer maxSeqLength = null;
        boolean lowerCase = false;
        Path sbert = transformerDir.resolve(SENTENCE_BERT_CONFIG);
        if (!Files.isRegularFile(sbert)) {
            sbert = dir.resolve(SENTENCE_BERT_CONFIG);
        }
        if (Files.isRegularFile(sbert)) {
            JsonObject sc = object(sbert);
            maxSeqLength = optionalSize(sbert, sc, "max_seq_length");
            lowerCase = bool(sbert, sc, "do_lower_case", false);
        }
        return new SentenceTransformerConfig(
                dir,
                modes,
                normalize,
                maxSeqLength,
                lowerCase,
                dimension,
                includePrompt,
                unsupported);
    }

    private static List<Pooling> poolingModes(Path file, JsonObject config)
            throws MalformedModelException {
        List<Pooling> modes = new ArrayList<>();
        JsonElement named = config.get("pooling_mode");
        if (named != null && !named.isJsonNull()) {
            // sentence-transformers' constructor argument; saved configurations hold the flags.
            if (!named.isJsonPrimitive() || !named.getAsJsonPrimitive().isString()) {
                throw new MalformedModelException(
                        file + ": pooling_mode is not a string: " + abbreviate(named));
            }
            try {
                modes.add(Pooling.fromName(named.getAsString()));
            } catch (IllegalArgumentException e) {
                throw new MalformedModelException(file + ": pooling_mode: " + e.getMessage(), e);
            }
        }
        for (String[] flag : MODE_FLAGS) {
            Pooling mode = Pooling.valueOf(flag[1]);
            if (bool(file, config, flag[0], false) && !modes.contains(mode)) {
                modes.add(mode);
            }
        }
        for (Map.Entry<String, JsonElement> e : config.entrySet()) {
            if (e.getKey().startsWith("pooling_mode_") && !isKnownFlag(e.getKey())) {
                if (bool(file, config, e.getKey(), false)) {
                    throw new MalformedModelException(
                            file + ": unknown pooling mode " + abbreviate(e.getKey()));
                }
            }
        }
        if (modes.isEmpty()) {
            throw new MalformedModelException(
                    file + ": no pooling_mode_* is true: the Pooling module pools nothing");
        }
        return modes;
    }

    private static boolean isKnownFlag(String key) {
        for (String[] flag : MODE_FLAGS) {
            if (flag[0].equals(key)) {
                return true;
            }
        }
        return false;
    }

    /** Resolves a module's path inside {@code dir}, refusing any way out of it. */
    private static Path inside(Path file, Path dir, String path, String where)
            throws IOException, MalformedModelException {
        String bad = null;
        if (path.length() > 255) {
            bad = "is longer than 255 characters";
        } else if (path.indexOf('\0') >= 0 || path.indexOf('\\') >= 0 || path.indexOf(':') >= 0) {
            bad = "holds a NUL, backslash or colon";
        } else if (path.startsWith("/")) {
            bad = "is absolute";
        } else {
            for (String part : path.split("/", -1)) {
                if ("..".equals(part)) {
                    bad = "climbs out with '..'";
                    break;
                }
            }
        }
        if (bad != null) {
            throw new MalformedModelException(
                    file + ": " + where + " path '" + abbreviate(path) + "' " + bad);
        }
        Path resolved = dir.resolve(path).normalize();
        Path base = dir.toAbsolutePath().normalize();
        boolean escapes = !resolved.toAbsolutePath().startsWith(base);
        if (!escapes && Files.exists(resolved)) {
            // A link inside the directory must not lead out of it either.
            escapes = !resolved.toRealPath().startsWith(dir.toRealPath());
        }
        if (escapes) {
            throw new MalformedModelException(
                    file
                            + ": "
                            + where
                            + " path '"
                            + abbreviate(path)
                            + "' leads out of the model directory");
        }
        return resolved;
    }

    private static JsonElement parse(Path file) throws IOException, MalformedModelException {
        long size = Files.size(file);
        if (size > MAX_FILE_BYTES) {
            throw new MalformedModelException(
                    file + ": " + size + " bytes, more than the " + MAX_FILE_BYTES + " allowed");
        }
        try {
            return JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8));
        } catch (CharacterCodingException e) {
            throw new MalformedModelException(file + ": not UTF-8 text", e);
        } catch (JsonParseException | StackOverflowError e) {
            throw new MalformedModelException(
                    file + ": not valid JSON: " + abbreviate(e.getMessage()), e);
        }
    }

    private static JsonObject object(Path file) throws IOException, MalformedModelException {
        JsonElement e = parse(file);
        if (!e.isJsonObject()) {
            throw new MalformedModelException(file + ": not a JSON object: " + abbreviate(e));
        }
        return e.getAsJsonObject();
    }

    private static String string(
            Path file, JsonObject o, String key, String where, boolean required)
            throws MalformedModelException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            if (required) {
                throw new MalformedModelException(file + ": " + where + " has no " + key);
            }
            return null;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw new MalformedModelException(
                    file + ": " + where + " " + key + " is not a string: " + abbreviate(e));
        }
        return e.getAsString();
    }

    private static boolean bool(Path file, JsonObject o, String key, boolean fallback)
            throws MalformedModelException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return fallback;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
            throw new MalformedModelException(
                    file + ": " + key + " is not true or false: " + abbreviate(e));
        }
        return e.getAsBoolean();
    }

    private static Integer optionalSize(Path file, JsonObject o, String key)
            throws MalformedModelException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            return null;
        }
        long v = CheckpointLimits.jsonLong(file, key, e);
        return CheckpointLimits.inRange(file, key, v, 1, MAX_SIZE);
    }

    private static String abbreviate(Object o) {
        return CheckpointLimits.abbreviate(o);
    }

    /**
     * Returns the directory holding {@code modules.json}.
     *
     * @return the directory
     */
    public Path getDirectory() {
        return directory;
    }

    /**
     * Returns the Pooling module's modes in the order sentence-transformers concatenates them.
     *
     * @return the modes; empty when the model has no Pooling module
     */
    public List<Pooling> getPoolingModes() {
        return poolingModes;
    }

    /**
     * Returns the model's own pooling, when Tilewise can compute its sentence embedding exactly.
     *
     * @return the single pooling mode, or empty when the model has no Pooling module
     * @throws UnsupportedOperationException naming the modes or the module when the model
     *     concatenates several poolings, or has a module Tilewise cannot run (a {@code Dense}
     *     projection, an unknown type)
     */
    public Optional<Pooling> getPooling() {
        if (!unsupported.isEmpty()) {
            throw new UnsupportedOperationException(
                    directory.resolve(MODULES_FILE)
                            + ": "
                            + String.join("; ", unsupported)
                            + ". Choose the pooling explicitly to load the encoder without it");
        }
        if (poolingModes.size() > 1) {
            throw new UnsupportedOperationException(
                    directory.resolve(MODULES_FILE)
                            + ": the Pooling module concatenates "
                            + poolingModes
                            + "; Tilewise pools one mode at a time: choose one explicitly");
        }
        return poolingModes.isEmpty() ? Optional.empty() : Optional.of(poolingModes.get(0));
    }

    /**
     * Returns what Tilewise cannot run of this model (empty when everything is supported).
     *
     * @return one description per module, naming it
     */
    public List<String> getUnsupportedModules() {
        return unsupported;
    }

    /**
     * Returns whether a {@code Normalize} module L2-normalises the sentence embedding.
     *
     * @return true with a Normalize module
     */
    public boolean isNormalize() {
        return normalize;
    }

    /**
     * Returns {@code max_seq_length} of {@code sentence_bert_config.json}.
     *
     * @return the most tokens per text, or empty when not given
     */
    public OptionalInt getMaxSeqLength() {
        return maxSeqLength == null ? OptionalInt.empty() : OptionalInt.of(maxSeqLength);
    }

    /**
     * Returns {@code do_lower_case} of {@code sentence_bert_config.json}: whether texts are
     * lower-cased before tokenization.
     *
     * @return true to lower-case (false when not given)
     */
    public boolean isDoLowerCase() {
        return doLowerCase;
    }

    /**
     * Returns the Pooling module's {@code word_embedding_dimension}.
     *
     * @return the dimension of the token vectors, or empty when not given
     */
    public OptionalInt getWordEmbeddingDimension() {
        return wordEmbeddingDimension == null
                ? OptionalInt.empty()
                : OptionalInt.of(wordEmbeddingDimension);
    }

    /**
     * Returns the Pooling module's {@code include_prompt} (only matters with prompts, which
     * Tilewise does not add).
     *
     * @return the flag (true when not given)
     */
    public boolean isIncludePrompt() {
        return includePrompt;
    }

    @Override
    public String toString() {
        return "SentenceTransformerConfig{"
                + directory
                + ", pooling "
                + poolingModes
                + (normalize ? ", normalize" : "")
                + (maxSeqLength != null ? ", max_seq_length " + maxSeqLength : "")
                + (unsupported.isEmpty() ? "" : ", unsupported " + unsupported)
                + "}";
    }
}
