package io.github.tilewise.djl.encoder.linear;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Several linear layers that read the same input, computed as one wider product: {@code x·[W₀ W₁
 * …]ᵀ} with the outputs concatenated on the last axis. A Transformer's query, key and value
 * projections are the example: one product of width {@code 3·hidden} quantizes the input once and
 * keeps the GEMM kernel busier than three narrow ones.
 *
 * <p>Each layer gets a {@link #part(int) part} as its operator, so the layers still work one at a
 * time (a part computes the whole product and keeps its slice); a block that knows the layers go
 * together (the encoder layer) finds the group with {@link #of(LinearOperator...)} and calls {@link
 * #forwardAll} once. The fused operator is closed when the last part is.
 */
public final class SharedInputLinear {

    private final LinearOperator fused;
    private final int[] widths;
    private final List<Part> parts;
    private int openParts;

    /**
     * Groups a fused operator with the widths of the layers it computes.
     *
     * @param fused computes all layers at once; its output width is the sum of {@code widths}
     * @param widths the layers' output widths, in concatenation order
     * @throws IllegalArgumentException if a width is not positive
     */
    public SharedInputLinear(LinearOperator fused, int... widths) {
        if (fused == null || widths.length == 0) {
            throw new IllegalArgumentException(
                    "a fused operator and at least one width are needed");
        }
        this.fused = fused;
        this.widths = widths.clone();
        List<Part> list = new ArrayList<>();
        int offset = 0;
        for (int i = 0; i < widths.length; i++) {
            if (widths[i] <= 0) {
                throw new IllegalArgumentException("widths must be positive, got " + widths[i]);
            }
            list.add(new Part(i, offset, widths[i]));
            offset += widths[i];
        }
        parts = Collections.unmodifiableList(list);
        openParts = widths.length;
    }

    /**
     * Returns the group whose parts are exactly {@code operators}, in order, or null.
     *
     * @param operators the layers' current operators
     * @return the group, or null if the operators are not the parts of one group in order
     */
    public static SharedInputLinear of(LinearOperator... operators) {
        if (operators.length == 0 || !(operators[0] instanceof Part)) {
            return null;
        }
        SharedInputLinear group = ((Part) operators[0]).group();
        if (group.parts.size() != operators.length) {
            return null;
        }
        for (int i = 0; i < operators.length; i++) {
            if (operators[i] != group.parts.get(i)) {
                return null;
            }
        }
        return group;
    }

    /**
     * Returns the group an operator is a part of, or null.
     *
     * @param operator a layer's operator
     * @return its group, or null if it is not a part
     */
    public static SharedInputLinear groupOf(LinearOperator operator) {
        return operator instanceof Part ? ((Part) operator).group() : null;
    }

    /**
     * Returns the operator of layer {@code index}.
     *
     * @param index the layer's position in the concatenation
     * @return its part
     */
    public LinearOperator part(int index) {
        return parts.get(index);
    }

    /**
     * Returns the fused operator.
     *
     * @return the operator computing every layer
     */
    public LinearOperator getFused() {
        return fused;
    }

    /**
     * Returns the output width of layer {@code index}.
     *
     * @param index the layer's position
     * @return its width
     */
    public int width(int index) {
        return widths[index];
    }

    /**
     * Returns the summed output width.
     *
     * @return the width of {@link #forwardAll}'s output
     */
    public int totalWidth() {
        int total = 0;
        for (int w : widths) {
            total += w;
        }
        return total;
    }

    /**
     * Computes every layer at once.
     *
     * @param x the shared input {@code [..., in]}
     * @return {@code [..., Σ widths]}, attached to {@code x}'s manager
     */
    public NDArray forwardAll(NDArray x) {
        return fused.forward(x, null);
    }

    /**
     * Computes every layer at once, into {@code out} when the fused operator {@link
     * LinearOperator#writesInto() writes into} caller-owned arrays.
     *
     * @param x the shared input {@code [..., in]}
     * @param out an open, contiguous FLOAT32 {@code [..., Σ widths]} array, or null
     * @return {@code out}, or a new array attached to {@code x}'s manager
     */
    public NDArray forwardAll(NDArray x, NDArray out) {
        return fused.forward(x, null, out);
    }

    /**
     * Returns whether {@link #forwardAll(NDArray, NDArray)} writes into the array it gets.
     *
     * @return the fused operator's {@link LinearOperator#writesInto()}
     */
    public boolean writesInto() {
        return fused.writesInto();
    }

    private synchronized void closePart() {
        openParts--;
        if (openParts == 0) {
            fused.close();
        }
    }

    /** One layer's view of the group. */
    private final class Part implements LinearOperator {
        private final int index;
        private final int offset;
        private final int width;
        private boolean closed;

        Part(int index, int offset, int width) {
            this.index = index;
            this.offset = offset;
            this.width = width;
        }

        SharedInputLinear group() {
            return SharedInputLinear.this;
        }

        @Override
        public NDArray forward(NDArray x, NDArray residual) {
            NDArray all = fused.forward(x, null);
            NDIndex slice = new NDIndex().addEllipseDim();
            slice.addSliceDim(offset, offset + width);
            NDArray mine = all.get(slice);
            all.close();
            if (residual != null && !residual.getShape().equals(mine.getShape())) {
                // add() would broadcast a residual of another shape into a wrong answer.
                Shape expected = mine.getShape();
                mine.close();
                throw new IllegalArgumentException(
                        "residual has shape " + residual.getShape() + ", expected " + expected);
            }
            if (residual != null) {
                NDArray sum = mine.add(residual);
                mine.close();
                return sum;
            }
            return mine;
        }

        @Override
        public String describe() {
            return fused.describe() + " (part " + (index + 1) + " of " + widths.length + ")";
        }

        @Override
        public void close() {
            synchronized (SharedInputLinear.this) {
                if (closed) {
                    return;
                }
                closed = true;
            }
            closePart();
        }
    }
}
