package io.github.tilewise.djl.lowp;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a conversion did: each linear layer's precision, kernel and resident weight bytes, and the
 * totals against fp32.
 */
public final class ConversionReport {

    /** One converted (or kept) linear layer. */
    public static final class Layer {
        private final String name;
        private final Precision precision;
        private final String operator;
        private final long residentBytes;
        private final long fp32Bytes;

        Layer(
                String name,
                Precision precision,
                String operator,
                long residentBytes,
                long fp32Bytes) {
            this.name = name;
            this.precision = precision;
            this.operator = operator;
            this.residentBytes = residentBytes;
            this.fp32Bytes = fp32Bytes;
        }

        /**
         * Returns the layer's name.
         *
         * @return e.g. {@code encoder.layer.0.attention.self.query}
         */
        public String getName() {
            return name;
        }

        /**
         * Returns the precision the layer runs in.
         *
         * @return the precision
         */
        public Precision getPrecision() {
            return precision;
        }

        /**
         * Returns the operator's description (precision and kernel).
         *
         * @return e.g. {@code int8[avx512-vnni]}
         */
        public String getOperator() {
            return operator;
        }

        /**
         * Returns the bytes the layer's weights and bias occupy now.
         *
         * @return bytes
         */
        public long getResidentBytes() {
            return residentBytes;
        }

        /**
         * Returns the bytes of the fp32 weights and bias.
         *
         * @return bytes
         */
        public long getFp32Bytes() {
            return fp32Bytes;
        }
    }

    private final List<Layer> layers;

    ConversionReport(List<Layer> layers) {
        this.layers = List.copyOf(layers);
    }

    /**
     * Returns every linear layer, in encoder order.
     *
     * @return the layers
     */
    public List<Layer> getLayers() {
        return layers;
    }

    /**
     * Returns the resident bytes of all linear layers' weights after conversion.
     *
     * @return bytes
     */
    public long getResidentBytes() {
        return layers.stream().mapToLong(Layer::getResidentBytes).sum();
    }

    /**
     * Returns what the same layers take in fp32.
     *
     * @return bytes
     */
    public long getFp32Bytes() {
        return layers.stream().mapToLong(Layer::getFp32Bytes).sum();
    }

    /**
     * Returns how many layers run in a precision.
     *
     * @param precision the precision
     * @return the count
     */
    public long count(Precision precision) {
        return layers.stream().filter(l -> l.getPrecision() == precision).count();
    }

    /**
     * Returns how many layers run on each native kernel: the bracketed name in each {@code
     * PackedLinear}'s description (the kernel table's entry that runs it), e.g. {@code
     * avx2-maddubs-reduced-range} or, for fp32 layers on the native kernel, {@code
     * avx512-f32-12x32}; layers left to PyTorch are left out.
     *
     * @return kernel name to layer count, in encoder order of first use
     */
    public Map<String, Long> kernelCounts() {
        Map<String, Long> counts = new LinkedHashMap<>();
        for (Layer l : layers) {
            int open = l.operator.indexOf('[');
            int close = l.operator.indexOf(']', open + 1);
            if (open >= 0 && close > open) {
                counts.merge(l.operator.substring(open + 1, close), 1L, Long::sum);
            }
        }
        return counts;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        sb.append(
                String.format(
                        Locale.ROOT,
                        "linear weights: %.1f MiB resident vs %.1f MiB fp32 (%.2fx)%n",
                        getResidentBytes() / 1048576.0,
                        getFp32Bytes() / 1048576.0,
                        getResidentBytes() / (double) getFp32Bytes()));
        for (Layer l : layers) {
            sb.append(
                    String.format(
                            Locale.ROOT,
                            "  %-50s %-30s %10d bytes%n",
                            l.name,
                            l.operator,
                            l.residentBytes));
        }
        return sb.toString();
    }
}
