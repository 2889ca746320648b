package io.github.tilewise.djl.encoder.linear;

import ai.djl.MalformedModelException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import io.github.tilewise.djl.encoder.ParameterValues;
import java.io.DataInputStream;
import java.io.IOException;
import java.util.List;

/**
 * A linear layer {@code y = act(x·Wᵀ + b) + residual} whose arithmetic is pluggable.
 *
 * <p>With a {@link LinearActivation#isGated() gated} activation the layer is a gated feed-forward's
 * first projection: the weight keeps the checkpoint's {@code [2·ff, in]} (the activated rows, then
 * the gate rows) and the output has {@link #getOutputWidth()} {@code = ff} columns, {@code f(u) ⊙
 * g}.
 *
 * <p>The block owns the fp32 parameters {@code weight [out, in]} (PyTorch's layout) and {@code bias
 * [out]}, saved and loaded with the usual DJL {@code .params} files. Its forward delegates to a
 * {@link LinearOperator}: by default the fp32 one of {@link LinearOperators}; a converter
 * substitutes another implementation per layer with {@link #setOperator(LinearOperator)}, reading
 * the weights with {@link #getWeight()} or {@link #getWeightAsFloats()}.
 *
 * <p>Inputs: {@code x [..., in]} and optionally the residual {@code [..., out]}.
 */
public final class LinearBlock extends AbstractBlock {

    private static final byte VERSION = 1;

    private final String name;
    private final int inFeatures;
    private final int outFeatures;
    private final LinearActivation activation;
    private final Parameter weight;
    private final Parameter bias;
    private volatile LinearOperator operator;

    /**
     * Creates a layer.
     *
     * @param name the layer's checkpoint name, e.g. {@code encoder.layer.0.attention.self.query}
     * @param inFeatures the input width
     * @param outFeatures the output width
     * @param activation the function after the bias
     */
    public LinearBlock(String name, int inFeatures, int outFeatures, LinearActivation activation) {
        super(VERSION);
        if (inFeatures <= 0 || outFeatures <= 0) {
            throw new IllegalArgumentException(
                    name + ": widths must be positive, got " + inFeatures + " -> " + outFeatures);
        }
        if (activation.isGated() && outFeatures % 2 != 0) {
            throw new IllegalArgumentException(
                    name + ": a gated layer needs an even output count 2·ff, got " + outFeatures);
        }
        this.name = name;
        this.inFeatures = inFeatures;
        this.outFeatures = outFeatures;
        this.activation = activation;
        weight = addParameter(ParameterValues.create("weight", Parameter.Type.WEIGHT));
        bias = addParameter(ParameterValues.create("bias", Parameter.Type.BIAS));
    }

    /**
     * Returns the layer's checkpoint name.
     *
     * @return e.g. {@code encoder.layer.0.output.dense}
     */
    public String getName() {
        return name;
    }

    /**
     * Returns the input width.
     *
     * @return {@code in}
     */
    public int getInFeatures() {
        return inFeatures;
    }

    /**
     * Returns the output width.
     *
     * @return {@code out}
     */
    public int getOutFeatures() {
        return outFeatures;
    }

    /**
     * Returns the width of the layer's output: {@code out}, or {@code out / 2} for a gated
     * activation.
     *
     * @return the output width
     */
    public int getOutputWidth() {
        return activation.outputWidth(outFeatures);
    }

    /**
     * Returns the function applied after the bias.
     *
     * @return the activation
     */
    public LinearActivation getActivation() {
        return activation;
    }

    /**
     * Returns the fp32 weight {@code [out, in]} (owned by this block: do not close it).
     *
     * @return the weight
     */
    public NDArray getWeight() {
        return weight.getArray();
    }

    /**
     * Returns the fp32 bias {@code [out]} (owned by this block: do not close it).
     *
     * @return the bias
     */
    public NDArray getBias() {
        return bias.getArray();
    }

    /**
     * Returns a copy of the weight as a row-major {@code [out][in]} float array.
     *
     * @return {@code out·in} floats, row {@code o} at offset {@code o·in}
     */
    public float[] getWeightAsFloats() {
        return getWeight().toFloatArray();
    }

    /**
     * Returns a copy of the bias.
     *
     * @return {@code out} floats
     */
    public float[] getBiasAsFloats() {
        return getBias().toFloatArray();
    }

    /**
     * Sets the parameters from arrays (taken over, not copied), e.g. from a checkpoint.
     *
     * @param w {@code [out, in]} fp32
     * @param b {@code [out]} fp32
     * @throws IllegalArgumentException naming the layer if a shape or type is wrong
     */
    public void setParameters(NDArray w, NDArray b) {
        ParameterValues.replace(name, weight, w, new Shape(outFeatures, inFeatures));
        ParameterValues.replace(name, bias, b, new Shape(outFeatures));
        replaceOperator(null);
    }

