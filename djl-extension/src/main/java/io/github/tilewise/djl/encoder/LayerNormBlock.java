package io.github.tilewise.djl.encoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.Initializer;
import ai.djl.util.PairList;
import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;
import io.github.tilewise.djl.encoder.linear.NormalizingLinearOperator;
import io.github.tilewise.djl.jni.LibUtils;
import io.github.tilewise.djl.jni.LinearNative;
import io.github.tilewise.djl.jni.SharedMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Layer normalisation over the last axis, {@code y = (x − mean) / √(var + eps) · γ + β}, in fp32.
 * Parameters {@code gamma} and {@code beta} map to a checkpoint's {@code <name>.weight} and {@code
 * <name>.bias}.
 *
 * <p>With the native library loaded, fp32 CPU inputs run on Tilewise's LayerNorm kernel ({@code
 * tw_layernorm}: one pass per row on the worker pool, where PyTorch's {@code layer_norm} runs on
 * the single intra-op thread the encoder leaves it); otherwise on PyTorch's {@code layer_norm}. The
 * kernel reads private copies of γ and β, refreshed whenever the parameter arrays are replaced.
 */
public final class LayerNormBlock extends AbstractBlock {

    private static final byte VERSION = 1;

    private final String name;
    private final int size;
    private final float eps;
    private final Parameter gamma;
    private final Parameter beta;
    private volatile NativeAffine nativeAffine;

    /**
     * Creates the block.
     *
     * @param name the checkpoint name, e.g. {@code embeddings.LayerNorm}
     * @param size the normalised width
     * @param eps the epsilon under the square root
     */
    public LayerNormBlock(String name, int size, float eps) {
        super(VERSION);
        this.name = name;
        this.size = size;
        this.eps = eps;
        gamma = addParameter(ParameterValues.create("gamma", Parameter.Type.GAMMA));
        beta = addParameter(ParameterValues.create("beta", Parameter.Type.BETA));
        gamma.setInitializer(Initializer.ONES);
        beta.setInitializer(Initializer.ZEROS);
    }

    /**
     * Normalises {@code x [..., size]}.
     *
     * @param x the input
     * @return the normalised array, attached to {@code x}'s manager
     */
    public NDArray apply(NDArray x) {
        return apply(x, null, -1);
    }

    /**
     * As {@link #apply(NDArray)}, written into slot {@code slot} of a forward's buffers where the
     * native kernel runs (FLOAT32 on the CPU).
     */
    NDArray apply(NDArray x, ActivationBuffers buffers, int slot) {
        if (LibUtils.isAvailable()
                && x.getDataType() == DataType.FLOAT32
                && ai.djl.Device.Type.CPU.equals(x.getDevice().getDeviceType())
                && x.getShape().dimension() >= 1
                && x.getShape().get(x.getShape().dimension() - 1) == size) {
            return applyNative(
                    x, ActivationBuffers.lend(buffers, slot, x.getShape(), x.getManager()));
        }
        return x.getNDArrayInternal()
                .layerNorm(x, new Shape(size), gamma.getArray(), beta.getArray(), eps)
                .singletonOrThrow();
    }

    /**
     * Computes {@code LayerNorm(linear(x, residual))}: in one pass when the layer's operator can
     * fuse the normalisation ({@link NormalizingLinearOperator}), else as two steps.
     *
     * @param linear the layer before the normalisation, of output width {@code size}
     * @param x its input
     * @param residual added to its output before the normalisation, or null
     * @return the normalised output, attached to {@code x}'s manager
     */
    public NDArray applyAfter(LinearBlock linear, NDArray x, NDArray residual) {
        return applyAfter(linear, x, residual, null, -1);
    }

    /**
     * As {@link #applyAfter(LinearBlock, NDArray, NDArray)}, the fused pass writing into slot
     * {@code slot} of a forward's buffers.
     */
    NDArray applyAfter(
            LinearBlock linear, NDArray x, NDArray residual, ActivationBuffers buffers, int slot) {
        LinearOperator op = linear.getOperator();
        if (op instanceof NormalizingLinearOperator
                && ((NormalizingLinearOperator) op).fusesLayerNorm()
                && linear.getOutFeatures() == size
                && LibUtils.isAvailable()) {
            NativeAffine affine = nativeAffine();
            NDArray out = ActivationBuffers.lend(buffers, slot, op, x, size);
            return ((NormalizingLinearOperator) op)
                    .forwardNormalized(x, residual, affine.gamma, affine.beta, eps, out);
        }
        NDArray y = linear.apply(x, residual);
        NDArray normalized = apply(y);
        y.close();
        return normalized;
    }

