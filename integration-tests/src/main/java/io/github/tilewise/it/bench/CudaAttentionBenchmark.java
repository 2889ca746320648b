package io.github.tilewise.it.bench;

import ai.djl.ndarray.types.DataType;
import io.github.tilewise.djl.attention.AttentionLayout;
import io.github.tilewise.djl.attention.AttentionOptions;
import io.github.tilewise.djl.cuda.CudaAttention;
import io.github.tilewise.djl.cuda.DeviceBuffer;
import io.github.tilewise.djl.jni.AttentionNative;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;

/**
 * {@link CudaAttention} from Java: runs it on fresh random fp16/bf16 inputs, through host buffers
 * and through device buffers, compares the outputs with the CPU operator of libtilewise on the same
 * inputs and with a float64 reference (one {@code java-cuda-check} line per case), then times the
 * kernel on device-resident buffers reused across calls ({@code java-cuda-attention}). Exits 1 on
 * any mismatch. Without a usable GPU (no {@code libtilewise_cuda} in the jar, no driver, no device)
 * it prints why and exits 0, or 2 with {@code --require-gpu}.
 *
 * <p>Uses only the CUDA and attention classes of {@code tilewise-djl} and DJL's API jar (for {@code
 * DataType} and {@code AttentionOptions}; no DJL engine), so it also runs on a GPU machine without
 * Maven. Run it with {@code mvn -B -q -pl integration-tests exec:exec@cuda-bench} on a machine
 * whose build made {@code libtilewise_cuda} (README, "The two commands"), or with {@code
 * native/bench/cuda/stage.sh} and {@code run_h200.sh}, which compile it with those classes into a
 * plain JVM carried to the GPU machine ({@code -Dtilewise.cuda.library=<libtilewise_cuda.so>},
 * {@code libtilewise.so} on the class path under {@code native/linux-x86_64/}); see {@code
 * native/bench/cuda/NOTES.md}.
 */
public final class CudaAttentionBenchmark {

    private static int failures;

    private CudaAttentionBenchmark() {}

    /**
     * Runs the checks and the timing.
     *
     * @param args {@code --require-gpu}: exit 2 instead of 0 when CUDA is unavailable
     */
    public static void main(String[] args) {
        boolean requireGpu = Arrays.asList(args).contains("--require-gpu");
        System.out.println(
                "java "
                        + System.getProperty("java.version")
                        + " ("
                        + System.getProperty("java.home")
                        + ")");
        if (!CudaAttention.isAvailable()) {
            System.out.println(
                    "cuda-attention skipped: CUDA unavailable: "
                            + CudaAttention.unavailableReason());
            System.exit(requireGpu ? 2 : 0);
        }
        System.out.println("device: " + CudaAttention.describeDevice());
        Random rng = new Random(System.nanoTime());
        // dtype, B, H, Hkv, Nq, Nk, D, causal, varlen, seq-major layout
        Object[][] cases = {
            {DataType.FLOAT16, 2, 4, 4, 256, 256, 64, false, false, false},
            {DataType.BFLOAT16, 2, 4, 2, 200, 333, 128, true, false, false},
            {DataType.FLOAT16, 3, 8, 2, 129, 77, 128, true, true, true},
            {DataType.BFLOAT16, 2, 6, 1, 1, 500, 64, false, true, true},
        };
        for (Object[] c : cases) {
            runCase(
                    rng,
                    (DataType) c[0],
                    (int) c[1],
                    (int) c[2],
                    (int) c[3],
                    (int) c[4],
                    (int) c[5],
                    (int) c[6],
                    (boolean) c[7],
                    (boolean) c[8],
                    (boolean) c[9]);
        }
        timeDeviceResident(rng);
        System.out.println(
                failures == 0
                        ? "java cuda checks: all passed"
                        : "java cuda checks: " + failures + " failure(s)");
        System.exit(failures == 0 ? 0 : 1);
    }

