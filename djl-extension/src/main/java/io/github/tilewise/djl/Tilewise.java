package io.github.tilewise.djl;

import io.github.tilewise.djl.jni.LibUtils;
import io.github.tilewise.djl.jni.TilewiseNative;
import java.util.Locale;

/**
 * Facts about the native library and the CPU it runs on, and the few global settings.
 *
 * <p>System properties read when the library loads:
 *
 * <ul>
 *   <li>{@code tilewise.native} ({@code true}): {@code false} skips the native library; every
 *       operator then runs its DJL reference implementation.
 *   <li>{@code tilewise.isa} ({@code auto}): {@code portable}, {@code avx2} or {@code avx512} caps
 *       the instruction set the kernels use, so every variant can be tested on one machine.
 *   <li>{@code tilewise.threads} (the available cores): worker threads for native kernels.
 *   <li>{@code tilewise.cache.dir} ({@code ~/.tilewise/cache}): where the library is extracted; it
 *       must be writable only by this user, and a cached copy is loaded only if its SHA-256 matches
 *       the jar's.
 * </ul>
 */
public final class Tilewise {

    private Tilewise() {}

    /** Instruction-set levels of the native kernels, from the most portable to the widest. */
    public enum Isa {
        /** Plain C++, any CPU. */
        PORTABLE,
        /** AVX2 + FMA + F16C, using AVX-VNNI where present. */
        AVX2,
        /** AVX-512 F/BW/VL/DQ, using VNNI and BF16 where present. */
        AVX512;

        /**
         * Parses {@code portable}, {@code avx2} or {@code avx512} (any case).
         *
         * @param name the level's name
         * @return the level
         * @throws IllegalArgumentException if the name is none of these
         */
        public static Isa fromName(String name) {
            try {
                return valueOf(name.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(
                        "Unknown ISA '" + name + "': expected portable, avx2 or avx512", e);
            }
        }
    }

    /**
     * Returns whether the native library is loaded; when it is not, operators use their DJL
     * reference implementations.
     *
     * @return true if native kernels are available
     */
    public static boolean isNativeAvailable() {
        return LibUtils.isAvailable();
    }

    /**
     * Returns the widest instruction-set level the CPU supports.
     *
     * @return the detected level
     * @throws NativeLibraryUnavailableException if the native library is not loaded
     */
    public static Isa detectedIsa() {
        return Isa.values()[requireNative().isaDetected()];
    }

    /**
     * Returns the instruction-set level native kernels use now.
     *
     * @return the active level
     * @throws NativeLibraryUnavailableException if the native library is not loaded
     */
    public static Isa activeIsa() {
        return Isa.values()[requireNative().isaActive()];
    }

    /**
     * Selects the instruction-set level for all native kernels (for tests and benchmarks).
     *
     * @param isa the level
     * @throws UnsupportedOperationException if this CPU cannot run it
     * @throws NativeLibraryUnavailableException if the native library is not loaded
     */
    public static void setIsa(Isa isa) {
        requireNative().setIsa(isa.ordinal());
    }

    /**
     * Sets the number of native worker threads, the calling thread included.
     *
     * @param threads the count; 0 or less means all available cores
     * @throws NativeLibraryUnavailableException if the native library is not loaded
     */
    public static void setNumThreads(int threads) {
        requireNative().setNumThreads(threads);
    }

    /**
     * Returns the number of native worker threads.
     *
     * @return the count
     */
    public static int getNumThreads() {
        return requireNative().numThreads();
    }

    /**
     * Returns the free memory the C allocator keeps (freed model weights and activations, PyTorch's
     * and Tilewise's alike) to the operating system, for example after closing a model. Process
     * wide; glibc's {@code malloc_trim}. Without the native library, or on another C library, it
     * does nothing.
     *
     * @return true if memory was released
     */
    public static boolean releaseFreedMemory() {
        return isNativeAvailable() && requireNative().releaseFreedMemory();
    }

    /**
     * Returns a one-line description of the native library and CPU, for logs.
     *
     * @return the description
     */
    public static String describe() {
        if (!isNativeAvailable()) {
            return "Tilewise native library not loaded (" + LibUtils.unavailableReason() + ")";
        }
        return "Tilewise "
                + requireNative().version()
                + " isa="
                + activeIsa().name().toLowerCase(Locale.ROOT)
                + " detected="
                + detectedIsa().name().toLowerCase(Locale.ROOT)
                + " threads="
                + getNumThreads()
                + " cpu="
                + requireNative().describeCpu();
    }

    private static TilewiseNative requireNative() {
        return LibUtils.requireLoaded();
    }
}
