/**
 * Fused attention on NVIDIA GPUs (sm_80 and later; tuned on Hopper) through {@code
 * libtilewise_cuda}: {@link io.github.tilewise.djl.cuda.CudaAttention} on host buffers (copied in
 * and out) or on {@link io.github.tilewise.djl.cuda.DeviceBuffer}s kept on the GPU across calls.
 * Check {@link io.github.tilewise.djl.cuda.CudaAttention#isAvailable()} first: without the library,
 * a driver or a GPU every call throws {@link
 * io.github.tilewise.djl.NativeLibraryUnavailableException} naming the reason.
 */
package io.github.tilewise.djl.cuda;
