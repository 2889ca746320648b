package io.github.tilewise.djl.encoder.linear;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.lowp.Precision;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Gated linear layers ({@code f(u) ⊙ g} over {@code [u | g] = x·Wᵀ + b}, {@code W [2·ff, in]})
 * against float64 references computed here: {@link PackedLinear} on {@link PackedWeights#packGated
 * gated weights} of every precision on every ISA this CPU supports, and {@link Fp32LinearOperator}
 * (the PyTorch reference and fallback), for GeGLU, tanh-GeGLU and SwiGLU, with {@code ff} not a
 * multiple of the kernels' 16-output gated panels, one row, 37 rows and more rows than a task.
 */
class GatedLinearTest {

    private static final int[][] SHAPES = { // rows, ff, in
        {1, 1, 1}, {1, 20, 37}, {37, 37, 64}, {37, 100, 130}, {130, 48, 96}
    };

    private static final LinearActivation[] GATED = {
        LinearActivation.GATED_GELU, LinearActivation.GATED_GELU_TANH, LinearActivation.GATED_SILU
    };

    @AfterEach
    void restoreIsa() {
        Tilewise.setIsa(Tilewise.detectedIsa());
    }

    @Test
    void packedGatedLayersOfEveryPrecisionOnEveryIsaMatchFloat64() {
        Random random = new Random(11);
        int checked = 0;
        for (Tilewise.Isa isa : Tilewise.Isa.values()) {
            if (isa.ordinal() > Tilewise.detectedIsa().ordinal()) {
                continue;
            }
            Tilewise.setIsa(isa);
            for (Precision precision : Precision.values()) {
                for (int[] s : SHAPES) {
                    for (LinearActivation act : GATED) {
                        runPacked(random, isa, precision, s[0], s[1], s[2], act);
                        checked++;
                    }
                }
            }
        }
        assertTrue(checked >= Precision.values().length * SHAPES.length * 3, "cases " + checked);
    }

