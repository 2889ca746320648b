package io.github.tilewise.djl.jni;

import io.github.tilewise.djl.NativeLibraryUnavailableException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds and loads {@code libtilewise_cuda} once per JVM, optionally: the CUDA kernels live in a
 * library of their own so that {@code libtilewise} never needs a GPU stack.
 *
 * <p>The library comes from the {@code tilewise-native} jar ({@code
 * native/<os>-<arch>/libtilewise_cuda.so}, present when the jar was built where {@code nvcc}
 * exists), extracted, verified against the jar's SHA-256 and loaded by {@link NativeLibraryLoader}
 * exactly as {@link LibUtils} does for the CPU library. {@code -Dtilewise.cuda.library=<path>}
 * loads the file at that path instead; it is the user's explicit choice, so it is trusted as is (no
 * hash, no cache). The CUDA runtime is linked into the library statically, so it loads without a
 * driver; {@link #isAvailable()} is then false and {@link #unavailableReason()} says why (no
 * library, no driver, no GPU). Nothing here throws during class initialisation.
 */
public final class CudaLibrary {

    private static final Logger logger = LoggerFactory.getLogger(CudaLibrary.class);
    private static final String LIB_NAME = "libtilewise_cuda.so";

    private static final String failure;

    static {
        failure = load();
        if (failure != null) {
            // No GPU is the common case, not a problem worth a warning.
            logger.debug("Tilewise CUDA kernels unavailable: {}", failure);
        }
    }

    private CudaLibrary() {}

    /**
     * Returns whether the CUDA library is loaded and a CUDA device is usable.
     *
     * @return true if {@link #requireLoaded()} succeeds
     */
    public static boolean isAvailable() {
        return failure == null;
    }

    /**
     * Returns why the CUDA kernels cannot be used.
     *
     * @return the reason, or null if they can
     */
    public static String unavailableReason() {
        return failure;
    }

    /**
     * Returns the JNI entry points, or throws if the library or a device is missing.
     *
     * @return the entry points
     * @throws NativeLibraryUnavailableException naming the reason
     */
    public static CudaNative requireLoaded() {
        if (failure != null) {
            throw new NativeLibraryUnavailableException(
                    "Tilewise CUDA kernels are unavailable: " + failure);
        }
        return CudaNative.INSTANCE;
    }

    /** Returns null on success, else the reason. */
    private static String load() {
        if (!Boolean.parseBoolean(System.getProperty("tilewise.cuda", "true"))) {
            return "disabled by -Dtilewise.cuda=false";
        }
        String explicit = System.getProperty("tilewise.cuda.library");
        String platform = NativeLibraryLoader.platform();
        try {
            if (explicit != null && !explicit.isBlank()) {
                Path path = Paths.get(explicit.trim()).toAbsolutePath();
                if (!Files.isRegularFile(path)) {
                    return "-Dtilewise.cuda.library=" + explicit + " is not a file";
                }
                System.load(path.toString());
            } else if (NativeLibraryLoader.load("/native/" + platform + "/" + LIB_NAME) == null) {
                return LIB_NAME
                        + " for "
                        + platform
                        + " is not in the tilewise-native jar (built where nvcc or an NVIDIA"
                        + " driver was missing; -Dtilewise.cuda.build=ON builds it with nvcc"
                        + " alone)";
            }
        } catch (IOException | UnsatisfiedLinkError | SecurityException e) {
            return "loading " + LIB_NAME + " failed: " + e;
        }
        try {
            if (CudaNative.INSTANCE.deviceCount() == 0) {
                return CudaNative.INSTANCE.noDeviceReason();
            }
        } catch (RuntimeException | UnsatisfiedLinkError e) {
            return "querying CUDA devices failed: " + e;
        }
        return null;
    }
}
