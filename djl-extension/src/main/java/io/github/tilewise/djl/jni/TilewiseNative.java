package io.github.tilewise.djl.jni;

/**
 * The JNI entry points of {@code libtilewise}. Every method validates its arguments again on the
 * native side and reports failures as Java exceptions ({@link IllegalArgumentException} for bad
 * arguments, {@link UnsupportedOperationException} for what this CPU or build cannot run, {@link
 * OutOfMemoryError}, {@link IllegalStateException} otherwise).
 *
 * <p>Obtain the instance from {@link LibUtils#requireLoaded()}, which guarantees the library is
 * loaded: the methods are instance methods so that no caller can reach them before that.
 */
public final class TilewiseNative {

    static final TilewiseNative INSTANCE = new TilewiseNative();

    private TilewiseNative() {}

    /**
     * Returns the library version.
     *
     * @return "major.minor.patch"
     */
    public native String version();

    /**
     * Returns the CPU feature bits (TW_CPU_* in tilewise.h).
     *
     * @return the bit mask
     */
    public native int cpuFeatures();

    /**
     * Returns the names of the CPU features the kernels care about, space separated.
     *
     * @return e.g. "avx2 fma f16c avx512f avx512_vnni avx512_bf16"
     */
    public native String describeCpu();

    /**
     * Returns the widest ISA level (0 portable, 1 AVX2, 2 AVX-512) of this CPU.
     *
     * @return the level
     */
    public native int isaDetected();

    /**
     * Returns the ISA level kernels use now.
     *
     * @return the level
     */
    public native int isaActive();

    /**
     * Selects the ISA level.
     *
     * @param isa 0 portable, 1 AVX2, 2 AVX-512
     */
    public native void setIsa(int isa);

    /**
     * Sets the worker-thread count (the caller included); 0 or less means all cores.
     *
     * @param threads the count
     */
    public native void setNumThreads(int threads);

    /**
     * Returns the worker-thread count.
     *
     * @return the count
     */
    public native int numThreads();

    /**
     * Asks the C library (glibc's {@code mallopt}) to serve blocks up to {@code bytes} from its
     * heap and to keep up to {@code bytes} of freed heap mapped, so that per-call activations reuse
     * memory instead of page-faulting on fresh pages.
     *
     * @param bytes the threshold in bytes (positive)
     * @return true if applied, false where the C library does not support it
     */
    public native boolean retainFreedMemory(int bytes);

    /**
     * Returns the free memory the C library holds to the operating system (glibc's {@code
     * malloc_trim}).
     *
     * @return true if memory was released, false if none was or the C library cannot
     */
    public native boolean releaseFreedMemory();
}
