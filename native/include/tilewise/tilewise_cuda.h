/*
 * Tilewise CUDA C ABI (libtilewise_cuda).
 *
 * The GPU twin of the fused attention in tilewise.h, in a library of its own so that libtilewise
 * never needs a CUDA runtime to load. Same style: plain device pointers, shapes, element strides,
 * a stream, and a tw_status; on failure tw_cuda_last_error() returns a thread-local message that
 * names the problem and, for a failed CUDA call, carries the CUDA error name and text.
 *
 * The CUDA runtime is linked statically: the library needs only the driver (libcuda.so.1) at
 * run time, and without a driver or a GPU every call returns TW_ERR_UNSUPPORTED instead of
 * failing to load.
 */
#ifndef TILEWISE_TILEWISE_CUDA_H
#define TILEWISE_TILEWISE_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "tilewise/tilewise.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- library ------------------------------------------------------------------------------ */

/** The message of the last failed call on this thread ("" if none). Valid until the next call. */
TW_API const char* tw_cuda_last_error(void);

/**
 * Number of CUDA devices usable by this library. No driver or no GPU gives 0 and TW_OK; the
 * reason is then in tw_cuda_last_error().
 */
TW_API tw_status tw_cuda_device_count(int* count);

/** Name and compute capability of `device`, e.g. "NVIDIA H200 (sm_90)", into buf (NUL-terminated).
 */
TW_API tw_status tw_cuda_describe_device(int device, char* buf, size_t buf_size);

/** Makes `device` current for this thread's later calls. */
TW_API tw_status tw_cuda_set_device(int device);

/* ---- device memory (for callers without their own allocator, e.g. Java) ------------------- */

TW_API tw_status tw_cuda_malloc(void** ptr, size_t bytes);
TW_API tw_status tw_cuda_free(void* ptr);
/** Copies host -> device; synchronous with respect to the host. */
TW_API tw_status tw_cuda_copy_to_device(void* dst_device, const void* src_host, size_t bytes);
/** Copies device -> host; waits for the copy (and all earlier work on the default stream). */
TW_API tw_status tw_cuda_copy_to_host(void* dst_host, const void* src_device, size_t bytes);
/** Fills device memory with a byte value. */
TW_API tw_status tw_cuda_memset(void* dst_device, int value, size_t bytes);
/** Waits for all work on the current device. */
TW_API tw_status tw_cuda_synchronize(void);

/* ---- fused attention ---------------------------------------------------------------------- */

/*
 * O = softmax(scale * Q K^T + mask) V on the GPU, FlashAttention-2 style: each thread block owns
 * a tile of query rows, streams key/value tiles through shared memory and keeps the running
 * softmax in registers; the q_len x kv_len score matrix is never written to memory. Tensor cores
 * through mma.sync on sm_80 and later, through wgmma on Hopper (compute capability 9.x).
 *
 * Tensors are device memory addressed as [batch, head, seq, dim] through element strides (dim
 * stride 1), so [B, H, S, D] and [B, S, H, D] both work without copies. Rows are read 16 bytes at
 * a time: pointers must be 16-byte aligned and every stride a multiple of 8 elements.
 * kv_heads must divide q_heads (grouped-query attention): query head h reads K/V head
 * h / (q_heads / kv_heads).
 *
 * Masking, optional and combined (same meaning as tw_attention_forward):
 *  - causal: query i sees key j iff j <= i + (kv_len - q_len) (bottom-right aligned); key tiles
 *    a query tile cannot see are skipped.
 *  - kv_valid_lengths[b] (device memory, int32, clamped to [0, kv_len]): keys j >= the length
 *    are masked and tiles past it are skipped, so padded batches cost what their real lengths do.
 * A query row whose keys are all masked gets zeros (and lse = -INFINITY), never NaN.
 *
 * The call is asynchronous on `stream` (NULL: the legacy default stream); launch errors are
 * reported, errors of the running kernel surface at the next synchronising call.
 */
typedef struct tw_cuda_attention_params {
    tw_dtype dtype; /* of q, k, v and o: TW_F16 or TW_BF16; accumulation is fp32 */
    int64_t batch, q_heads, kv_heads, q_len, kv_len, head_dim;
    const void* q; /* device pointers */
    const void* k;
    const void* v;
    void* o;
    int64_t q_strides[3]; /* batch, head, seq strides in elements */
    int64_t k_strides[3];
    int64_t v_strides[3];
    int64_t o_strides[3];
    float scale; /* usually 1/sqrt(head_dim); positive and finite */
    int causal;
    const int32_t* kv_valid_lengths; /* device [batch] or NULL */
    float* lse;   /* device [batch, q_heads, q_len] natural-log log-sum-exp of the scaled scores, or
                     NULL */
    void* stream; /* cudaStream_t, or NULL */
} tw_cuda_attention_params;

/** Head dimensions the CUDA attention supports. */
#define TW_CUDA_ATTENTION_HEAD_DIMS \
    { 64, 128 }

TW_API tw_status tw_cuda_attention_forward(const tw_cuda_attention_params* p);

/**
 * Selects the kernel of later attention calls, for benchmarks and tests only: 0 = automatic
 * (default: on compute capability 9.x config 6, else config 2), 1 = sm80, 4 warps x 16 query
 * rows, 2 = sm80, 4 warps x 32 query rows, 3 = sm90a wgmma, 2 warpgroups per block, 4 = sm90a
 * wgmma, 1 warpgroup per block, 5 = sm90a wgmma, 1 warpgroup per block with single K and V
 * buffers, 6 = sm90a warp-specialised (FlashAttention-3 structure: TMA producer, 2 consumer
 * warpgroups in ping-pong, intra-warpgroup overlap; tensors with a zero stride run config 4 or 5
 * instead) (3-6 need compute capability 9.x: TW_ERR_UNSUPPORTED elsewhere). Process-wide;
 * TW_ERR_INVALID_ARGUMENT for other values.
 */
TW_API tw_status tw_cuda_attention_set_config(int config);

#ifdef __cplusplus
}
#endif

#endif /* TILEWISE_TILEWISE_CUDA_H */