    private static void runCase(
            Random rng,
            DataType type,
            int b,
            int h,
            int hkv,
            int nq,
            int nk,
            int d,
            boolean causal,
            boolean varlen,
            boolean seqMajor) {
        boolean f16 = type == DataType.FLOAT16;
        int[] lengths = null;
        if (varlen) {
            lengths = new int[b];
            for (int i = 0; i < b; i++) {
                lengths[i] = rng.nextInt(nk + 1);
            }
            lengths[0] = 0; // a fully padded sequence: zeros
        }
        AttentionLayout layout =
                seqMajor
                        ? AttentionLayout.BATCH_SEQ_HEADS_DIM
                        : AttentionLayout.BATCH_HEADS_SEQ_DIM;
        AttentionOptions options =
                AttentionOptions.builder()
                        .optCausal(causal)
                        .optLayout(layout)
                        .optKeyValidLengths(lengths)
                        .build();
        try (CudaAttention attention =
                CudaAttention.builder()
                        .setDataType(type)
                        .setShape(b, h, hkv, nq, nk, d)
                        .optOptions(options)
                        .build()) {
            ByteBuffer q = random(rng, attention.queryBytes(), f16, 1.5);
            ByteBuffer k = random(rng, attention.keyValueBytes(), f16, 1.5);
            ByteBuffer v = random(rng, attention.keyValueBytes(), f16, 1.0);
            ByteBuffer gpuHost = nanFilled(attention.queryBytes());
            ByteBuffer lse = direct(attention.logSumExpBytes());
            attention.forward(q, k, v, gpuHost, lse);

            ByteBuffer gpuDevice = nanFilled(attention.queryBytes());
            try (DeviceBuffer dq = DeviceBuffer.copyOf(q);
                    DeviceBuffer dk = DeviceBuffer.copyOf(k);
                    DeviceBuffer dv = DeviceBuffer.copyOf(v);
                    DeviceBuffer dout = DeviceBuffer.allocate(attention.queryBytes())) {
                dout.copyFrom(nanFilled(attention.queryBytes()));
                attention.forward(dq, dk, dv, dout, null);
                dout.copyTo(gpuDevice);
            }

            long[] shape = {b, h, hkv, nq, nk, d};
            long[] strides = strides(b, h, hkv, nq, nk, d, seqMajor);
            ByteBuffer cpu = nanFilled(attention.queryBytes());
            AttentionNative.get()
                    .forward(
                            f16 ? AttentionNative.DTYPE_F16 : AttentionNative.DTYPE_BF16,
                            AttentionNative.DTYPE_F32,
                            shape,
                            q,
                            Arrays.copyOfRange(strides, 0, 3),
                            k,
                            Arrays.copyOfRange(strides, 3, 6),
                            v,
                            Arrays.copyOfRange(strides, 6, 9),
                            cpu,
                            Arrays.copyOfRange(strides, 9, 12),
                            (float) (1 / Math.sqrt(d)),
                            causal,
                            lengths,
                            null,
                            null,
                            null,
                            null);

            double[] ref = reference(q, k, v, shape, strides, causal, lengths, f16);
            double gpuVsRef = relErr(gpuHost, ref, f16);
            double cpuVsRef = relErr(cpu, ref, f16);
            double gpuVsCpu = relErr(gpuHost, toDouble(cpu, f16), f16);
            boolean same = gpuHost.equals(gpuDevice);
            boolean nan = hasNaN(gpuHost, f16) || hasNaN(gpuDevice, f16);
            double tol = f16 ? 5e-3 : 3e-2;
            boolean ok = !nan && same && gpuVsRef <= tol && gpuVsCpu <= tol;
            System.out.printf(
                    "java-cuda-check dtype=%s B=%d H=%d Hkv=%d Nq=%d Nk=%d D=%d causal=%d varlen=%d"
                            + " layout=%s gpu_vs_f64=%.2e cpu_vs_f64=%.2e gpu_vs_cpu=%.2e"
                            + " host_path==device_path=%b nan=%b %s%n",
                    f16 ? "fp16" : "bf16",
                    b,
                    h,
                    hkv,
                    nq,
                    nk,
                    d,
                    causal ? 1 : 0,
                    varlen ? 1 : 0,
                    seqMajor ? "BSHD" : "BHSD",
                    gpuVsRef,
                    cpuVsRef,
                    gpuVsCpu,
                    same,
                    nan,
                    ok ? "OK" : "FAIL");
            if (!ok) {
                failures++;
            }
        }
    }

