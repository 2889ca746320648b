package io.github.tilewise.djl.lowp;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.ServiceLoader;

/** The registry of {@link LinearConverter}s found with {@link ServiceLoader}. */
public final class LinearConverters {

    private LinearConverters() {}

    /**
     * Returns every registered converter, highest priority first.
     *
     * @return the converters
     */
    public static List<LinearConverter> all() {
        List<LinearConverter> list = new ArrayList<>();
        ServiceLoader.load(LinearConverter.class, LinearConverters.class.getClassLoader())
                .forEach(list::add);
        ClassLoader context = Thread.currentThread().getContextClassLoader();
        if (context != null && context != LinearConverters.class.getClassLoader()) {
            for (LinearConverter c : ServiceLoader.load(LinearConverter.class, context)) {
                if (list.stream().noneMatch(e -> e.getClass() == c.getClass())) {
                    list.add(c);
                }
            }
        }
        list.sort(Comparator.comparingInt(LinearConverter::getPriority).reversed());
        return list;
    }

    /**
     * Returns the converter to use for a precision.
     *
     * @param precision the precision
     * @return the supporting converter with the highest priority, if any
     */
    public static Optional<LinearConverter> forPrecision(Precision precision) {
        return all().stream().filter(c -> c.supports(precision)).findFirst();
    }
}
