package io.github.tilewise.djl.encoder.linear;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.lowp.Precision;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The pluggable linear layer: fp32 arithmetic against float64 loops for every activation, with and
 * without residual, and substitution of the operator (what an INT8 converter does).
 */
class LinearOperatorTest {

    /** Both fp32 implementations, on a shape that is not a multiple of the native tiles. */
    @Test
    void fp32OperatorsMatchFloat64ForEveryActivation() {
        Random random = new Random(11);
        int in = 19;
        int out = 37;
        int rows = 2 * 13;
        try (NDManager m = NDManager.newBaseManager("PyTorch")) {
            for (boolean nativeKernel : new boolean[] {false, true}) {
                if (nativeKernel && !Tilewise.isNativeAvailable()) {
                    continue;
                }
                for (LinearActivation act : LinearActivation.values()) {
                    if (act.isGated()) {
                        continue; // halves the width: GatedLinearTest
                    }
                    for (boolean withResidual : new boolean[] {false, true}) {
                        float[] w = gaussian(random, out * in);
                        float[] b = gaussian(random, out);
                        float[] x = gaussian(random, rows * in);
                        float[] r = gaussian(random, rows * out);
                        LinearBlock layer = new LinearBlock("test", in, out, act);
                        layer.setParameters(
                                m.create(w, new Shape(out, in)), m.create(b, new Shape(out)));
                        layer.setOperator(
                                nativeKernel
                                        ? PackedLinear.builder()
                                                .setWeights(
                                                        PackedWeights.pack(
                                                                layer.getWeight(), Precision.FP32))
                                                .optBias(b)
                                                .optActivation(act)
                                                .build()
                                        : new Fp32LinearOperator(
                                                layer.getWeight(), layer.getBias(), act));
                        NDArray xs = m.create(x, new Shape(2, 13, in));
                        NDArray residual = withResidual ? m.create(r, new Shape(2, 13, out)) : null;
                        float[] y = layer.apply(xs, residual).toFloatArray();
                        for (int i = 0; i < rows; i++) {
                            for (int o = 0; o < out; o++) {
                                double acc = b[o];
                                for (int k = 0; k < in; k++) {
                                    acc += (double) x[i * in + k] * w[o * in + k];
                                }
                                double expected =
                                        activate(act, acc) + (withResidual ? r[i * out + o] : 0);
                                assertEquals(
                                        expected,
                                        y[i * out + o],
                                        1e-5,
                                        layer.getOperator().describe()
                                                + " "
                                                + act
                                                + " residual="
                                                + withResidual);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void operatorsCanBeReplacedPerLayerAndAreClosed() {
        try (NDManager m = NDManager.newBaseManager("PyTorch")) {
            Random random = new Random(3);
            LinearBlock layer =
                    new LinearBlock("encoder.layer.0.output.dense", 8, 4, LinearActivation.NONE);
            float[] w = gaussian(random, 32);
            float[] b = gaussian(random, 4);
            layer.setParameters(m.create(w, new Shape(4, 8)), m.create(b, new Shape(4)));
            assertTrue(layer.getOperator().describe().startsWith("fp32"));
            assertArrayEquals(w, layer.getWeightAsFloats());
            assertArrayEquals(b, layer.getBiasAsFloats());
            List<String> closed = new ArrayList<>();
            // A stand-in for a quantized operator: row sums of x, ignoring W (clearly
            // distinguishable).
            LinearOperator rowSum =
                    new LinearOperator() {
                        @Override
                        public NDArray forward(NDArray x, NDArray residual) {
                            return x.sum(new int[] {-1}, true).repeat(-1, 4);
                        }

                        @Override
                        public String describe() {
                            return "row-sum";
                        }

                        @Override
                        public void close() {
                            closed.add("row-sum");
                        }
                    };
            layer.setOperator(rowSum);
            NDArray x = m.ones(new Shape(3, 8));
            assertArrayEquals(new float[] {8, 8, 8, 8}, layer.apply(x, null).get(0).toFloatArray());
            layer.setOperator(null);
            assertEquals(List.of("row-sum"), closed);
            assertTrue(layer.getOperator().describe().startsWith("fp32"));
            IllegalArgumentException e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> layer.apply(m.ones(new Shape(3, 7)), null));
            assertTrue(e.getMessage().contains("encoder.layer.0.output.dense"), e.getMessage());
            e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    layer.setParameters(
                                            m.zeros(new Shape(4, 9)), m.zeros(new Shape(4))));
            assertTrue(
                    e.getMessage().contains("weight") && e.getMessage().contains("(4, 8)"),
                    e.getMessage());
            e =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    layer.setParameters(
                                            m.zeros(new Shape(4, 8), DataType.FLOAT64),
                                            m.zeros(new Shape(4))));
            assertTrue(e.getMessage().contains("float32"), e.getMessage());
        }
    }

    private static double activate(LinearActivation act, double v) {
        switch (act) {
            case NONE:
                return v;
            case RELU:
                return Math.max(0, v);
            case TANH:
                return Math.tanh(v);
            case GELU:
                return 0.5
                        * v
                        * (1
                                + io.github.tilewise.djl.encoder.NaiveBertAccess.erf(
                                        v / Math.sqrt(2)));
            case GELU_TANH:
                return 0.5
                        * v
                        * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
            case SILU:
                return v / (1 + Math.exp(-v));
            default:
                throw new AssertionError(act);
        }
    }

    private static float[] gaussian(Random random, int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) random.nextGaussian();
        }
        return f;
    }
}