    /** Device-resident buffers reused across calls: the kernel's own speed seen from Java. */
    private static void timeDeviceResident(Random rng) {
        int b = 4, h = 16, n = 4096, d = 128;
        try (CudaAttention attention =
                        CudaAttention.builder()
                                .setDataType(DataType.BFLOAT16)
                                .setShape(b, h, h, n, n, d)
                                .build();
                DeviceBuffer dq =
                        DeviceBuffer.copyOf(random(rng, attention.queryBytes(), false, 1));
                DeviceBuffer dk =
                        DeviceBuffer.copyOf(random(rng, attention.keyValueBytes(), false, 1));
                DeviceBuffer dv =
                        DeviceBuffer.copyOf(random(rng, attention.keyValueBytes(), false, 1));
                DeviceBuffer dout = DeviceBuffer.allocate(attention.queryBytes())) {
            ByteBuffer one = direct(2);
            for (int i = 0; i < 3; i++) {
                attention.forward(dq, dk, dv, dout, null);
            }
            dout.copyTo(one); // waits for the GPU
            int reps = 20;
            long t0 = System.nanoTime();
            for (int i = 0; i < reps; i++) {
                attention.forward(dq, dk, dv, dout, null);
            }
            dout.copyTo(one);
            double ms = (System.nanoTime() - t0) / 1e6 / reps;
            double tflops = 4.0 * b * h * (double) n * n * d / (ms * 1e9);
            System.out.printf(
                    "java-cuda-attention dtype=bf16 B=%d H=%d N=%d D=%d causal=0"
                            + " ms=%.3f tflops=%.1f (mean of %d calls from Java, wall clock)%n",
                    b, h, n, d, ms, tflops, reps);
        }
    }

    private static long[] strides(int b, int h, int hkv, int nq, int nk, int d, boolean seqMajor) {
        if (seqMajor) {
            return new long[] {
                (long) nq * h * d,
                d,
                (long) h * d,
                (long) nk * hkv * d,
                d,
                (long) hkv * d,
                (long) nk * hkv * d,
                d,
                (long) hkv * d,
                (long) nq * h * d,
                d,
                (long) h * d
            };
        }
        return new long[] {
            (long) h * nq * d,
            (long) nq * d,
            d,
            (long) hkv * nk * d,
            (long) nk * d,
            d,
            (long) hkv * nk * d,
            (long) nk * d,
            d,
            (long) h * nq * d,
            (long) nq * d,
            d
        };
    }

