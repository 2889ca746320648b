package io.github.tilewise.djl;

/**
 * Thrown when a call needs a Tilewise native library ({@code libtilewise} or {@code
 * libtilewise_cuda}) that is not loaded here. The message names the reason (no build for this
 * platform, disabled by a system property, no GPU, a cache directory that cannot be trusted, ...).
 *
 * <p>It is an {@link IllegalStateException}: the call is valid, this process just cannot run it.
 * Check {@link Tilewise#isNativeAvailable()} or {@code CudaAttention.isAvailable()} first to choose
 * another path instead of catching it.
 */
public class NativeLibraryUnavailableException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is missing and why
     */
    public NativeLibraryUnavailableException(String message) {
        super(message);
    }
}
