/**
 * Loading of {@code libtilewise} and {@code libtilewise_cuda} and their JNI entry points. Internal:
 * use the public operators in the other packages.
 *
 * <p>{@link io.github.tilewise.djl.jni.LibUtils} (CPU) and {@link
 * io.github.tilewise.djl.jni.CudaLibrary} (GPU) load their library once per JVM through one helper,
 * {@code NativeLibraryLoader}: extracted from the jar into a private cache, checked against the
 * jar's SHA-256 before every load, never through a symbolic link. Both say the same things the same
 * way: {@code isAvailable()}, {@code unavailableReason()}, and {@code requireLoaded()}, which
 * throws {@link io.github.tilewise.djl.NativeLibraryUnavailableException} naming the reason.
 */
package io.github.tilewise.djl.jni;
