package io.github.tilewise.djl.encoder.linear;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.tilewise.djl.Tilewise;
import io.github.tilewise.djl.jni.LinearNative;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The fused LayerNorm through JNI ({@code tw_layernorm}) against float64, on every ISA, with and
 * without residual and affine parameters, for widths that leave vector tails.
 */
class NativeLayerNormTest {

    @AfterEach
    void restoreIsa() {
        Tilewise.setIsa(Tilewise.detectedIsa());
    }

    private static ByteBuffer direct(float[] v) {
        ByteBuffer b = ByteBuffer.allocateDirect(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b;
    }

    @Test
    void matchesFloat64OnEveryIsa() {
        Random random = new Random(11);
        for (Tilewise.Isa isa : Tilewise.Isa.values()) {
            if (isa.ordinal() > Tilewise.detectedIsa().ordinal()) {
                continue;
            }
            Tilewise.setIsa(isa);
            for (int k : new int[] {1, 15, 384, 1001}) {
                for (int variant = 0; variant < 4; variant++) {
                    boolean residual = (variant & 1) != 0;
                    boolean affine = (variant & 2) != 0;
                    int m = 7;
                    float[] x = PackedLinearTest.gaussian(random, m * k, 2f);
                    float[] r = PackedLinearTest.gaussian(random, m * k, 1f);
                    float[] g = PackedLinearTest.gaussian(random, k, 1f);
                    float[] b = PackedLinearTest.gaussian(random, k, 0.1f);
                    ByteBuffer y =
                            ByteBuffer.allocateDirect(m * k * 4).order(ByteOrder.LITTLE_ENDIAN);
                    LinearNative.get()
                            .layerNorm(
                                    m,
                                    k,
                                    direct(x),
                                    residual ? direct(r) : null,
                                    affine ? direct(g) : null,
                                    affine ? direct(b) : null,
                                    1e-5f,
                                    y);
                    float[] got = new float[m * k];
                    y.asFloatBuffer().get(got);
                    double worst = 0;
                    for (int i = 0; i < m; i++) {
                        double mean = 0;
                        double var = 0;
                        for (int j = 0; j < k; j++) {
                            mean += x[i * k + j] + (residual ? r[i * k + j] : 0);
                        }
                        mean /= k;
                        for (int j = 0; j < k; j++) {
                            double d = x[i * k + j] + (residual ? r[i * k + j] : 0) - mean;
                            var += d * d;
                        }
                        var /= k;
                        for (int j = 0; j < k; j++) {
                            double ref =
                                    (x[i * k + j] + (residual ? r[i * k + j] : 0) - mean)
                                            / Math.sqrt(var + 1e-5);
                            if (affine) {
                                ref = ref * g[j] + b[j];
                            }
                            worst = Math.max(worst, Math.abs(got[i * k + j] - ref));
                        }
                    }
                    assertTrue(
                            worst < 3e-5,
                            isa + " k=" + k + " variant " + variant + ": error " + worst);
                }
            }
        }
    }
}
