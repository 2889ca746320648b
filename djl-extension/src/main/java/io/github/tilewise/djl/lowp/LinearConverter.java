package io.github.tilewise.djl.lowp;

import io.github.tilewise.djl.encoder.linear.LinearBlock;
import io.github.tilewise.djl.encoder.linear.LinearOperator;

/**
 * Turns one fp32 linear layer into an operator of a given precision: the service interface of the
 * converter registry. Implementations are found with {@link java.util.ServiceLoader} (list them in
 * {@code META-INF/services/io.github.tilewise.djl.lowp.LinearConverter}); for each precision,
 * {@link LinearConverters} uses the supporting converter with the highest {@link #getPriority()},
 * so another module can replace the built-in {@link NativeLinearConverter} (e.g. with a GPU one).
 */
public interface LinearConverter {

    /**
     * Returns a short name for logs and reports.
     *
     * @return e.g. {@code native}
     */
    String getName();

    /**
     * Returns whether this converter can make layers of a precision on this machine.
     *
     * @param precision the precision
     * @return true if {@link #convert} accepts it
     */
    boolean supports(Precision precision);

    /**
     * Returns this converter's rank among those supporting a precision (higher wins).
     *
     * @return the priority; the built-in converter has 0
     */
    default int getPriority() {
        return 0;
    }

    /**
     * Makes the operator of a layer.
     *
     * @param layer the layer, with its fp32 parameters loaded (not modified)
     * @param precision one of the precisions {@link #supports supported}
     * @param smoothing SmoothQuant input scales for the layer ({@code in} positive floats), or null
     * @return the operator, owned by the caller (who closes it)
     */
    LinearOperator convert(LinearBlock layer, Precision precision, float[] smoothing);
}