    /**
     * Computes {@code LayerNorm(second(first(x)) + residual)}, e.g. a Transformer's feed-forward
     * block: in one chained pass when {@code first}'s operator can hand its output to {@code
     * second}'s directly ({@link NormalizingLinearOperator#forwardChainNormalized}), else step by
     * step.
     *
     * @param first the first layer
     * @param second the second layer, of output width {@code size}
     * @param x the first layer's input
     * @param residual added to the second layer's output before the normalisation, or null
     * @return the normalised output, attached to {@code x}'s manager
     */
    public NDArray applyAfter(LinearBlock first, LinearBlock second, NDArray x, NDArray residual) {
        return applyAfter(first, second, x, residual, null, -1, -1);
    }

    /**
     * As {@link #applyAfter(LinearBlock, LinearBlock, NDArray, NDArray)}, the hidden rows written
     * into slot {@code hiddenSlot} and the output into slot {@code outSlot} of a forward's buffers
     * (a chained pass keeps its hidden rows, in its own form, in the hidden slot).
     */
    NDArray applyAfter(
            LinearBlock first,
            LinearBlock second,
            NDArray x,
            NDArray residual,
            ActivationBuffers buffers,
            int hiddenSlot,
            int outSlot) {
        LinearOperator op = first.getOperator();
        if (op instanceof NormalizingLinearOperator
                && first.getOutFeatures() == second.getInFeatures()
                && second.getOutFeatures() == size
                && LibUtils.isAvailable()) {
            NativeAffine affine = nativeAffine();
            NormalizingLinearOperator chained = (NormalizingLinearOperator) op;
            NDArray out = ActivationBuffers.lend(buffers, outSlot, second.getOperator(), x, size);
            NDArray hidden =
                    ActivationBuffers.lend(buffers, hiddenSlot, op, x, first.getOutputWidth());
            NDArray y =
                    chained.forwardChainNormalized(
                            x,
                            second.getOperator(),
                            residual,
                            affine.gamma,
                            affine.beta,
                            eps,
                            out,
                            hidden);
            if (hidden != null) {
                hidden.close();
            }
            if (y != null) {
                return y;
            }
            if (out != null) {
                out.close();
            }
        }
        NDArray hidden =
                first.apply(
                        x,
                        null,
                        ActivationBuffers.lend(buffers, hiddenSlot, op, x, first.getOutputWidth()));
        NDArray y = applyAfter(second, hidden, residual, buffers, outSlot);
        hidden.close();
        return y;
    }

    /** The native LayerNorm of {@code x} into {@code out} (x's shape), or a new array if null. */
    private NDArray applyNative(NDArray x, NDArray out) {
        NativeAffine affine = nativeAffine();
        long rows = x.getShape().size() / size;
        NDManager target = x.getManager();
        NDArray y = out != null ? out : target.create(x.getShape(), DataType.FLOAT32);
        try (NDManager scope = target.newSubManager()) {
            ByteBuffer xb = SharedMemory.of(x, "x", scope);
            ByteBuffer yb = SharedMemory.of(y, "y", null);
            LinearNative.get().layerNorm(rows, size, xb, null, affine.gamma, affine.beta, eps, yb);
        } catch (RuntimeException | Error e) {
            y.close();
            throw e;
        }
        return y;
    }

    /** γ and β as direct buffers, copied again when the parameter arrays are replaced. */
    private NativeAffine nativeAffine() {
        NDArray g = gamma.getArray();
        NDArray b = beta.getArray();
        NativeAffine current = nativeAffine;
        if (current == null || current.gammaSource != g || current.betaSource != b) {
            // Racing threads may each build a copy of the same arrays; any of them is right.
            current = new NativeAffine(g, b);
            nativeAffine = current;
        }
        return current;
    }

    /** Private copies of the parameters for the native kernel, with the arrays they came from. */
    private static final class NativeAffine {
        final NDArray gammaSource;
        final NDArray betaSource;
        final ByteBuffer gamma;
        final ByteBuffer beta;

        NativeAffine(NDArray g, NDArray b) {
            gammaSource = g;
            betaSource = b;
            gamma = direct(g.toFloatArray());
            beta = direct(b.toFloatArray());
        }

        private static ByteBuffer direct(float[] values) {
            ByteBuffer buffer =
                    ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            buffer.asFloatBuffer().put(values);
            return buffer;
        }
    }

    void collectCheckpointParameters(List<CheckpointParameter> out) {
        collectCheckpointParameters(out, true);
    }

    /** As above; without a checkpoint bias ({@code norm_bias = false}) β stays zero. */
    void collectCheckpointParameters(List<CheckpointParameter> out, boolean withBias) {
        out.add(new CheckpointParameter(name + ".weight", gamma, new Shape(size)));
        if (withBias) {
            out.add(new CheckpointParameter(name + ".bias", beta, new Shape(size)));
        }
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        return new NDList(apply(inputs.head()));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        return new Shape[] {inputShapes[0]};
    }

    @Override
    protected void prepare(Shape[] inputShapes) {
        ParameterValues.prepare(gamma, new Shape(size));
        ParameterValues.prepare(beta, new Shape(size));
    }
}
