package io.github.tilewise.djl.jni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The JNI layer checks its arguments on its own, so a caller that bypasses {@link
 * io.github.tilewise.djl.attention.FusedAttention} still gets exceptions, never a crash. Every call
 * here is one valid call with a single argument spoiled.
 */
class AttentionNativeTest {

    private static final int B = 2;
    private static final int H = 4;
    private static final int HKV = 2;
    private static final int NQ = 5;
    private static final int NK = 7;
    private static final int D = 16;

    /** A valid fp32 [B, H, N, D] call whose fields a test spoils one at a time. */
    private static final class Call {
        int dtype = AttentionNative.DTYPE_F32;
        int compute = AttentionNative.DTYPE_F32;
        long[] dims = {B, H, HKV, NQ, NK, D};
        ByteBuffer q = floats(B * H * NQ * D);
        long[] qStrides = {H * NQ * D, NQ * D, D};
        ByteBuffer k = floats(B * HKV * NK * D);
        long[] kStrides = {HKV * NK * D, NK * D, D};
        ByteBuffer v = floats(B * HKV * NK * D);
        long[] vStrides = {HKV * NK * D, NK * D, D};
        ByteBuffer out =
                ByteBuffer.allocateDirect(B * H * NQ * D * 4).order(ByteOrder.nativeOrder());
        long[] outStrides = {H * NQ * D, NQ * D, D};
        float scale = 0.25f;
        int[] validLengths = {NK, 3};
        ByteBuffer mask = ByteBuffer.allocateDirect(B * NK);
        ByteBuffer bias = floats(NQ * NK);
        long[] biasStrides = {0, 0, NK, 1};
        ByteBuffer lse = floats(B * H * NQ);

        Call() {
            for (int i = 0; i < B * NK; ++i) {
                mask.put(i, (byte) (i % 3 == 0 ? 0 : 1));
            }
        }

        void run() {
            AttentionNative.get()
                    .forward(
                            dtype,
                            compute,
                            dims,
                            q,
                            qStrides,
                            k,
                            kStrides,
                            v,
                            vStrides,
                            out,
                            outStrides,
                            scale,
                            true,
                            validLengths,
                            mask,
                            bias,
                            biasStrides,
                            lse);
        }
    }

    private static ByteBuffer floats(int count) {
        ByteBuffer buffer = ByteBuffer.allocateDirect(count * 4).order(ByteOrder.nativeOrder());
        Random random = new Random();
        FloatBuffer view = buffer.asFloatBuffer();
        for (int i = 0; i < count; ++i) {
            view.put(i, (float) random.nextGaussian());
        }
        return buffer;
    }

    private static void assertRejected(Call call, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
        assertTrue(
                e.getMessage().contains(fragment),
                "message '" + e.getMessage() + "' should mention '" + fragment + "'");
    }

    @Test
    void theUnspoiledCallRunsAndWritesFiniteValues() {
        Call call = new Call();
        call.run();
        FloatBuffer out = call.out.asFloatBuffer();
        for (int i = 0; i < B * H * NQ * D; ++i) {
            assertTrue(Float.isFinite(out.get(i)), "element " + i);
        }
        // Row 0 of batch 0 (causal, Nk - Nq = 2) sees keys 0..2, of which the mask hides key 0.
        assertTrue(Float.isFinite(call.lse.asFloatBuffer().get(0)));
    }

    @Test
    void nullAndHeapBuffers() {
        Call call = new Call();
        call.q = null;
        assertRejected(call, "q buffer is null");
        call = new Call();
        call.out = ByteBuffer.allocate(B * H * NQ * D * 4);
        assertRejected(call, "output buffer is not a direct buffer");
        call = new Call();
        call.out = call.out.asReadOnlyBuffer();
        assertRejected(call, "output buffer is read-only");
    }

    /**
     * Zero strides would let a 4-byte buffer "hold" a tensor of 2^40 rows: the call would run for
     * days. Every tensor's buffer must hold as many elements as its shape has.
     */
    @Test
    void zeroStridesCannotStandForAHugeTensor() {
        Call call = new Call();
        long n = 1L << 30;
        call.dims = new long[] {1, 1, 1, n, n, 1};
        call.q = floats(1);
        call.k = floats(1);
        call.v = floats(1);
        call.out = floats(1);
        call.qStrides = new long[] {0, 0, 0};
        call.kStrides = new long[] {0, 0, 0};
        call.vStrides = new long[] {0, 0, 0};
        call.outStrides = new long[] {0, 0, 0};
        call.validLengths = null;
        call.mask = null;
        call.bias = null;
        call.lse = null;
        assertRejected(call, "q buffer holds 4 bytes but 4294967296 are needed");
    }

