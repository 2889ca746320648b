package io.github.tilewise.it.reference;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.github.tilewise.djl.encoder.checkpoint.CheckpointTensor;
import io.github.tilewise.djl.encoder.checkpoint.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A random-weight Hugging Face checkpoint of one family, made in memory from a seed: {@code
 * config.json} with small realistic values under the family's own field names, and every tensor
 * {@code save_pretrained} writes for the base model ({@code BertModel}, {@code RobertaModel},
 * {@code XLMRobertaModel}, {@code DistilBertModel}, {@code MPNetModel}, {@code ModernBertModel})
 * under its file name. Values come from {@link SeededCheckpoint#generate} (tensor {@code t} of the
 * sorted names seeded with {@link SeededCheckpoint#tensorSeed}): LayerNorm weights {@code 1 ± 0.1},
 * biases {@code ± 0.05}, linear weights {@code ± 0.2}, embeddings {@code ± 0.5}, MPNet's relative
 * bias {@code ± 1}.
 *
 * <p>Variants beyond the six {@code model_type}s: {@code modernbert-bias} (attention, MLP and norm
 * biases, thetas other than the defaults, the Hub's {@code global_rope_theta} spelling instead of
 * {@code rope_parameters} / {@code layer_types}).
 */
public final class RandomHfCheckpoint {

    /** The variants {@link #create} makes. */
    public static final List<String> VARIANTS =
            List.of(
                    "bert",
                    "roberta",
                    "xlm-roberta",
                    "distilbert",
                    "mpnet",
                    "modernbert",
                    "modernbert-bias",
                    "xlm-roberta-long");

    private static final int HIDDEN = 64;
    private static final int HEADS = 4;
    private static final int VOCAB = 300;

    private final String variant;
    private final JsonObject config;
    private final Map<String, float[]> values = new TreeMap<>();
    private final Map<String, long[]> shapes = new TreeMap<>();

    private RandomHfCheckpoint(String variant, JsonObject config) {
        this.variant = variant;
        this.config = config;
    }

    /**
     * Makes a checkpoint.
     *
     * @param variant one of {@link #VARIANTS}
     * @param seed the model seed
     * @return the checkpoint, in memory
     */
    public static RandomHfCheckpoint create(String variant, long seed) {
        RandomHfCheckpoint c;
        switch (variant) {
            case "bert":
                c = bertLayout(variant, "bert", 0, 2, 1e-12, 2, true);
                break;
            case "roberta":
                c = bertLayout(variant, "roberta", 1, 3, 1e-5, 1, true);
                break;
            case "xlm-roberta":
                c = bertLayout(variant, "xlm-roberta", 1, 2, 1e-5, 1, false);
                break;
            case "xlm-roberta-long":
                // BGE-M3-style long position table (8,194 there; 2,050 here: 2,048 tokens).
                c = bertLayout(variant, "xlm-roberta", 1, 2, 1e-5, 1, false);
                c.config.addProperty("max_position_embeddings", 2050);
                c.shapes.put("embeddings.position_embeddings.weight", new long[] {2050, HIDDEN});
                break;
            case "mpnet":
                c = bertLayout(variant, "mpnet", 1, 3, 1e-12, 0, true);
                break;
            case "distilbert":
                c = distilBert();
                break;
            case "modernbert":
                c = modernBert(variant, false);
                break;
            case "modernbert-bias":
                c = modernBert(variant, true);
                break;
            default:
                throw new IllegalArgumentException(
                        "unknown variant " + variant + " (known: " + VARIANTS + ")");
        }
        c.fill(seed);
        return c;
    }

    /** The variant's name. */
    public String getVariant() {
        return variant;
    }

    /** The {@code model_type}. */
    public String getModelType() {
        return config.get("model_type").getAsString();
    }

    /** A copy of {@code config.json}'s object. */
    public JsonObject getConfig() {
        return config.deepCopy();
    }

    /** The tensors' values by file name (the live map). */
    public Map<String, float[]> getValues() {
        return values;
    }

    /** The tensors' shapes by file name (the live map). */
    public Map<String, long[]> getShapes() {
        return shapes;
    }

    /** The longest text the family takes: the position table less RoBERTa's offset. */
    public int getMaxTokens() {
        int table = config.get("max_position_embeddings").getAsInt();
        switch (getModelType()) {
            case "roberta":
            case "xlm-roberta":
                return table - config.get("pad_token_id").getAsInt() - 1;
            case "mpnet":
                return table - 2; // MPNet's padding index is always 1
            default:
                return table;
        }
    }

    /** The family's padding id. */
    public int getPadTokenId() {
        return config.get("pad_token_id").getAsInt();
    }

    /** The float64 reference of this checkpoint. */
    public Float64Encoder reference() {
        return Float64Encoder.of(config.toString(), values, shapes);
    }

    /**
     * Writes {@code config.json} and {@code model.safetensors}.
     *
     * @param dir the directory (created if missing)
     * @return {@code dir}
     * @throws IOException if writing fails
     */
    public Path write(Path dir) throws IOException {
        return write(dir, config);
    }

    /**
     * Writes the weights with another {@code config.json}.
     *
     * @param dir the directory (created if missing)
     * @param configJson the configuration to write
     * @return {@code dir}
     * @throws IOException if writing fails
     */
    public Path write(Path dir, JsonObject configJson) throws IOException {
        writeConfig(dir, configJson);
        SafetensorsFile.write(dir.resolve("model.safetensors"), tensors(List.copyOf(names())));
        return dir;
    }

    /**
     * Writes {@code config.json}, {@code shards} files {@code model-0000k-of-0000n.safetensors} and
     * {@code model.safetensors.index.json} as transformers writes sharded checkpoints: {@code
     * {"metadata": {"total_size": bytes}, "weight_map": {tensor: file}}}.
     *
     * @param dir the directory (created if missing)
     * @param shards how many files (at least 2)
     * @return {@code dir}
     * @throws IOException if writing fails
     */
    public Path writeSharded(Path dir, int shards) throws IOException {
        if (shards < 2) {
            throw new IllegalArgumentException("shards must be at least 2, got " + shards);
        }
        writeConfig(dir, config);
        List<String> all = names();
        JsonObject weightMap = new JsonObject();
        long total = 0;
        for (int s = 0; s < shards; s++) {
            String file = String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
            List<String> part = all.subList(s * all.size() / shards, (s + 1) * all.size() / shards);
            SafetensorsFile.write(dir.resolve(file), tensors(part));
            for (String name : part) {
                weightMap.addProperty(name, file);
                total += 4L * values.get(name).length;
            }
        }
        JsonObject meta = new JsonObject();
        meta.addProperty("total_size", total);
        JsonObject index = new JsonObject();
        index.add("metadata", meta);
        index.add("weight_map", weightMap);
        Files.writeString(
                dir.resolve("model.safetensors.index.json"),
                new GsonBuilder().setPrettyPrinting().create().toJson(index));
        return dir;
    }

    private List<String> names() {
        return new ArrayList<>(values.keySet());
    }

    private List<CheckpointTensor> tensors(List<String> names) {
        List<CheckpointTensor> list = new ArrayList<>();
        for (String name : names) {
            list.add(new CheckpointTensor(name, shapes.get(name), values.get(name)));
        }
        return Collections.unmodifiableList(list);
    }

    private static void writeConfig(Path dir, JsonObject json) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(
                dir.resolve("config.json"),
                new GsonBuilder().setPrettyPrinting().create().toJson(json));
    }

    // ---------------------------------------------------------------- families

    private static RandomHfCheckpoint bertLayout(
            String variant,
            String modelType,
            int pad,
            int layers,
            double eps,
            int typeVocab,
            boolean pooler) {
        boolean roberta = pad == 1;
        int maxPositions = 130;
        int intermediate = 128;
        JsonObject c = new JsonObject();
        c.addProperty("model_type", modelType);
        c.addProperty("hidden_size", HIDDEN);
        c.addProperty("num_attention_heads", HEADS);
        c.addProperty("num_hidden_layers", layers);
        c.addProperty("intermediate_size", intermediate);
        c.addProperty("hidden_act", "gelu");
        c.addProperty("max_position_embeddings", maxPositions);
        c.addProperty("vocab_size", VOCAB);
        c.addProperty("layer_norm_eps", eps);
        c.addProperty("pad_token_id", pad);
        if (roberta) {
            c.addProperty("bos_token_id", 0);
            c.addProperty("eos_token_id", 2);
        }
        if (!modelType.equals("mpnet")) {
            c.addProperty("type_vocab_size", typeVocab);
            c.addProperty("position_embedding_type", "absolute");
        } else {
            c.addProperty("relative_attention_num_buckets", 32);
        }
        RandomHfCheckpoint k = new RandomHfCheckpoint(variant, c);
        k.shape("embeddings.word_embeddings.weight", VOCAB, HIDDEN);
        k.shape("embeddings.position_embeddings.weight", maxPositions, HIDDEN);
        if (typeVocab > 0) {
            k.shape("embeddings.token_type_embeddings.weight", typeVocab, HIDDEN);
        }
        k.norm("embeddings.LayerNorm", true);
        boolean mpnet = modelType.equals("mpnet");
        for (int l = 0; l < layers; l++) {
            String p = "encoder.layer." + l + ".";
            String[] qkvo =
                    mpnet
                            ? new String[] {
                                "attention.attn.q",
                                "attention.attn.k",
                                "attention.attn.v",
                                "attention.attn.o"
                            }
                            : new String[] {
                                "attention.self.query",
                                "attention.self.key",
                                "attention.self.value",
                                "attention.output.dense"
                            };
            for (String n : qkvo) {
                k.linear(p + n, HIDDEN, HIDDEN, true);
            }
            k.norm(p + (mpnet ? "attention.LayerNorm" : "attention.output.LayerNorm"), true);
            k.linear(p + "intermediate.dense", intermediate, HIDDEN, true);
            k.linear(p + "output.dense", HIDDEN, intermediate, true);
            k.norm(p + "output.LayerNorm", true);
        }
        if (mpnet) {
            k.shape("encoder.relative_attention_bias.weight", 32, HEADS);
        }
        if (pooler) {
            k.linear("pooler.dense", HIDDEN, HIDDEN, true);
        }
        return k;
    }

    private static RandomHfCheckpoint distilBert() {
        int layers = 2;
        int maxPositions = 130;
        int ffn = 128;
        JsonObject c = new JsonObject();
        c.addProperty("model_type", "distilbert");
        c.addProperty("dim", HIDDEN);
        c.addProperty("n_heads", HEADS);
        c.addProperty("n_layers", layers);
        c.addProperty("hidden_dim", ffn);
        c.addProperty("activation", "gelu");
        c.addProperty("max_position_embeddings", maxPositions);
        c.addProperty("vocab_size", VOCAB);
        c.addProperty("pad_token_id", 0);
        c.addProperty("sinusoidal_pos_embds", false);
        RandomHfCheckpoint k = new RandomHfCheckpoint("distilbert", c);
        k.shape("embeddings.word_embeddings.weight", VOCAB, HIDDEN);
        k.shape("embeddings.position_embeddings.weight", maxPositions, HIDDEN);
        k.norm("embeddings.LayerNorm", true);
        for (int l = 0; l < layers; l++) {
            String p = "transformer.layer." + l + ".";
            for (String n : new String[] {"q_lin", "k_lin", "v_lin", "out_lin"}) {
                k.linear(p + "attention." + n, HIDDEN, HIDDEN, true);
            }
            k.norm(p + "sa_layer_norm", true);
            k.linear(p + "ffn.lin1", ffn, HIDDEN, true);
            k.linear(p + "ffn.lin2", HIDDEN, ffn, true);
            k.norm(p + "output_layer_norm", true);
        }
        return k;
    }

    private static RandomHfCheckpoint modernBert(String variant, boolean biases) {
        int layers = 4;
        int every = 3;
        int intermediate = 96;
        double globalTheta = biases ? 80_000.0 : 160_000.0;
        double localTheta = biases ? 5_000.0 : 10_000.0;
        JsonObject c = new JsonObject();
        c.addProperty("model_type", "modernbert");
        c.addProperty("hidden_size", HIDDEN);
        c.addProperty("num_attention_heads", HEADS);
        c.addProperty("num_hidden_layers", layers);
        c.addProperty("intermediate_size", intermediate);
        c.addProperty("hidden_activation", "gelu");
        c.addProperty("max_position_embeddings", 8192);
        c.addProperty("vocab_size", VOCAB);
        // ModernBERT's default pad id (50283) does not fit a 300-token vocabulary.
        c.addProperty("pad_token_id", 3);
        c.addProperty("norm_eps", 1e-5);
        c.addProperty("norm_bias", biases);
        c.addProperty("attention_bias", biases);
        c.addProperty("mlp_bias", biases);
        c.addProperty("global_attn_every_n_layers", every);
        c.addProperty("local_attention", 16);
        if (biases) {
            // The Hub's spelling (transformers 4.x).
            c.addProperty("global_rope_theta", globalTheta);
            c.addProperty("local_rope_theta", localTheta);
        } else {
            // transformers 5's spelling.
            JsonArray types = new JsonArray();
            for (int l = 0; l < layers; l++) {
                types.add(l % every == 0 ? "full_attention" : "sliding_attention");
            }
            c.add("layer_types", types);
            JsonObject rope = new JsonObject();
            rope.add("full_attention", rope(globalTheta));
            rope.add("sliding_attention", rope(localTheta));
            c.add("rope_parameters", rope);
        }
        RandomHfCheckpoint k = new RandomHfCheckpoint(variant, c);
        k.shape("embeddings.tok_embeddings.weight", VOCAB, HIDDEN);
        k.norm("embeddings.norm", biases);
        for (int l = 0; l < layers; l++) {
            String p = "layers." + l + ".";
            if (l > 0) {
                k.norm(p + "attn_norm", biases);
            }
            k.linear(p + "attn.Wqkv", 3 * HIDDEN, HIDDEN, biases);
            k.linear(p + "attn.Wo", HIDDEN, HIDDEN, biases);
            k.norm(p + "mlp_norm", biases);
            k.linear(p + "mlp.Wi", 2 * intermediate, HIDDEN, biases);
            k.linear(p + "mlp.Wo", HIDDEN, intermediate, biases);
        }
        k.norm("final_norm", biases);
        return k;
    }

    private static JsonObject rope(double theta) {
        JsonObject o = new JsonObject();
        o.addProperty("rope_type", "default");
        o.addProperty("rope_theta", theta);
        return o;
    }

    // ---------------------------------------------------------------- tensors

    private void shape(String name, long... dims) {
        shapes.put(name, dims);
    }

    private void linear(String name, int out, int in, boolean bias) {
        shape(name + ".weight", out, in);
        if (bias) {
            shape(name + ".bias", out);
        }
    }

    private void norm(String name, boolean bias) {
        shape(name + ".weight", HIDDEN);
        if (bias) {
            shape(name + ".bias", HIDDEN);
        }
    }

    /** Generates every tensor, in sorted-name order, from the model seed. */
    private void fill(long seed) {
        int t = 0;
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            String name = e.getKey();
            long n = 1;
            for (long d : e.getValue()) {
                n *= d;
            }
            float scale;
            float offset = 0f;
            if (name.endsWith(".bias")) {
                scale = 0.05f;
            } else if (name.contains("relative_attention_bias")) {
                scale = 1f;
            } else if (name.startsWith("embeddings.") && !isNorm(name)) {
                scale = 0.5f;
            } else if (isNorm(name)) {
                scale = 0.1f;
                offset = 1f;
            } else {
                scale = 0.2f;
            }
            long tensorSeed = SeededCheckpoint.tensorSeed(seed, t++);
            values.put(
                    name, SeededCheckpoint.generate(tensorSeed, Math.toIntExact(n), scale, offset));
        }
    }

    private static boolean isNorm(String name) {
        return name.contains("LayerNorm")
                || name.contains("layer_norm")
                || name.contains("norm.")
                || name.contains("_norm.");
    }
}