    @Test
    void pytorchGatedLayersMatchFloat64() {
        Random random = new Random(12);
        for (int[] s : SHAPES) {
            for (LinearActivation act : GATED) {
                int rows = s[0];
                int ff = s[1];
                int in = s[2];
                float[] w = PackedLinearTest.gaussian(random, 2 * ff * in, 0.1f);
                float[] b = PackedLinearTest.gaussian(random, 2 * ff, 0.5f);
                float[] x = PackedLinearTest.gaussian(random, rows * in, 1f);
                float[] r = PackedLinearTest.gaussian(random, rows * ff, 1f);
                try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
                    LinearOperator op =
                            new Fp32LinearOperator(
                                    manager.create(w, new Shape(2 * ff, in)),
                                    manager.create(b),
                                    act);
                    NDArray y =
                            op.forward(
                                    manager.create(x, new Shape(rows, in)),
                                    manager.create(r, new Shape(rows, ff)));
                    assertEquals(new Shape(rows, ff), y.getShape());
                    check(y.toFloatArray(), x, w, b, r, rows, ff, in, act, 3e-6, act + " pytorch");
                }
            }
        }
    }

    /** A LinearBlock with a gated activation: ff outputs, the same on its native and fp32 paths. */
    @Test
    void linearBlockWithGatedActivationHalvesTheWidth() {
        Random random = new Random(13);
        int rows = 5;
        int ff = 24;
        int in = 16;
        float[] w = PackedLinearTest.gaussian(random, 2 * ff * in, 0.1f);
        float[] b = PackedLinearTest.gaussian(random, 2 * ff, 0.5f);
        float[] x = PackedLinearTest.gaussian(random, rows * in, 1f);
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            LinearBlock block = new LinearBlock("t.Wi", in, 2 * ff, LinearActivation.GATED_SILU);
            block.setParameters(manager.create(w, new Shape(2 * ff, in)), manager.create(b));
            assertEquals(ff, block.getOutputWidth());
            assertEquals(2 * ff, block.getOutFeatures());
            assertEquals(
                    new Shape(rows, ff),
                    block.getOutputShapes(new Shape[] {new Shape(rows, in)})[0]);
            NDArray xa = manager.create(x, new Shape(rows, in));
            float[] first = block.apply(xa, null).toFloatArray();
            check(first, x, w, b, null, rows, ff, in, LinearActivation.GATED_SILU, 3e-6, "block");
            block.setOperator(
                    new Fp32LinearOperator(
                            block.getWeight(), block.getBias(), LinearActivation.GATED_SILU));
            float[] second = block.apply(xa, null).toFloatArray();
            assertArrayEquals(first, second, 1e-5f);
            assertThrows(
                    IllegalArgumentException.class,
                    () -> new LinearBlock("odd", in, 7, LinearActivation.GATED_GELU));
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            LinearBlock.concatenate(
                                    "both", java.util.List.of(block, block), manager));
        }
    }

    @Test
    void gatedWeightsAndActivationsGoTogether() {
        float[] w = PackedLinearTest.gaussian(new Random(14), 8 * 3, 1f);
        assertThrows(
                IllegalArgumentException.class,
                () -> PackedWeights.packGated(w, 7, 3, Precision.FP32, 127));
        assertThrows(
                IllegalArgumentException.class,
                () -> PackedWeights.packGated(w, 8, 3, Precision.INT8, 0));
        try (PackedWeights gated = PackedWeights.packGated(w, 8, 3, Precision.FP32, 127);
                PackedWeights plain = PackedWeights.pack(w, 8, 3, Precision.FP32)) {
            assertTrue(gated.isGated());
            assertArrayEquals(w, gated.toFloatArray(), 0f);
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            PackedLinear.builder()
                                    .setWeights(gated)
                                    .optActivation(LinearActivation.GELU)
                                    .build());
            assertThrows(
                    IllegalArgumentException.class,
                    () ->
                            PackedLinear.builder()
                                    .setWeights(plain)
                                    .optActivation(LinearActivation.GATED_GELU)
                                    .build());
        }
    }

    private static void runPacked(
            Random random,
            Tilewise.Isa isa,
            Precision precision,
            int rows,
            int ff,
            int in,
            LinearActivation act) {
        int out = 2 * ff;
        float[] w = PackedLinearTest.gaussian(random, out * in, 0.1f);
        float[] b = PackedLinearTest.gaussian(random, out, 0.5f);
        float[] x = PackedLinearTest.gaussian(random, rows * in, 1f);
        float[] r = PackedLinearTest.gaussian(random, rows * ff, 1f);
        boolean withResidual = random.nextBoolean();
        String label = isa + " " + precision + " " + rows + "x" + ff + "x" + in + " " + act;
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
                PackedLinear layer =
                        PackedLinear.builder()
                                .setWeights(PackedWeights.packGated(w, out, in, precision, 127))
                                .optBias(b)
                                .optActivation(act)
                                .build()) {
            float[] used = layer.getWeights().toFloatArray();
            try (PackedWeights plain = PackedWeights.pack(w, out, in, precision)) {
                assertArrayEquals(plain.toFloatArray(), used, 0f, label + " unpacked weights");
            }
            NDArray y =
                    layer.forward(
                            manager.create(x, new Shape(rows, in)),
                            withResidual ? manager.create(r, new Shape(rows, ff)) : null);
            assertEquals(new Shape(rows, ff), y.getShape(), label);
            boolean quantizedActivations =
                    precision == Precision.INT8
                            || (precision == Precision.BF16
                                    && precision.kernelName().contains("bf16-dot"));
            float[] got = y.toFloatArray();
            float[] res = withResidual ? r : null;
            if (!quantizedActivations) {
                check(got, x, used, b, res, rows, ff, in, act, 3e-6, label);
            } else if (in >= 4) {
                // Activations rounded to int8 / bf16: the relative RMS error vs the float64 layer.
                double err2 = 0;
                double ref2 = 0;
                for (int i = 0; i < rows; i++) {
                    for (int j = 0; j < ff; j++) {
                        double want = reference(x, w, b, res, i, j, ff, in, act);
                        double d = got[i * ff + j] - want;
                        err2 += d * d;
                        ref2 += want * want;
                    }
                }
                double rel = Math.sqrt(err2 / Math.max(ref2, 1e-30));
                assertTrue(rel < 4e-2, label + ": relative error " + rel);
            }
        }
    }

    /** Every output within tol of float64, relative to the magnitudes of both products. */
    private static void check(
            float[] got,
            float[] x,
            float[] w,
            float[] b,
            float[] residual,
            int rows,
            int ff,
            int in,
            LinearActivation act,
            double tol,
            String label) {
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < ff; j++) {
                double mu = 1 + Math.abs(b[j]);
                double mg = 1 + Math.abs(b[ff + j]);
                for (int k = 0; k < in; k++) {
                    mu += Math.abs((double) x[i * in + k] * w[j * in + k]);
                    mg += Math.abs((double) x[i * in + k] * w[(ff + j) * in + k]);
                }
                double want = reference(x, w, b, residual, i, j, ff, in, act);
                double err = Math.abs(got[i * ff + j] - want) / (mu * mg);
                assertTrue(
                        err < tol,
                        label + " [" + i + ", " + j + "]: " + got[i * ff + j] + " vs " + want);
            }
        }
    }

    private static double reference(
            float[] x,
            float[] w,
            float[] b,
            float[] residual,
            int i,
            int j,
            int ff,
            int in,
            LinearActivation act) {
        double u = b[j];
        double g = b[ff + j];
        for (int k = 0; k < in; k++) {
            u += (double) x[i * in + k] * w[j * in + k];
            g += (double) x[i * in + k] * w[(ff + j) * in + k];
        }
        double f;
        switch (act) {
            case GATED_GELU:
                f = 0.5 * u * (1 + PackedLinearTest.erf(u / Math.sqrt(2)));
                break;
            case GATED_GELU_TANH:
                f = 0.5 * u * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (u + 0.044715 * u * u * u)));
                break;
            default:
                f = u / (1 + Math.exp(-u));
        }
        return f * g + (residual == null ? 0 : residual[i * ff + j]);
    }
}