    /** A big-endian float buffer (ByteBuffer's default) would be read as garbage. */
    @Test
    void bigEndianFloatBuffersAreRefused() {
        Call call = new Call();
        call.k = call.k.duplicate(); // duplicate() is big-endian whatever the original's order
        assertRejected(call, "k buffer is big-endian");
        call = new Call();
        call.out = call.out.duplicate().order(ByteOrder.BIG_ENDIAN);
        assertRejected(call, "output buffer is big-endian");
    }

    @Test
    void buffersTooSmallForShapeAndStrides() {
        Call call = new Call();
        call.k = floats(B * HKV * NK * D - 1);
        assertRejected(call, "k buffer holds");
        call = new Call();
        call.qStrides = new long[] {H * NQ * D + 1, NQ * D, D}; // padding past the end
        assertRejected(call, "q buffer holds");
        call = new Call();
        call.mask = ByteBuffer.allocateDirect(B * NK - 1);
        assertRejected(call, "key padding mask buffer holds");
        call = new Call();
        call.biasStrides = new long[] {0, NQ * NK, NK, 1}; // claims a per-head bias
        assertRejected(call, "bias buffer holds");
        call = new Call();
        call.lse = floats(B * H * NQ - 1);
        assertRejected(call, "log-sum-exp buffer holds");
    }

    @Test
    void hugeShapesDoNotOverflowIntoSmallNumbers() {
        Call call = new Call();
        call.qStrides = new long[] {Long.MAX_VALUE / 2, NQ * D, D};
        assertRejected(call, "spans more than 2^63 bytes");
        call = new Call();
        call.dims = new long[] {B, H, HKV, NQ, 1L << 41, D};
        assertRejected(call, "kv_len");
    }

    @Test
    void badStridesDimsAndCodes() {
        Call call = new Call();
        call.vStrides = new long[] {HKV * NK * D, -NK * D, D};
        assertRejected(call, "v stride 1 is negative");
        call = new Call();
        call.kStrides = new long[] {1, 2};
        assertRejected(call, "k strides must have 3 entries");
        call = new Call();
        call.dims = new long[] {B, H, 3, NQ, NK, D};
        assertRejected(call, "kv_heads 3 does not divide q_heads 4");
        call = new Call();
        call.dims = new long[] {B, H, HKV, 0, NK, D};
        assertRejected(call, "q_len = 0");
        call = new Call();
        call.dims = new long[] {B, H, HKV, NQ, NK, 300};
        assertRejected(call, "head_dim 300 exceeds 256");
        call = new Call();
        call.dims = new long[] {B, H, HKV, NQ, NK};
        assertRejected(call, "dims must have 6 entries");
        call = new Call();
        call.dtype = 7;
        assertRejected(call, "dtype code 7");
        call = new Call();
        call.compute = AttentionNative.DTYPE_F16;
        assertRejected(call, "compute precision code 1");
        call = new Call();
        call.scale = Float.NaN;
        assertRejected(call, "scale is not finite");
    }

    @Test
    void validLengthsAreChecked() {
        Call call = new Call();
        call.validLengths = new int[] {NK, NK + 1};
        assertRejected(call, "key valid length 8 of batch entry 1 is outside [0, 7]");
        call = new Call();
        call.validLengths = new int[] {NK};
        assertRejected(call, "1 key valid lengths for a batch of 2");
    }

    @Test
    void misalignedBuffer() {
        Call call = new Call();
        ByteBuffer shifted = ByteBuffer.allocateDirect(B * H * NQ * D * 4 + 8);
        call.q = shifted.position(1).slice().order(ByteOrder.nativeOrder());
        assertRejected(call, "q buffer is not aligned to 4 bytes");
    }

    @Test
    void halfPrecisionNeedsHalfTheBytes() {
        Call call = new Call();
        call.dtype = AttentionNative.DTYPE_F16;
        // Exactly half-sized buffers suffice; V is fp16 1.0 everywhere, so every row averages to 1.
        call.q = ByteBuffer.allocateDirect(B * H * NQ * D * 2).order(ByteOrder.nativeOrder());
        call.k = ByteBuffer.allocateDirect(B * HKV * NK * D * 2).order(ByteOrder.nativeOrder());
        call.v = ByteBuffer.allocateDirect(B * HKV * NK * D * 2).order(ByteOrder.nativeOrder());
        for (int i = 0; i < B * HKV * NK * D; ++i) {
            call.v.putShort(2 * i, (short) 0x3c00);
        }
        call.out = ByteBuffer.allocateDirect(B * H * NQ * D * 2).order(ByteOrder.nativeOrder());
        call.run();
        for (int i = 0; i < B * H * NQ * D; ++i) {
            assertEquals((short) 0x3c00, call.out.getShort(2 * i), "element " + i);
        }
        call.compute = AttentionNative.DTYPE_BF16;
        assertRejected(call, "bf16 compute precision needs f32 or bf16 data");
    }
}
