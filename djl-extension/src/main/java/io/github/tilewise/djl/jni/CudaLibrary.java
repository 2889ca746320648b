package io.github.tilewise.djl.jni;

import io.github.tilewise.djl.NativeLibraryUnavailableException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Finds and loads {@code libtilewise_cuda} once per JVM, optionally: the CUDA kernels live in a
 * library of their own so that {@code libtilewise} never needs a GPU stack.
 *
 * <p>The library is taken from {@code -Dtilewise.cuda.library=<path>} if set, else from the {@code
 * tilewise-native} jar ({@code native/linux-x86_64/libtilewise_cuda.so}, present when the jar was
 * built where {@code nvcc} exists), copied to {@code <tilewise.cache.dir>/<content hash>/} like
 * {@link LibUtils} does for the CPU library. The CUDA runtime is linked into it statically, so it
 * loads without a driver; {@link #isAvailable()} is then false and {@link #unavailableReason()}
 * says why (no library, no driver, no GPU). Nothing here throws during class initialisation.
 */
public final class CudaLibrary {

    private static final Logger logger = Logger.getLogger(CudaLibrary.class.getName());
    private static final String LIB_NAME = "libtilewise_cuda.so";

    private static final String failure;

    static {
        failure = load();
        if (failure != null) {
            logger.log(Level.FINE, "Tilewise CUDA kernels unavailable: {0}", failure);
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
        String os = System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(java.util.Locale.ROOT);
        String explicit = System.getProperty("tilewise.cuda.library");
        try {
            Path path;
            if (explicit != null && !explicit.isBlank()) {
                path = Paths.get(explicit.trim());
                if (!Files.isRegularFile(path)) {
                    return "-Dtilewise.cuda.library=" + explicit + " is not a file";
                }
            } else if (!os.startsWith("linux")
                    || !("amd64".equals(arch) || "x86_64".equals(arch))) {
                return "no CUDA build for " + os + "/" + arch;
            } else {
                path = extract("/native/linux-x86_64/" + LIB_NAME);
                if (path == null) {
                    return LIB_NAME + " is not in the tilewise-native jar (built without nvcc)";
                }
            }
            System.load(path.toAbsolutePath().toString());
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

    /** Copies the resource into the cache, once per content; null if the resource is absent. */
    private static Path extract(String resource) throws IOException {
        byte[] bytes;
        try (InputStream in = CudaLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                return null;
            }
            bytes = in.readAllBytes();
        }
        String configured = System.getProperty("tilewise.cache.dir");
        Path cache =
                configured != null && !configured.isBlank()
                        ? Paths.get(configured)
                        : Paths.get(System.getProperty("user.home"), ".tilewise", "cache");
        Path dir = cache.resolve(sha256(bytes).substring(0, 16));
        Path target = dir.resolve(LIB_NAME);
        if (Files.isRegularFile(target) && Files.size(target) == bytes.length) {
            return target;
        }
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, LIB_NAME, ".tmp");
        try {
            Files.write(tmp, bytes);
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
        return target;
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