    /**
     * Builds a layer computing several layers at once: weights stacked along the output axis,
     * biases concatenated, e.g. {@code [Wq; Wk; Wv]} for an encoder's query, key and value. The new
     * layer's arrays live on {@code manager}; close it when the layer is no longer needed.
     *
     * @param name the new layer's name, e.g. {@code encoder.layer.0.attention.self.qkv}
     * @param parts layers with one input width and one activation
     * @param manager where the concatenated arrays are created
     * @return the concatenated layer
     * @throws IllegalArgumentException if the parts differ in input width or activation, or are
     *     gated
     */
    public static LinearBlock concatenate(String name, List<LinearBlock> parts, NDManager manager) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException(name + ": nothing to concatenate");
        }
        LinearBlock first = parts.get(0);
        if (first.activation.isGated()) {
            throw new IllegalArgumentException(name + ": gated layers cannot be concatenated");
        }
        int out = 0;
        NDList weights = new NDList();
        NDList biases = new NDList();
        for (LinearBlock part : parts) {
            if (part.inFeatures != first.inFeatures || part.activation != first.activation) {
                throw new IllegalArgumentException(
                        name
                                + ": "
                                + part.name
                                + " differs from "
                                + first.name
                                + " in input or activation");
            }
            out += part.outFeatures;
            weights.add(part.getWeight());
            biases.add(part.getBias());
        }
        LinearBlock block = new LinearBlock(name, first.inFeatures, out, first.activation);
        NDArray w = NDArrays.concat(weights, 0);
        NDArray b = NDArrays.concat(biases, 0);
        w.attach(manager);
        b.attach(manager);
        block.setParameters(w, b);
        return block;
    }

    /**
     * Returns the operator the forward runs, creating the default fp32 one ({@link
     * LinearOperators#fp32}) on first use.
     *
     * @return the operator
     */
    public LinearOperator getOperator() {
        LinearOperator current = operator;
        if (current != null) {
            return current;
        }
        synchronized (this) {
            // Concurrent first calls must pack the weights once, not once each.
            if (operator == null) {
                operator = LinearOperators.fp32(getWeight(), getBias(), activation);
            }
            return operator;
        }
    }

    /**
     * Replaces the operator (e.g. by a quantized one); the previous one is closed.
     *
     * @param newOperator the operator; null returns to fp32
     */
    public void setOperator(LinearOperator newOperator) {
        replaceOperator(newOperator);
    }

    /**
     * Computes {@code act(x·Wᵀ + b) + residual} with the current operator.
     *
     * @param x the input {@code [..., in]}
     * @param residual added after the activation ({@code [..., getOutputWidth()]}), or null
     * @return {@code [..., getOutputWidth()]}, attached to {@code x}'s manager
     */
    public NDArray apply(NDArray x, NDArray residual) {
        long last = x.getShape().get(x.getShape().dimension() - 1);
        if (last != inFeatures) {
            throw new IllegalArgumentException(
                    name + ": input has width " + last + ", the layer expects " + inFeatures);
        }
        return getOperator().forward(x, residual);
    }

    /**
     * Runs the layer into {@code out} where its operator {@link LinearOperator#writesInto() writes
     * into} caller-owned arrays.
     *
     * @param x {@code [..., in]}
     * @param residual added after the activation, or null
     * @param out an open, contiguous FLOAT32 array of the output's shape, or null
     * @return {@code out}, or a new array attached to {@code x}'s manager
     * @throws IllegalArgumentException if the input width is not {@code inFeatures}
     */
    public NDArray apply(NDArray x, NDArray residual, NDArray out) {
        long last = x.getShape().get(x.getShape().dimension() - 1);
        if (last != inFeatures) {
            throw new IllegalArgumentException(
                    name + ": input has width " + last + ", the layer expects " + inFeatures);
        }
        return getOperator().forward(x, residual, out);
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore parameterStore,
            NDList inputs,
            boolean training,
            PairList<String, Object> params) {
        NDArray residual = inputs.size() > 1 ? inputs.get(1) : null;
        return new NDList(apply(inputs.head(), residual));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputShapes) {
        Shape in = inputShapes[0];
        return new Shape[] {in.slice(0, in.dimension() - 1).add(getOutputWidth())};
    }

    @Override
    protected void prepare(Shape[] inputShapes) {
        ParameterValues.prepare(weight, new Shape(outFeatures, inFeatures));
        ParameterValues.prepare(bias, new Shape(outFeatures));
    }

    @Override
    public void loadParameters(NDManager manager, DataInputStream is)
            throws IOException, MalformedModelException {
        super.loadParameters(manager, is);
        replaceOperator(null);
    }

    @Override
    public String toString() {
        return "Linear("
                + name
                + ", "
                + inFeatures
                + " -> "
                + outFeatures
                + ", "
                + activation
                + ")";
    }

    private synchronized void replaceOperator(LinearOperator newOperator) {
        LinearOperator previous = operator;
        operator = newOperator;
        if (previous != null && previous != newOperator) {
            previous.close(); // waits for the forwards still running on it
        }
    }
}
