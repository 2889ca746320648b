/**
 * Fused attention on NVIDIA GPUs (sm_80 and later; tuned on Hopper) through {@code
 * libtilewise_cuda}: {@link io.github.tilewise.djl.cuda.CudaAttention} on FLOAT16 NDArrays (what
 * {@link io.github.tilewise.djl.attention.FusedAttention#forward} runs for GPU arrays; staged
 * through host memory), on host buffers (copied in and out) or on {@link
 * io.github.tilewise.djl.cuda.DeviceBuffer}s kept on the GPU across calls, with DJL's {@link
 * ai.djl.ndarray.types.DataType} and the shared {@link
 * io.github.tilewise.djl.attention.AttentionOptions}. Check {@link
 * io.github.tilewise.djl.cuda.CudaAttention#isAvailable()} first: without the library, a driver or
 * a GPU every call throws {@link io.github.tilewise.djl.NativeLibraryUnavailableException} naming
 * the reason.
 */
package io.github.tilewise.djl.cuda;
