package io.github.tilewise.it.lowp;

import java.util.Arrays;
import java.util.Locale;

/**
 * How closely a set of sentence embeddings agrees with a reference set of the same texts: the
 * cosine of each text's two vectors (min and mean), and the Spearman rank correlation between the
 * two sets' pairwise cosine similarities (does the low-precision model rank pairs as fp32 does?).
 */
public final class EmbeddingAgreement {

    private final double minCosine;
    private final double meanCosine;
    private final double spearman;

    private EmbeddingAgreement(double minCosine, double meanCosine, double spearman) {
        this.minCosine = minCosine;
        this.meanCosine = meanCosine;
        this.spearman = spearman;
    }

    /**
     * Compares embeddings with a reference.
     *
     * @param reference one vector per text
     * @param candidate one vector per text, same order
     * @return the agreement
     */
    public static EmbeddingAgreement of(float[][] reference, float[][] candidate) {
        if (reference.length != candidate.length) {
            throw new IllegalArgumentException(
                    reference.length + " vs " + candidate.length + " vectors");
        }
        int n = reference.length;
        double min = 1;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double c = cosine(reference[i], candidate[i]);
            min = Math.min(min, c);
            sum += c;
        }
        int pairs = n * (n - 1) / 2;
        double[] a = new double[pairs];
        double[] b = new double[pairs];
        int p = 0;
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n; j++) {
                a[p] = cosine(reference[i], reference[j]);
                b[p] = cosine(candidate[i], candidate[j]);
                p++;
            }
        }
        return new EmbeddingAgreement(min, sum / n, pearson(ranks(a), ranks(b)));
    }

    static double cosine(float[] x, float[] y) {
        double dot = 0;
        double nx = 0;
        double ny = 0;
        for (int i = 0; i < x.length; i++) {
            dot += x[i] * (double) y[i];
            nx += x[i] * (double) x[i];
            ny += y[i] * (double) y[i];
        }
        if (nx == 0 || ny == 0) {
            return nx == ny ? 1 : 0;
        }
        return dot / Math.sqrt(nx * ny);
    }

    /** Ranks with ties averaged. */
    static double[] ranks(double[] v) {
        Integer[] order = new Integer[v.length];
        for (int i = 0; i < v.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (i, j) -> Double.compare(v[i], v[j]));
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; ) {
            int j = i;
            while (j + 1 < v.length && v[order[j + 1]] == v[order[i]]) {
                j++;
            }
            double rank = (i + j) / 2.0;
            for (int k = i; k <= j; k++) {
                r[order[k]] = rank;
            }
            i = j + 1;
        }
        return r;
    }

    static double pearson(double[] x, double[] y) {
        double mx = Arrays.stream(x).average().orElse(0);
        double my = Arrays.stream(y).average().orElse(0);
        double sxy = 0;
        double sxx = 0;
        double syy = 0;
        for (int i = 0; i < x.length; i++) {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }
        return sxy / Math.sqrt(sxx * syy);
    }

    /**
     * Returns the smallest per-text cosine.
     *
     * @return the minimum
     */
    public double getMinCosine() {
        return minCosine;
    }

    /**
     * Returns the mean per-text cosine.
     *
     * @return the mean
     */
    public double getMeanCosine() {
        return meanCosine;
    }

    /**
     * Returns the Spearman correlation of the pairwise similarities.
     *
     * @return in [-1, 1]
     */
    public double getSpearman() {
        return spearman;
    }

    @Override
    public String toString() {
        return String.format(
                Locale.ROOT,
                "cos_min=%.5f cos_mean=%.5f spearman=%.5f",
                minCosine,
                meanCosine,
                spearman);
    }
}