    private static double[] reference(
            ByteBuffer qb,
            ByteBuffer kb,
            ByteBuffer vb,
            long[] shape,
            long[] st,
            boolean causal,
            int[] lengths,
            boolean f16) {
        int b = (int) shape[0], h = (int) shape[1], hkv = (int) shape[2], nq = (int) shape[3];
        int nk = (int) shape[4], d = (int) shape[5];
        double[] q = toDouble(qb, f16), k = toDouble(kb, f16), v = toDouble(vb, f16);
        double[] out = new double[q.length];
        double scale = 1 / Math.sqrt(d);
        double[] s = new double[nk];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                int hk = hi / (h / hkv);
                for (int i = 0; i < nq; i++) {
                    long qo = bi * st[0] + hi * st[1] + i * st[2];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < nk; j++) {
                        boolean visible =
                                (lengths == null || j < lengths[bi])
                                        && (!causal || j <= i + (nk - nq));
                        if (!visible) {
                            s[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        long ko = bi * st[3] + hk * st[4] + j * st[5];
                        double dot = 0;
                        for (int x = 0; x < d; x++) {
                            dot += q[(int) (qo + x)] * k[(int) (ko + x)];
                        }
                        s[j] = dot * scale;
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < nk; j++) {
                        sum += s[j] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(s[j] - max);
                    }
                    long oo = bi * st[9] + hi * st[10] + i * st[11];
                    if (sum == 0) {
                        continue; // zeros
                    }
                    for (int j = 0; j < nk; j++) {
                        if (s[j] == Double.NEGATIVE_INFINITY) {
                            continue;
                        }
                        double p = Math.exp(s[j] - max) / sum;
                        long vo = bi * st[6] + hk * st[7] + j * st[8];
                        for (int x = 0; x < d; x++) {
                            out[(int) (oo + x)] += p * v[(int) (vo + x)];
                        }
                    }
                }
            }
        }
        return out;
    }

    private static double relErr(ByteBuffer got, double[] ref, boolean f16) {
        double[] g = toDouble(got, f16);
        double err = 0, norm = 0;
        for (int i = 0; i < ref.length; i++) {
            err += (g[i] - ref[i]) * (g[i] - ref[i]);
            norm += ref[i] * ref[i];
        }
        return Math.sqrt(err / Math.max(norm, 1e-30));
    }

    private static boolean hasNaN(ByteBuffer buffer, boolean f16) {
        for (double x : toDouble(buffer, f16)) {
            if (Double.isNaN(x)) {
                return true;
            }
        }
        return false;
    }

    private static ByteBuffer direct(long bytes) {
        return ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static ByteBuffer nanFilled(long bytes) {
        ByteBuffer buffer = direct(bytes);
        for (int i = 0; i < bytes; i++) {
            buffer.put(i, (byte) 0xff); // 0xffff: NaN in fp16 and bf16
        }
        return buffer;
    }

    private static ByteBuffer random(Random rng, long bytes, boolean f16, double sd) {
        ByteBuffer buffer = direct(bytes);
        for (int i = 0; i < bytes / 2; i++) {
            float x = (float) (sd * rng.nextGaussian());
            buffer.putShort(2 * i, f16 ? toHalf(x) : toBfloat16(x));
        }
        return buffer;
    }

    private static double[] toDouble(ByteBuffer buffer, boolean f16) {
        double[] out = new double[buffer.capacity() / 2];
        for (int i = 0; i < out.length; i++) {
            short bits = buffer.getShort(2 * i);
            out[i] = f16 ? fromHalf(bits) : Float.intBitsToFloat((bits & 0xffff) << 16);
        }
        return out;
    }

    private static short toBfloat16(float f) {
        int x = Float.floatToRawIntBits(f);
        x += 0x7fff + ((x >>> 16) & 1);
        return (short) (x >>> 16);
    }

    private static short toHalf(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int exp = ((x >>> 23) & 0xff) - 127 + 15;
        int mant = x & 0x7fffff;
        if (exp >= 31) {
            return (short) (sign | 0x7c00);
        }
        if (exp <= 0) {
            if (exp < -10) {
                return (short) sign;
            }
            mant |= 0x800000;
            int shift = 14 - exp;
            int half = mant >>> shift;
            int rem = mant & ((1 << shift) - 1);
            int mid = 1 << (shift - 1);
            if (rem > mid || (rem == mid && (half & 1) != 0)) {
                half++;
            }
            return (short) (sign | half);
        }
        int half = sign | (exp << 10) | (mant >>> 13);
        int rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (half & 1) != 0)) {
            half++;
        }
        return (short) half;
    }

    private static double fromHalf(short bits) {
        int h = bits & 0xffff;
        int sign = (h & 0x8000) != 0 ? -1 : 1;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0) {
            return sign * Math.scalb((double) mant, -24);
        }
        if (exp == 31) {
            return mant != 0 ? Double.NaN : sign * Double.POSITIVE_INFINITY;
        }
        return sign * Math.scalb((double) (mant | 0x400), exp - 25);
    }
}
