package io.github.tilewise.djl.encoder;

/** Exposes {@link NaiveBert}'s float64 erf to tests in other packages. */
public final class NaiveBertAccess {

    private NaiveBertAccess() {}

    /**
     * Returns erf(x) with fractional error below 1.2e-7.
     *
     * @param x the argument
     * @return erf(x)
     */
    public static double erf(double x) {
        return NaiveBert.erf(x);
    }
}
