package io.github.tilewise.djl.encoder;

import io.github.tilewise.djl.encoder.checkpoint.EncoderCheckpoint;
import java.util.Map;

/**
 * BERT written out in float64 loops from the paper's equations and Hugging Face's weight names: the
 * independent oracle of the encoder tests. Runs one unpadded sequence.
 */
final class NaiveBert {

    private final Map<String, float[]> w;
    private final int hidden;
    private final int heads;
    private final int layers;
    private final int inter;
    private final double eps;
    private final String activation;

    NaiveBert(
            Map<String, float[]> weights,
            int hidden,
            int heads,
            int layers,
            int inter,
            double eps,
            String activation) {
        this.w = weights;
        this.hidden = hidden;
        this.heads = heads;
        this.layers = layers;
        this.inter = inter;
        this.eps = eps;
        this.activation = activation;
    }

    /** The oracle for a checkpoint's weights and configuration. */
    static NaiveBert of(EncoderCheckpoint checkpoint) {
        EncoderConfig config = checkpoint.getConfig();
        String act =
                config.getActivation() == HiddenActivation.GELU
                        ? "gelu"
                        : config.getActivation() == HiddenActivation.GELU_TANH
                                ? "gelu_new"
                                : "relu";
        return new NaiveBert(
                RandomCheckpoint.arrays(checkpoint),
                config.getHiddenSize(),
                config.getNumHeads(),
                config.getNumLayers(),
                config.getIntermediateSize(),
                config.getLayerNormEps(),
                act);
    }

    /** Returns the last hidden state {@code [len][hidden]}. */
    double[][] encode(long[] ids, long[] types) {
        return encode(ids, types, null);
    }

    /**
     * Returns the last hidden state {@code [len][hidden]}, where keys with {@code keyMask[j] == 0}
     * are hidden from every query (null: all visible).
     */
    double[][] encode(long[] ids, long[] types, long[] keyMask) {
        int n = ids.length;
        double[][] x = new double[n][hidden];
        float[] words = w.get("embeddings.word_embeddings.weight");
        float[] pos = w.get("embeddings.position_embeddings.weight");
        float[] typ = w.get("embeddings.token_type_embeddings.weight");
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < hidden; h++) {
                x[t][h] = words[(int) ids[t] * hidden + h] + pos[t * hidden + h];
                if (typ != null) {
                    x[t][h] += typ[(int) types[t] * hidden + h];
                }
            }
        }
        x = layerNorm(x, "embeddings.LayerNorm");
        for (int l = 0; l < layers; l++) {
            String p = "encoder.layer." + l + ".";
            double[][] q = linear(x, p + "attention.self.query", hidden, hidden);
            double[][] k = linear(x, p + "attention.self.key", hidden, hidden);
            double[][] v = linear(x, p + "attention.self.value", hidden, hidden);
            int d = hidden / heads;
            double[][] ctx = new double[n][hidden];
            for (int hd = 0; hd < heads; hd++) {
                for (int i = 0; i < n; i++) {
                    double[] s = new double[n];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) {
                        if (keyMask != null && keyMask[j] == 0) {
                            s[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        double dot = 0;
                        for (int c = 0; c < d; c++) {
                            dot += q[i][hd * d + c] * k[j][hd * d + c];
                        }
                        s[j] = dot / Math.sqrt(d);
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < n; j++) {
                        s[j] = Math.exp(s[j] - max);
                        sum += s[j];
                    }
                    for (int j = 0; j < n; j++) {
                        for (int c = 0; c < d; c++) {
                            ctx[i][hd * d + c] += s[j] / sum * v[j][hd * d + c];
                        }
                    }
                }
            }
            double[][] a = add(linear(ctx, p + "attention.output.dense", hidden, hidden), x);
            a = layerNorm(a, p + "attention.output.LayerNorm");
            double[][] f = linear(a, p + "intermediate.dense", hidden, inter);
            for (double[] row : f) {
                for (int c = 0; c < inter; c++) {
                    row[c] = activate(row[c]);
                }
            }
            x =
                    layerNorm(
                            add(linear(f, p + "output.dense", inter, hidden), a),
                            p + "output.LayerNorm");
        }
        return x;
    }

    /** BERT's pooler on the first token. */
    double[] pool(double[][] hiddenStates) {
        double[] y = linear(new double[][] {hiddenStates[0]}, "pooler.dense", hidden, hidden)[0];
        for (int i = 0; i < y.length; i++) {
            y[i] = Math.tanh(y[i]);
        }
        return y;
    }

    /** Classifier logits from the pooler output. */
    double[] classify(double[] pooled, int labels) {
        return linear(new double[][] {pooled}, "classifier", hidden, labels)[0];
    }

    private double activate(double x) {
        switch (activation) {
            case "gelu":
                return 0.5 * x * (1 + erf(x / Math.sqrt(2)));
            case "gelu_new":
                return 0.5
                        * x
                        * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
            case "relu":
                return Math.max(0, x);
            default:
                throw new AssertionError(activation);
        }
    }

    /** Numerical Recipes' Chebyshev fit of erfc, c0 first. */
    private static final double[] ERFC = {
        -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
        0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277
    };

    /** erf with fractional error below 1.2e-7. */
    static double erf(double x) {
        double z = Math.abs(x);
        double t = 1 / (1 + 0.5 * z);
        double poly = 0;
        for (int i = ERFC.length - 1; i >= 0; i--) {
            poly = ERFC[i] + t * poly;
        }
        double erfc = t * Math.exp(-z * z + poly);
        return x >= 0 ? 1 - erfc : erfc - 1;
    }

    private double[][] linear(double[][] x, String name, int in, int out) {
        float[] wt = w.get(name + ".weight");
        float[] b = w.get(name + ".bias");
        double[][] y = new double[x.length][out];
        for (int t = 0; t < x.length; t++) {
            for (int o = 0; o < out; o++) {
                double acc = b[o];
                for (int i = 0; i < in; i++) {
                    acc += x[t][i] * wt[o * in + i];
                }
                y[t][o] = acc;
            }
        }
        return y;
    }

    private double[][] layerNorm(double[][] x, String name) {
        float[] g = w.get(name + ".weight");
        float[] b = w.get(name + ".bias");
        double[][] y = new double[x.length][];
        for (int t = 0; t < x.length; t++) {
            double mean = 0;
            for (double v : x[t]) {
                mean += v;
            }
            mean /= x[t].length;
            double var = 0;
            for (double v : x[t]) {
                var += (v - mean) * (v - mean);
            }
            var /= x[t].length;
            y[t] = new double[x[t].length];
            for (int h = 0; h < x[t].length; h++) {
                y[t][h] = (x[t][h] - mean) / Math.sqrt(var + eps) * g[h] + b[h];
            }
        }
        return y;
    }

    private static double[][] add(double[][] a, double[][] b) {
        for (int t = 0; t < a.length; t++) {
            for (int h = 0; h < a[t].length; h++) {
                a[t][h] += b[t][h];
            }
        }
        return a;
    }
}
