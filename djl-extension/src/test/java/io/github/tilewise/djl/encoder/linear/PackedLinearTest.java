package io.github.tilewise.djl.encoder.linear;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.lowp.Precision;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link PackedLinear} on DJL NDArrays against float64 references computed here, on every ISA this
 * CPU supports, for every precision, with shapes not divisible by the kernels' tiles (rows,
 * 32-column panels) and input widths not divisible by 4:
 *
 * <ul>
 *   <li>INT8_WEIGHT_ONLY, FP16 and BF16 (widening kernels) must match {@code x·Ŵᵀ} in float64 to
 *       fp32 accumulation error, where {@code Ŵ} are the weights the kernels use ({@link
 *       PackedWeights#toFloatArray()}), which in turn must be the rounded/quantized fp32 weights;
 *   <li>INT8 (dynamic activations) and BF16 with dot products (bf16 activations) must stay within
 *       their quantization error of the float64 product with the original weights.
 * </ul>
 */
class PackedLinearTest {

    private static final int[][] SHAPES = { // rows, out, in
        {1, 1, 1}, {3, 5, 7}, {9, 33, 13}, {64, 96, 384}, {70, 129, 66}, {17, 40, 1030}
    };

    @AfterEach
    void restoreIsa() {
        Tilewise.setIsa(Tilewise.detectedIsa());
    }

    @Test
    void everyPrecisionOnEveryIsaMatchesFloat64() {
        Random random = new Random(42);
        int checked = 0;
        for (Tilewise.Isa isa : Tilewise.Isa.values()) {
            if (isa.ordinal() > Tilewise.detectedIsa().ordinal()) {
                continue;
            }
            Tilewise.setIsa(isa);
            for (Precision precision : Precision.values()) {
                for (int[] s : SHAPES) {
                    for (LinearActivation act :
                            new LinearActivation[] {
                                LinearActivation.NONE, LinearActivation.GELU, LinearActivation.TANH
                            }) {
                        runCase(
                                random,
                                isa,
                                precision,
                                127,
                                s[0],
                                s[1],
                                s[2],
                                act,
                                random.nextBoolean());
                        checked++;
                    }
                }
            }
        }
        assertTrue(checked >= 3 * 4 * SHAPES.length * 3 / 3, "cases run: " + checked);
    }

    /**
     * INT8 weights packed within ±64 ({@link PackedWeights#packInt8}): on every ISA the same
     * float64 checks as full-range INT8, the packing's documented error property, and the kernel
     * that runs them (the reduced-range one exactly where full-range weights take the sign trick).
     */
    @Test
    void reducedRangeInt8MatchesFloat64OnEveryIsa() {
        Random random = new Random(7);
        for (Tilewise.Isa isa : Tilewise.Isa.values()) {
            if (isa.ordinal() > Tilewise.detectedIsa().ordinal()) {
                continue;
            }
            Tilewise.setIsa(isa);
            for (int[] s : SHAPES) {
                runCase(
                        random,
                        isa,
                        Precision.INT8,
                        64,
                        s[0],
                        s[1],
                        s[2],
                        LinearActivation.GELU,
                        random.nextBoolean());
            }
            float[] w = gaussian(random, 12 * 20, 0.05f);
            try (PackedWeights reduced = PackedWeights.packInt8(w, 12, 20, 64);
                    PackedWeights full = PackedWeights.pack(w, 12, 20, Precision.INT8)) {
                String fullKernel = full.kernelName();
                assertEquals(Precision.INT8.kernelName(), fullKernel, isa + " full-range kernel");
                assertEquals(
                        fullKernel.equals("avx2-maddubs-sign")
                                ? "avx2-maddubs-reduced-range"
                                : fullKernel,
                        reduced.kernelName(),
                        isa + " reduced-range kernel");
            }
        }
        float[] w = gaussian(random, 8, 1f);
        assertThrows(IllegalArgumentException.class, () -> PackedWeights.packInt8(w, 2, 4, 0));
        assertThrows(IllegalArgumentException.class, () -> PackedWeights.packInt8(w, 2, 4, 128));
        assertThrows(IllegalArgumentException.class, () -> PackedWeights.packInt8(w, 2, 3, 64));
        PackedWeights closed = PackedWeights.packInt8(w, 2, 4, 64);
        closed.close();
        assertThrows(IllegalStateException.class, closed::kernelName);
    }

    private static void runCase(
            Random random,
            Tilewise.Isa isa,
            Precision precision,
            int weightMax,
            int rows,
            int out,
            int in,
            LinearActivation act,
            boolean withResidual) {
        float[] w = gaussian(random, out * in, 0.05f);
        float[] b = gaussian(random, out, 0.5f);
        float[] x = gaussian(random, rows * in, 1f);
        float[] r = gaussian(random, rows * out, 1f);
        String label =
                isa
                        + " "
                        + precision
                        + (weightMax < 127 ? " weightMax=" + weightMax : "")
                        + " "
                        + rows
                        + "x"
                        + out
                        + "x"
                        + in
                        + " "
                        + act
                        + (withResidual ? " +res" : "");
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                PackedLinear layer =
                        PackedLinear.builder()
                                .setWeights(
                                        weightMax < 127
                                                ? PackedWeights.packInt8(w, out, in, weightMax)
                                                : PackedWeights.pack(w, out, in, precision))
                                .optBias(b)
                                .optActivation(act)
                                .build()) {
            float[] used = layer.getWeights().toFloatArray();
            if (weightMax < 127) {
                checkReducedRangeWeights(w, used, out, in, weightMax, label);
            } else {
                checkPackedWeights(w, used, out, in, precision, label);
            }
            NDArray xa = manager.create(x, new Shape(rows, in));
            NDArray ra = withResidual ? manager.create(r, new Shape(rows, out)) : null;
            float[] y = layer.forward(xa, ra).toFloatArray();
            boolean quantizedActivations =
                    precision == Precision.INT8
                            || (precision == Precision.BF16
                                    && precision.kernelName().contains("bf16-dot"));
            double err2 = 0;
            double ref2 = 0;
            double worst = 0;
            for (int i = 0; i < rows; i++) {
                for (int o = 0; o < out; o++) {
                    double exact = b[o];
                    double full = b[o];
                    double magnitude = 0;
                    for (int k = 0; k < in; k++) {
                        exact += (double) x[i * in + k] * used[o * in + k];
                        full += (double) x[i * in + k] * w[o * in + k];
                        magnitude += Math.abs((double) x[i * in + k] * used[o * in + k]);
                    }
                    exact = finish(exact, act, withResidual ? r[i * out + o] : 0);
                    full = finish(full, act, withResidual ? r[i * out + o] : 0);
                    double got = y[i * out + o];
                    worst =
                            Math.max(
                                    worst,
                                    Math.abs(got - exact) / (1 + magnitude + Math.abs(exact)));
                    err2 += (got - full) * (got - full);
                    ref2 += full * full;
                }
            }
            if (!quantizedActivations) {
                assertTrue(
                        worst < 3e-6,
                        label
                                + ": error "
                                + worst
                                + " vs the float64 product with the packed weights");
            }
            double rel = Math.sqrt(err2 / Math.max(ref2, 1e-30));
            double bound =
                    precision == Precision.FP32
                            ? 1e-5
                            : precision == Precision.FP16
                                    ? 2e-3
                                    : precision == Precision.BF16
                                            ? 1.5e-2
                                            : weightMax < 127 ? 6e-2 : 4e-2;
            assertTrue(
                    in < 4 || rel < bound,
                    label + ": relative error " + rel + " vs float64 (bound " + bound + ")");
        }
    }

    private static void checkPackedWeights(
            float[] w, float[] used, int out, int in, Precision p, String label) {
        for (int o = 0; o < out; o++) {
            float amax = 0;
            for (int k = 0; k < in; k++) {
                amax = Math.max(amax, Math.abs(w[o * in + k]));
            }
            for (int k = 0; k < in; k++) {
                float v = w[o * in + k];
                float u = used[o * in + k];
                switch (p) {
                    case FP32:
                        assertEquals(v, u, 0f, label + " fp32 weight");
                        break;
                    case INT8:
                    case INT8_WEIGHT_ONLY:
                        // symmetric per output channel: within half a step of amax/127
                        assertTrue(
                                Math.abs(u - v) <= amax / 127f * 0.5001f + 1e-12f,
                                label + " int8 weight");
                        break;
                    case BF16:
                        assertEquals(v, u, Math.abs(v) / 256f, label + " bf16 weight");
                        break;
                    default:
                        assertEquals(v, u, Math.abs(v) / 2048f + 6e-8f, label + " fp16 weight");
                }
            }
        }
    }

    /**
     * Reduced-range weights: per channel, a squared rounding error no larger than the plain {@code
     * max|w| / weightMax} scale gives, and no weight beyond {@code max|w|}.
     */
    private static void checkReducedRangeWeights(
            float[] w, float[] used, int out, int in, int weightMax, String label) {
        for (int o = 0; o < out; o++) {
            double amax = 0;
            for (int k = 0; k < in; k++) {
                amax = Math.max(amax, Math.abs(w[o * in + k]));
            }
            double step = amax / weightMax;
            double plainError = 0;
            double error = 0;
            for (int k = 0; k < in; k++) {
                double v = w[o * in + k];
                double plain =
                        Math.max(-weightMax, Math.min(weightMax, Math.rint(v / step))) * step;
                plainError += (v - plain) * (v - plain);
                error += (v - used[o * in + k]) * (v - used[o * in + k]);
                assertTrue(
                        Math.abs(used[o * in + k]) <= amax * (1 + 1e-6),
                        label + ": weight beyond max|w|");
            }
            assertTrue(
                    error <= plainError * (1 + 1e-5) + 1e-15,
                    label + ": channel " + o + " error " + error + " > max-abs " + plainError);
        }
    }

    private static double finish(double v, LinearActivation act, double residual) {
        switch (act) {
            case GELU:
                v = 0.5 * v * (1 + erf(v / Math.sqrt(2)));
                break;
            case TANH:
                v = Math.tanh(v);
                break;
            default:
                break;
        }
        return v + residual;
    }

    /**
     * erf by its Maclaurin series / continued-fraction-free asymptotics, accurate to 1e-12 here.
     */
    static double erf(double x) {
        double ax = Math.abs(x);
        double result;
        if (ax < 3) {
            double term = ax;
            double sum = ax;
            for (int n = 1; n < 200; n++) {
                term *= -ax * ax / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.abs(add) < 1e-17) {
                    break;
                }
            }
            result = 2 / Math.sqrt(Math.PI) * sum;
        } else {
            // erfc(x) ~ e^{-x²}/(x√π) (1 - 1/(2x²) + 3/(4x⁴) - 15/(8x⁶)); below 1e-9 for x >= 3
            double x2 = ax * ax;
            double series = 1 - 1 / (2 * x2) + 3 / (4 * x2 * x2) - 15 / (8 * x2 * x2 * x2);
            result = 1 - Math.exp(-x2) / (ax * Math.sqrt(Math.PI)) * series;
        }
        return x < 0 ? -result : result;
    }

    static float[] gaussian(Random random, int n, float sigma) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian() * sigma;
        }
        return v;
    }

    @Test
    void higherRankInputsAndFusedResidualKeepShapes() {
        Random random = new Random(3);
        int out = 48;
        int in = 20;
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                PackedLinear layer =
                        PackedLinear.builder()
                                .setWeights(
                                        PackedWeights.pack(
                                                gaussian(random, out * in, 0.1f),
                                                out,
                                                in,
                                                Precision.INT8_WEIGHT_ONLY))
                                .build()) {
            NDArray x = manager.create(gaussian(random, 2 * 3 * in, 1f), new Shape(2, 3, in));
            NDArray residual = manager.randomNormal(new Shape(2, 3, out));
            NDArray y = layer.forward(x, residual);
            assertEquals(new Shape(2, 3, out), y.getShape());
            NDArray without = layer.forward(x, null);
            assertArrayEquals(without.add(residual).toFloatArray(), y.toFloatArray(), 1e-5f);
            // A non-contiguous input (a transposed view) gives the same numbers as its copy.
            NDArray t = manager.create(gaussian(random, in * 6, 1f), new Shape(in, 6));
            NDArray view = t.transpose();
            assertArrayEquals(
                    layer.forward(view.duplicate(), null).toFloatArray(),
                    layer.forward(view, null).toFloatArray(),
                    1e-6f);
        }
    }

    /**
     * The fused "linear + residual + LayerNorm" equals the layer's own output normalised in
     * float64, for every precision, fused activation and awkward widths; a non-fused activation and
     * a bad epsilon are refused.
     */
    @Test
    void fusedLayerNormMatchesFloat64Normalisation() {
        Random random = new Random(17);
        for (Precision precision : Precision.values()) {
            for (int out : new int[] {1, 37, 384}) {
                for (LinearActivation act :
                        new LinearActivation[] {LinearActivation.NONE, LinearActivation.GELU}) {
                    int in = 29;
                    int rows = out == 384 ? 70 : 13;
                    float[] gamma = gaussian(random, out, 1f);
                    float[] beta = gaussian(random, out, 0.3f);
                    try (NDManager manager = NDManager.newBaseManager("PyTorch");
                            PackedLinear layer =
                                    PackedLinear.builder()
                                            .setWeights(
                                                    PackedWeights.pack(
                                                            gaussian(random, out * in, 0.2f),
                                                            out,
                                                            in,
                                                            precision))
                                            .optBias(gaussian(random, out, 0.5f))
                                            .optActivation(act)
                                            .build()) {
                        NDArray x =
                                manager.create(
                                        gaussian(random, rows * in, 1f), new Shape(rows, in));
                        NDArray residual =
                                manager.create(
                                        gaussian(random, rows * out, 1f), new Shape(rows, out));
                        float[] plain = layer.forward(x, residual).toFloatArray();
                        float[] fused =
                                layer.forwardNormalized(
                                                x,
                                                residual,
                                                PackedWeights.directFloats(gamma),
                                                PackedWeights.directFloats(beta),
                                                1e-5f)
                                        .toFloatArray();
                        double worst = 0;
                        for (int r = 0; r < rows; r++) {
                            double mean = 0;
                            double var = 0;
                            for (int j = 0; j < out; j++) {
                                mean += plain[r * out + j];
                            }
                            mean /= out;
                            for (int j = 0; j < out; j++) {
                                double d = plain[r * out + j] - mean;
                                var += d * d;
                            }
                            var /= out;
                            for (int j = 0; j < out; j++) {
                                double ref =
                                        (plain[r * out + j] - mean)
                                                        / Math.sqrt(var + 1e-5)
                                                        * gamma[j]
                                                + beta[j];
                                worst =
                                        Math.max(
                                                worst,
                                                Math.abs(fused[r * out + j] - ref)
                                                        / (1 + Math.abs(ref)));
                            }
                        }
                        assertTrue(
                                worst < 1e-4,
                                precision + " out=" + out + " " + act + ": error " + worst);
                    }
                }
            }
        }
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                PackedLinear relu =
                        PackedLinear.builder()
                                .setWeights(
                                        PackedWeights.pack(
                                                gaussian(random, 8 * 4, 0.2f),
                                                8,
                                                4,
                                                Precision.INT8))
                                .optActivation(LinearActivation.RELU)
                                .build()) {
            NDArray x = manager.create(gaussian(random, 8, 1f), new Shape(2, 4));
            assertFalse(relu.fusesLayerNorm());
            assertThrows(
                    IllegalStateException.class,
                    () -> relu.forwardNormalized(x, null, null, null, 1e-5f));
        }
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                PackedLinear layer =
                        PackedLinear.builder()
                                .setWeights(
                                        PackedWeights.pack(
                                                gaussian(random, 8 * 4, 0.2f),
                                                8,
                                                4,
                                                Precision.BF16))
                                .build()) {
            NDArray x = manager.create(gaussian(random, 8, 1f), new Shape(2, 4));
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> layer.forwardNormalized(x, null, null, null, -1f));
            assertTrue(e.getMessage().contains("eps"), e.getMessage());
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            layer.forwardNormalized(
                                    x, null, PackedWeights.directFloats(new float[3]), null, 0f),
                    "a gamma of the wrong width is refused");
        }
    }

    /**
     * Two INT8 layers chained through int8 rows (the hidden activations never stored in fp32) equal
     * the two layers run one after the other, with SmoothQuant scales on the second, a GELU between
     * them, a residual and the LayerNorm; pairs that do not qualify give null.
     */
    @Test
    void chainedInt8LayersMatchTheTwoStepComputation() {
        Random random = new Random(23);
        for (int[] widths : new int[][] {{40, 96, 40}, {384, 1536, 384}, {7, 13, 5}}) {
            int in = widths[0];
            int hidden = widths[1];
            int out = widths[2];
            int rows = widths[1] > 1000 ? 70 : 9;
            float[] scales = new float[hidden];
            for (int i = 0; i < hidden; i++) {
                scales[i] = 0.5f + random.nextFloat();
            }
            float[] w2 = gaussian(random, out * hidden, 0.1f);
            float[] w2s = w2.clone();
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < hidden; i++) {
                    w2s[o * hidden + i] *= scales[i];
                }
            }
            float[] gamma = gaussian(random, out, 1f);
            float[] beta = gaussian(random, out, 0.3f);
            try (NDManager manager = NDManager.newBaseManager("PyTorch");
                    PackedLinear first =
                            PackedLinear.builder()
                                    .setWeights(
                                            PackedWeights.pack(
                                                    gaussian(random, hidden * in, 0.2f),
                                                    hidden,
                                                    in,
                                                    Precision.INT8))
                                    .optBias(gaussian(random, hidden, 0.5f))
                                    .optActivation(LinearActivation.GELU)
                                    .build();
                    PackedLinear second =
                            PackedLinear.builder()
                                    .setWeights(
                                            PackedWeights.pack(w2s, out, hidden, Precision.INT8))
                                    .optBias(gaussian(random, out, 0.5f))
                                    .optInputScales(scales)
                                    .build();
                    PackedLinear bf16 =
                            PackedLinear.builder()
                                    .setWeights(PackedWeights.pack(w2, out, hidden, Precision.BF16))
                                    .build()) {
                NDArray x = manager.create(gaussian(random, rows * in, 1f), new Shape(rows, in));
                NDArray residual =
                        manager.create(gaussian(random, rows * out, 1f), new Shape(rows, out));
                ByteBuffer g = PackedWeights.directFloats(gamma);
                ByteBuffer b = PackedWeights.directFloats(beta);
                float[] chained =
                        first.forwardChainNormalized(x, second, residual, g, b, 1e-5f)
                                .toFloatArray();
                float[] stepwise =
                        second.forwardNormalized(first.forward(x, null), residual, g, b, 1e-5f)
                                .toFloatArray();
                double worst = 0;
                for (int i = 0; i < chained.length; i++) {
                    worst =
                            Math.max(
                                    worst,
                                    Math.abs(chained[i] - stepwise[i])
                                            / (1 + Math.abs(stepwise[i])));
                }
                assertTrue(worst < 2e-3, in + "x" + hidden + "x" + out + ": differ by " + worst);
                // Caller-owned output and hidden memory (NaN first: the output must be written
                // whole, and the hidden rows' codes must not depend on what was there).
                NDArray into = manager.full(new Shape(rows, out), Float.NaN, DataType.FLOAT32);
                NDArray hiddenRows =
                        manager.full(new Shape(rows, hidden), Float.NaN, DataType.FLOAT32);
                NDArray written =
                        first.forwardChainNormalized(
                                x, second, residual, g, b, 1e-5f, into, hiddenRows);
                assertSame(into, written);
                assertArrayEquals(chained, written.toFloatArray());
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                first.forwardChainNormalized(
                                        x,
                                        second,
                                        residual,
                                        g,
                                        b,
                                        1e-5f,
                                        null,
                                        manager.zeros(new Shape(rows, hidden - 1))),
                        "hidden memory of the wrong shape is refused");
                assertNull(first.forwardChainNormalized(x, bf16, null, g, b, 1e-5f));
                assertThrows(
                        IllegalArgumentException.class,
                        () ->
                                first.forwardChainNormalized(
                                        x,
                                        second,
                                        manager.zeros(new Shape(rows, out + 1)),
                                        g,
                                        b,
                                        1e-5f),
                        "a residual of the wrong shape is refused");
            }
        }
    }

    @Test
    void smoothingScalesGiveTheSameProduct() {
        Random random = new Random(9);
        int out = 40;
        int in = 36;
        int rows = 12;
        float[] w = gaussian(random, out * in, 0.1f);
        float[] s = new float[in];
        float[] ws = new float[out * in];
        for (int k = 0; k < in; k++) {
            s[k] = 0.25f + random.nextFloat() * 4;
        }
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < in; k++) {
                ws[o * in + k] = w[o * in + k] * s[k];
            }
        }
        List<float[]> results = new ArrayList<>();
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            NDArray x = manager.create(gaussian(random, rows * in, 1f), new Shape(rows, in));
            try (PackedLinear plain =
                            PackedLinear.builder()
                                    .setWeights(PackedWeights.pack(w, out, in, Precision.FP16))
                                    .build();
                    PackedLinear smoothed =
                            PackedLinear.builder()
                                    .setWeights(PackedWeights.pack(ws, out, in, Precision.FP16))
                                    .optInputScales(s)
                                    .build()) {
                results.add(plain.forward(x, null).toFloatArray());
                results.add(smoothed.forward(x, null).toFloatArray());
                assertTrue(smoothed.describe().contains("smoothquant"));
            }
        }
        assertArrayEquals(results.get(0), results.get(1), 5e-3f);
    }
}
