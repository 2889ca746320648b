package io.github.tilewise.it.reference;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * An independent float64 reference of the encoder families Tilewise loads, written from Hugging
 * Face transformers' modeling source (eager attention path) and nothing else: plain Java {@code
 * double} arithmetic, no DJL, no Tilewise class. It reads {@code config.json} with the field names
 * (and defaults) of each family's transformers configuration and the weights under the names {@code
 * save_pretrained} writes for the base model, and returns {@code last_hidden_state}.
 *
 * <p>What it reproduces, family by family (the transformers classes in parentheses):
 *
 * <ul>
 *   <li><b>bert</b> ({@code BertEmbeddings}, {@code BertLayer}): word + absolute position ({@code
 *       0..S-1}) + token type 0, LayerNorm; per layer scores {@code q·k / sqrt(d)} plus the key
 *       padding mask, softmax, output dense, residual, LayerNorm, intermediate dense with the
 *       {@code hidden_act}, output dense, residual, LayerNorm.
 *   <li><b>roberta</b>, <b>xlm-roberta</b> ({@code RobertaEmbeddings}): as BERT, but position ids
 *       {@code cumsum(ids != pad) * (ids != pad) + pad} with {@code pad = pad_token_id} ({@code
 *       create_position_ids_from_input_ids}).
 *   <li><b>distilbert</b> ({@code Embeddings}, {@code TransformerBlock}): word + position {@code
 *       0..S-1}, LayerNorm with eps 1e-12 everywhere, {@code (q / sqrt(d))·k}, no token types,
 *       field names {@code dim}, {@code n_heads}, {@code n_layers}, {@code hidden_dim}, {@code
 *       activation}.
 *   <li><b>mpnet</b> ({@code MPNetEmbeddings}, {@code MPNetEncoder}): positions as RoBERTa's with
 *       the padding index fixed at 1 (the embeddings hard-code it), no token types, and the
 *       relative-position bias {@code relative_attention_bias[bucket(j - i)][h]} added to the
 *       scaled scores, shared by every layer; {@code compute_position_bias} is called with its
 *       default of 32 buckets (whatever {@code relative_attention_num_buckets} says) and {@code
 *       max_distance} 128, on {@code arange} positions, and the bucket of a distance is computed in
 *       float32 as torch does on the CPU ({@link #mpnetBucket}).
 *   <li><b>modernbert</b> ({@code ModernBertModel}): token embeddings and LayerNorm (bias only with
 *       {@code norm_bias}); per layer a pre-norm (none for layer 0), fused {@code Wqkv} (viewed as
 *       {@code [3, heads, d]}), rotary embeddings on q and k (cos/sin of the float32 angles, see
 *       {@link #rotaryTable}), scores {@code q·k · d^-0.5} plus the padding mask and, on local
 *       layers, the window {@code |i - j| <= local_attention / 2}; {@code Wo}; residual; pre-norm,
 *       {@code Wi} chunked into input and gate, {@code Wo(act(input) * gate)}, residual; a final
 *       LayerNorm. Layer types come from {@code layer_types} when present, else layer {@code l} is
 *       global when {@code l % global_attn_every_n_layers == 0}; thetas from {@code
 *       rope_parameters} when present, else {@code global_rope_theta} / {@code local_rope_theta}.
 * </ul>
 *
 * <p>Masked keys are left out of the softmax (transformers adds {@code finfo.min}, which makes
 * their weights exactly 0 in float32); a query row with no visible key at all (only possible at
 * padding) averages every key uniformly, as {@code finfo.min}-shifted scores do. Padding rows are
 * computed as transformers computes them; callers compare real tokens.
 */
public final class Float64Encoder {

    /** The families this reference knows, as {@code model_type} spells them. */
    public static final String[] MODEL_TYPES = {
        "bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "modernbert"
    };

    private final String modelType;
    private final JsonObject config;
    private final Map<String, float[]> values;
    private final Map<String, long[]> shapes;
    private final Map<String, double[]> cache = new HashMap<>();
    private final Set<String> ablations;

    private final int hidden;
    private final int heads;
    private final int headDim;
    private final int layers;
    private final int intermediate;
    private final double eps;
    private final String activation;

    private Float64Encoder(
            JsonObject config,
            Map<String, float[]> values,
            Map<String, long[]> shapes,
            Set<String> ablations) {
        this.config = config;
        this.ablations = Set.copyOf(ablations);
        if (!ABLATIONS.containsAll(ablations)) {
            throw new IllegalArgumentException("ablations are " + ABLATIONS + ", got " + ablations);
        }
        this.modelType = config.get("model_type").getAsString();
        if (!Arrays.asList(MODEL_TYPES).contains(modelType)) {
            throw new IllegalArgumentException("no float64 reference for " + modelType);
        }
        this.values = values;
        this.shapes = shapes;
        boolean distil = modelType.equals("distilbert");
        boolean modern = modelType.equals("modernbert");
        this.hidden = integer(distil ? "dim" : "hidden_size", -1);
        this.heads = integer(distil ? "n_heads" : "num_attention_heads", -1);
        this.layers = integer(distil ? "n_layers" : "num_hidden_layers", -1);
        this.intermediate = integer(distil ? "hidden_dim" : "intermediate_size", -1);
        this.headDim = hidden / heads;
        this.eps =
                distil
                        ? 1e-12
                        : modern ? number("norm_eps", 1e-5) : number("layer_norm_eps", 1e-12);
        this.activation =
                string(distil ? "activation" : modern ? "hidden_activation" : "hidden_act", "gelu");
    }

    /**
     * Creates the reference of one checkpoint.
     *
     * @param configJson the text of {@code config.json}
     * @param values the tensors' float32 values, row-major, under the names {@code save_pretrained}
     *     writes for the base model
     * @param shapes the tensors' shapes, same names
     * @return the reference
     */
    public static Float64Encoder of(
            String configJson, Map<String, float[]> values, Map<String, long[]> shapes) {
        return new Float64Encoder(
                JsonParser.parseString(configJson).getAsJsonObject(), values, shapes, Set.of());
    }

    /**
     * Deliberate mistakes, to show that a comparison with this reference would catch them: {@code
     * window+1} (ModernBERT's window one position wider), {@code no-window} (every layer global),
     * {@code swap-theta} (global and local rotary bases exchanged), {@code double-angles} (rotary
     * angles and inv_freq in float64 instead of float32), {@code no-relative-bias} (MPNet without
     * its bias), {@code absolute-positions} (RoBERTa / MPNet positions {@code 0..S-1}), {@code
     * gelu-tanh} (the tanh GELU for {@code gelu}).
     */
    public static final List<String> ABLATIONS =
            List.of(
                    "window+1",
                    "no-window",
                    "swap-theta",
                    "double-angles",
                    "no-relative-bias",
                    "absolute-positions",
                    "gelu-tanh");

    /**
     * The same reference with deliberate mistakes.
     *
     * @param names some of {@link #ABLATIONS}
     * @return a new reference
     */
    public Float64Encoder ablate(String... names) {
        return new Float64Encoder(config, values, shapes, Set.of(names));
    }

    /** The {@code model_type}. */
    public String getModelType() {
        return modelType;
    }

    /**
     * Computes {@code last_hidden_state}.
     *
     * @param ids {@code [batch][seq]} token ids
     * @param mask {@code [batch][seq]} 1 for tokens, 0 for padding, or null for no padding
     * @return {@code [batch][seq][hidden]}
     */
    public double[][][] encode(int[][] ids, int[][] mask) {
        double[][][] out = new double[ids.length][][];
        for (int b = 0; b < ids.length; b++) {
            int[] m = mask == null ? ones(ids[b].length) : mask[b];
            out[b] =
                    modelType.equals("modernbert")
                            ? modernBert(ids[b], m)
                            : postNormEncoder(ids[b], m);
        }
        return out;
    }

    // ---------------------------------------------------------------- BERT-layout families

    private double[][] postNormEncoder(int[] ids, int[] mask) {
        int s = ids.length;
        boolean distil = modelType.equals("distilbert");
        boolean mpnet = modelType.equals("mpnet");
        boolean robertaPositions =
                (modelType.equals("roberta") || modelType.equals("xlm-roberta") || mpnet)
                        && !ablations.contains("absolute-positions");
        int padding =
                robertaPositions
                        ? mpnet ? 1 : integer("pad_token_id", 1)
                        : integer("pad_token_id", 0);
        double[] word = tensor("embeddings.word_embeddings.weight", -1, hidden);
        double[] position = tensor("embeddings.position_embeddings.weight", -1, hidden);
        String typeName = "embeddings.token_type_embeddings.weight";
        double[] types = distil || mpnet || !values.containsKey(typeName) ? null : tensor(typeName);
        int table = Math.toIntExact(shapes.get("embeddings.position_embeddings.weight")[0]);
        double[][] x = new double[s][hidden];
        int running = 0;
        for (int t = 0; t < s; t++) {
            int pos;
            if (robertaPositions) {
                boolean real = ids[t] != padding;
                running += real ? 1 : 0;
                pos = (real ? running : 0) + padding;
            } else {
                pos = t;
            }
            if (pos >= table) {
                throw new IllegalArgumentException(
                        "position " + pos + " is outside the table of " + table);
            }
            for (int h = 0; h < hidden; h++) {
                double v = word[ids[t] * hidden + h] + position[pos * hidden + h];
                if (types != null) {
                    v += types[h]; // token_type_ids default to zeros
                }
                x[t][h] = v;
            }
        }
        x = layerNorm(x, "embeddings.LayerNorm");
        double[][] bias = mpnet && !ablations.contains("no-relative-bias") ? mpnetBias(s) : null;
        for (int l = 0; l < layers; l++) {
            Names n = names(l);
            double[][] q = linear(x, n.query);
            double[][] k = linear(x, n.key);
            double[][] v = linear(x, n.value);
            boolean[][] visible = new boolean[s][s];
            for (int i = 0; i < s; i++) {
                for (int j = 0; j < s; j++) {
                    visible[i][j] = mask[j] != 0;
                }
            }
            double[][] context = attention(q, k, v, visible, 1 / Math.sqrt(headDim), bias);
            double[][] a = layerNorm(add(linear(context, n.output), x), n.attentionNorm);
            double[][] f = linear(activate(linear(a, n.intermediate)), n.ffnOutput);
            x = layerNorm(add(f, a), n.outputNorm);
        }
        return x;
    }

    /** The HF names of one post-norm layer's tensors (without {@code .weight} / {@code .bias}). */
    private static final class Names {
        String query;
        String key;
        String value;
        String output;
        String attentionNorm;
        String intermediate;
        String ffnOutput;
        String outputNorm;
    }

    private Names names(int l) {
        Names n = new Names();
        switch (modelType) {
            case "distilbert":
                {
                    String p = "transformer.layer." + l + ".";
                    n.query = p + "attention.q_lin";
                    n.key = p + "attention.k_lin";
                    n.value = p + "attention.v_lin";
                    n.output = p + "attention.out_lin";
                    n.attentionNorm = p + "sa_layer_norm";
                    n.intermediate = p + "ffn.lin1";
                    n.ffnOutput = p + "ffn.lin2";
                    n.outputNorm = p + "output_layer_norm";
                    return n;
                }
            case "mpnet":
                {
                    String p = "encoder.layer." + l + ".";
                    n.query = p + "attention.attn.q";
                    n.key = p + "attention.attn.k";
                    n.value = p + "attention.attn.v";
                    n.output = p + "attention.attn.o";
                    n.attentionNorm = p + "attention.LayerNorm";
                    n.intermediate = p + "intermediate.dense";
                    n.ffnOutput = p + "output.dense";
                    n.outputNorm = p + "output.LayerNorm";
                    return n;
                }
            default:
                {
                    String p = "encoder.layer." + l + ".";
                    n.query = p + "attention.self.query";
                    n.key = p + "attention.self.key";
                    n.value = p + "attention.self.value";
                    n.output = p + "attention.output.dense";
                    n.attentionNorm = p + "attention.output.LayerNorm";
                    n.intermediate = p + "intermediate.dense";
                    n.ffnOutput = p + "output.dense";
                    n.outputNorm = p + "output.LayerNorm";
                    return n;
                }
        }
    }

    /** {@code bias[h][i][j]} of MPNet's relative-position bias for a sequence of {@code s}. */
    private double[][] mpnetBias(int s) {
        double[] table = tensor("encoder.relative_attention_bias.weight", -1, heads);
        int rows = table.length / heads;
        double[][] byDistance = new double[heads][2 * s - 1];
        for (int rel = -(s - 1); rel <= s - 1; rel++) {
            int bucket = mpnetBucket(rel, 32, 128);
            if (bucket >= rows) {
                throw new IllegalArgumentException(
                        "bucket " + bucket + " outside the relative bias table of " + rows);
            }
            for (int h = 0; h < heads; h++) {
                byDistance[h][rel + s - 1] = table[bucket * heads + h];
            }
        }
        return byDistance;
    }

    /**
     * {@code MPNetEncoder.relative_position_bucket} for one {@code relative_position = memory -
     * context}, with the logarithmic part in float32 as torch computes it on the CPU: {@code
     * n.float() / max_exact} and {@code log} in float32, divided by the float32 rounding of the
     * Python float {@code log(max_distance / max_exact)}, times the integer, truncated.
     *
     * @param relativePosition {@code j - i}
     * @param numBuckets the number of buckets (32 as MPNet calls it)
     * @param maxDistance the distance of the last bucket (128)
     * @return the bucket
     */
    public static int mpnetBucket(int relativePosition, int numBuckets, int maxDistance) {
        int ret = 0;
        int n = -relativePosition;
        int half = numBuckets / 2;
        if (n < 0) {
            ret += half;
        }
        n = Math.abs(n);
        int maxExact = half / 2;
        if (n < maxExact) {
            return ret + n;
        }
        float ratio = (float) n / (float) maxExact;
        float logRatio = (float) Math.log(ratio);
        float denominator = (float) Math.log((double) maxDistance / maxExact);
        float scaled = logRatio / denominator * (float) (half - maxExact);
        int large = maxExact + (int) scaled;
        return ret + Math.min(large, half - 1);
    }

    // ---------------------------------------------------------------- ModernBERT

    private double[][] modernBert(int[] ids, int[] mask) {
        int s = ids.length;
        double[] tok = tensor("embeddings.tok_embeddings.weight", -1, hidden);
        double[][] x = new double[s][hidden];
        for (int t = 0; t < s; t++) {
            System.arraycopy(tok, ids[t] * hidden, x[t], 0, hidden);
        }
        x = layerNorm(x, "embeddings.norm");
        int every = integer("global_attn_every_n_layers", 3);
        int window = integer("local_attention", 128) / 2 + (ablations.contains("window+1") ? 1 : 0);
        boolean[] local = new boolean[layers];
        JsonElement types = config.get("layer_types");
        for (int l = 0; l < layers; l++) {
            local[l] =
                    types != null && !types.isJsonNull()
                            ? types.getAsJsonArray()
                                    .get(l)
                                    .getAsString()
                                    .equals("sliding_attention")
                            : l % every != 0;
        }
        double globalTheta = number("global_rope_theta", 160_000.0);
        double localTheta = number("local_rope_theta", 10_000.0);
        JsonElement rope = config.get("rope_parameters");
        if (rope != null && rope.isJsonObject()) {
            JsonObject r = rope.getAsJsonObject();
            if (r.has("full_attention")) {
                globalTheta = r.getAsJsonObject("full_attention").get("rope_theta").getAsDouble();
            }
            if (r.has("sliding_attention")) {
                localTheta = r.getAsJsonObject("sliding_attention").get("rope_theta").getAsDouble();
            }
        }
        if (ablations.contains("swap-theta")) {
            double t = globalTheta;
            globalTheta = localTheta;
            localTheta = t;
        }
        boolean exact = ablations.contains("double-angles");
        double[][][] globalRope =
                exact
                        ? rotaryTable64(globalTheta, headDim, s)
                        : rotaryTable(globalTheta, headDim, s);
        double[][][] localRope =
                exact ? rotaryTable64(localTheta, headDim, s) : rotaryTable(localTheta, headDim, s);
        String act = actName();
        for (int l = 0; l < layers; l++) {
            String p = "layers." + l + ".";
            double[][] h = l == 0 ? x : layerNorm(x, p + "attn_norm");
            double[][] qkv = linear(h, p + "attn.Wqkv");
            double[][] q = new double[s][hidden];
            double[][] k = new double[s][hidden];
            double[][] v = new double[s][hidden];
            for (int t = 0; t < s; t++) {
                System.arraycopy(qkv[t], 0, q[t], 0, hidden);
                System.arraycopy(qkv[t], hidden, k[t], 0, hidden);
                System.arraycopy(qkv[t], 2 * hidden, v[t], 0, hidden);
            }
            double[][][] rope2 = local[l] ? localRope : globalRope;
            boolean windowed = local[l] && !ablations.contains("no-window");
            rotate(q, rope2);
            rotate(k, rope2);
            boolean[][] visible = new boolean[s][s];
            for (int i = 0; i < s; i++) {
                for (int j = 0; j < s; j++) {
                    visible[i][j] = mask[j] != 0 && (!windowed || Math.abs(i - j) <= window);
                }
            }
            double[][] context = attention(q, k, v, visible, Math.pow(headDim, -0.5), null);
            x = add(x, linear(context, p + "attn.Wo"));
            double[][] wi = linear(layerNorm(x, p + "mlp_norm"), p + "mlp.Wi");
            double[][] glu = new double[s][intermediate];
            for (int t = 0; t < s; t++) {
                for (int c = 0; c < intermediate; c++) {
                    glu[t][c] = activate(act, wi[t][c]) * wi[t][intermediate + c];
                }
            }
            x = add(x, linear(glu, p + "mlp.Wo"));
        }
        return layerNorm(x, "final_norm");
    }

    /**
     * {@code ModernBertRotaryEmbedding}'s cos and sin, {@code [2][seq][d]}: {@code inv_freq = 1 /
     * theta^(arange(0, d, 2) / d)} in float32, angles {@code inv_freq * t} in float32, their cosine
     * and sine rounded to float32 (torch's float32 {@code cos} / {@code sin}), duplicated over both
     * halves ({@code cat(freqs, freqs)}).
     *
     * @param theta the base
     * @param d the head size
     * @param seq the positions {@code 0..seq-1}
     * @return {@code {cos, sin}}
     */
    public static double[][][] rotaryTable(double theta, int d, int seq) {
        int half = d / 2;
        float[] invFreq = new float[half];
        float base = (float) theta;
        for (int i = 0; i < half; i++) {
            float exponent = (float) (2 * i) / (float) d;
            float power = (float) Math.pow(base, exponent);
            invFreq[i] = 1.0f / power;
        }
        double[][] cos = new double[seq][d];
        double[][] sin = new double[seq][d];
        for (int t = 0; t < seq; t++) {
            for (int i = 0; i < half; i++) {
                float angle = invFreq[i] * (float) t;
                float c = (float) Math.cos(angle);
                float sn = (float) Math.sin(angle);
                cos[t][i] = c;
                cos[t][i + half] = c;
                sin[t][i] = sn;
                sin[t][i + half] = sn;
            }
        }
        return new double[][][] {cos, sin};
    }

    /** {@link #rotaryTable} with every step in float64 (an ablation). */
    private static double[][][] rotaryTable64(double theta, int d, int seq) {
        int half = d / 2;
        double[][] cos = new double[seq][d];
        double[][] sin = new double[seq][d];
        for (int t = 0; t < seq; t++) {
            for (int i = 0; i < half; i++) {
                double angle = t / Math.pow(theta, (double) (2 * i) / d);
                cos[t][i] = cos[t][i + half] = Math.cos(angle);
                sin[t][i] = sin[t][i + half] = Math.sin(angle);
            }
        }
        return new double[][][] {cos, sin};
    }

    /** {@code x * cos + rotate_half(x) * sin} per head, in place; {@code x} is {@code [s][H]}. */
    private void rotate(double[][] x, double[][][] table) {
        int half = headDim / 2;
        double[] r = new double[headDim];
        for (int t = 0; t < x.length; t++) {
            double[] cos = table[0][t];
            double[] sin = table[1][t];
            for (int h = 0; h < heads; h++) {
                int o = h * headDim;
                for (int i = 0; i < headDim; i++) {
                    double rotated = i < half ? -x[t][o + i + half] : x[t][o + i - half];
                    r[i] = x[t][o + i] * cos[i] + rotated * sin[i];
                }
                System.arraycopy(r, 0, x[t], o, headDim);
            }
        }
    }

    // ---------------------------------------------------------------- shared pieces

    /**
     * Softmax attention per head: {@code softmax(q·k * scale + bias)} over the visible keys, times
     * v.
     *
     * @param bias {@code [heads][2s - 1]} by {@code j - i + s - 1}, or null
     */
    private double[][] attention(
            double[][] q,
            double[][] k,
            double[][] v,
            boolean[][] visible,
            double scale,
            double[][] bias) {
        int s = q.length;
        double[][] out = new double[s][hidden];
        double[] scores = new double[s];
        for (int h = 0; h < heads; h++) {
            int o = h * headDim;
            for (int i = 0; i < s; i++) {
                boolean any = false;
                for (int j = 0; j < s; j++) {
                    any |= visible[i][j];
                }
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < s; j++) {
                    if (any && !visible[i][j]) {
                        continue;
                    }
                    if (!any) {
                        scores[j] = 0; // every score at finfo.min: a uniform average
                        max = 0;
                        continue;
                    }
                    double dot = 0;
                    for (int c = 0; c < headDim; c++) {
                        dot += q[i][o + c] * k[j][o + c];
                    }
                    double sc = dot * scale;
                    if (bias != null) {
                        sc += bias[h][j - i + s - 1];
                    }
                    scores[j] = sc;
                    max = Math.max(max, sc);
                }
                double sum = 0;
                for (int j = 0; j < s; j++) {
                    if (any && !visible[i][j]) {
                        continue;
                    }
                    double e = Math.exp(scores[j] - max);
                    scores[j] = e;
                    sum += e;
                }
                for (int j = 0; j < s; j++) {
                    if (any && !visible[i][j]) {
                        continue;
                    }
                    double w = scores[j] / sum;
                    for (int c = 0; c < headDim; c++) {
                        out[i][o + c] += w * v[j][o + c];
                    }
                }
            }
        }
        return out;
    }

    /** {@code x W^T + b} with the {@code name.weight} {@code [out, in]} and optional bias. */
    private double[][] linear(double[][] x, String name) {
        long[] shape = shapes.get(name + ".weight");
        if (shape == null || shape.length != 2) {
            throw new IllegalArgumentException("missing matrix " + name + ".weight");
        }
        int out = Math.toIntExact(shape[0]);
        int in = Math.toIntExact(shape[1]);
        double[] w = tensor(name + ".weight");
        double[] b = values.containsKey(name + ".bias") ? tensor(name + ".bias", out) : null;
        double[][] y = new double[x.length][out];
        for (int t = 0; t < x.length; t++) {
            if (x[t].length != in) {
                throw new IllegalArgumentException(
                        name + " takes " + in + " inputs, got " + x[t].length);
            }
            for (int r = 0; r < out; r++) {
                double acc = b == null ? 0 : b[r];
                int base = r * in;
                for (int c = 0; c < in; c++) {
                    acc += w[base + c] * x[t][c];
                }
                y[t][r] = acc;
            }
        }
        return y;
    }

    /** {@code nn.LayerNorm} over the last axis: biased variance, weight, optional bias. */
    private double[][] layerNorm(double[][] x, String name) {
        double[] w = tensor(name + ".weight", hidden);
        double[] b = values.containsKey(name + ".bias") ? tensor(name + ".bias", hidden) : null;
        double[][] y = new double[x.length][hidden];
        for (int t = 0; t < x.length; t++) {
            double mean = 0;
            for (double v : x[t]) {
                mean += v;
            }
            mean /= hidden;
            double var = 0;
            for (double v : x[t]) {
                var += (v - mean) * (v - mean);
            }
            var /= hidden;
            double inv = 1 / Math.sqrt(var + eps);
            for (int h = 0; h < hidden; h++) {
                y[t][h] = (x[t][h] - mean) * inv * w[h] + (b == null ? 0 : b[h]);
            }
        }
        return y;
    }

    private static double[][] add(double[][] a, double[][] b) {
        double[][] y = new double[a.length][];
        for (int t = 0; t < a.length; t++) {
            y[t] = new double[a[t].length];
            for (int h = 0; h < a[t].length; h++) {
                y[t][h] = a[t][h] + b[t][h];
            }
        }
        return y;
    }

    private double[][] activate(double[][] x) {
        double[][] y = new double[x.length][];
        for (int t = 0; t < x.length; t++) {
            y[t] = new double[x[t].length];
            for (int c = 0; c < x[t].length; c++) {
                y[t][c] = activate(actName(), x[t][c]);
            }
        }
        return y;
    }

    /**
     * transformers' {@code ACT2FN} for the names these families use: {@code gelu} is the exact
     * {@code 0.5 x (1 + erf(x / sqrt 2))}; {@code gelu_new} / {@code gelu_pytorch_tanh} the tanh
     * form; {@code relu}; {@code silu} / {@code swish}.
     *
     * @param name the activation's name
     * @param x the input
     * @return the activation
     */
    public static double activate(String name, double x) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "gelu":
                return 0.5 * x * (1 + erf(x / Math.sqrt(2)));
            case "gelu_new":
            case "gelu_pytorch_tanh":
                return 0.5
                        * x
                        * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
            case "relu":
                return Math.max(0, x);
            case "silu":
            case "swish":
                return x / (1 + Math.exp(-x));
            default:
                throw new IllegalArgumentException("no float64 activation " + name);
        }
    }

    /**
     * The error function to about 1e-15: {@code 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) / (2n+1)!!}
     * (all terms positive, so no cancellation) for {@code |x| < 6}, {@code ±1} beyond (where {@code
     * erfc} is below 2.2e-17).
     *
     * @param x the argument
     * @return {@code erf(x)}
     */
    public static double erf(double x) {
        double a = Math.abs(x);
        if (a >= 6) {
            return Math.signum(x);
        }
        double term = a;
        double sum = a;
        double twoX2 = 2 * a * a;
        for (int n = 1; n < 1000; n++) {
            term *= twoX2 / (2 * n + 1);
            sum += term;
            if (term < 1e-17 * sum) {
                break;
            }
        }
        double r = 2 / Math.sqrt(Math.PI) * Math.exp(-a * a) * sum;
        return Math.copySign(Math.min(r, 1.0), x);
    }

    private String actName() {
        return activation.equals("gelu") && ablations.contains("gelu-tanh")
                ? "gelu_new"
                : activation;
    }

    private static int[] ones(int n) {
        int[] m = new int[n];
        Arrays.fill(m, 1);
        return m;
    }

    /** A tensor as doubles, checked to have {@code dims} (-1: any) and cached. */
    private double[] tensor(String name, int... dims) {
        float[] f = values.get(name);
        long[] shape = shapes.get(name);
        if (f == null || shape == null) {
            throw new IllegalArgumentException("missing tensor " + name);
        }
        if (dims.length > 0) {
            boolean ok = shape.length == dims.length;
            for (int i = 0; ok && i < dims.length; i++) {
                ok = dims[i] < 0 || shape[i] == dims[i];
            }
            if (!ok) {
                throw new IllegalArgumentException(
                        name
                                + " has shape "
                                + Arrays.toString(shape)
                                + ", expected "
                                + Arrays.toString(dims));
            }
        }
        return cache.computeIfAbsent(
                name,
                key -> {
                    double[] d = new double[f.length];
                    for (int i = 0; i < f.length; i++) {
                        d[i] = f[i];
                    }
                    return d;
                });
    }

    private int integer(String key, int fallback) {
        JsonElement e = config.get(key);
        if (e == null || e.isJsonNull()) {
            if (fallback == -1) {
                throw new IllegalArgumentException("config.json has no " + key);
            }
            return fallback;
        }
        return e.getAsInt();
    }

    private double number(String key, double fallback) {
        JsonElement e = config.get(key);
        return e == null || e.isJsonNull() ? fallback : e.getAsDouble();
    }

    private String string(String key, String fallback) {
        JsonElement e = config.get(key);
        return e == null || e.isJsonNull() ? fallback : e.getAsString();
    }
}
