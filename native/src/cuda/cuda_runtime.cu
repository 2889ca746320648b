// Library services of libtilewise_cuda: error state, device queries and plain device memory for
// callers that have no allocator of their own (the Java binding).
#include <cuda_runtime.h>

#include <cstdio>
#include <mutex>
#include <string>

#include "cuda_status.h"
#include "tilewise/tilewise_cuda.h"

namespace twcuda {
namespace {

thread_local std::string last_error;

struct DeviceProbe {
    int count = 0;
    std::string reason;
};

const DeviceProbe& probe() {
    static DeviceProbe result;
    static std::once_flag once;
    std::call_once(once, [] {
        const cudaError_t e = cudaGetDeviceCount(&result.count);
        if (e != cudaSuccess) {
            result.count = 0;
            result.reason = std::string("no usable CUDA device: cudaGetDeviceCount: ") +
                            cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
            cudaGetLastError();
        } else if (result.count == 0) {
            result.reason = "no CUDA device found";
        }
    });
    return result;
}

}  // namespace

tw_status fail(tw_status status, const std::string& message) {
    last_error = message;
    return status;
}

tw_status ok() {
    last_error.clear();
    return TW_OK;
}

tw_status fail_cuda(cudaError_t error, const char* what) {
    tw_status status = TW_ERR_INTERNAL;
    switch (error) {
        case cudaErrorMemoryAllocation: status = TW_ERR_OUT_OF_MEMORY; break;
        case cudaErrorNoDevice:
        case cudaErrorInsufficientDriver:
        case cudaErrorNoKernelImageForDevice:
        case cudaErrorUnsupportedPtxVersion:
        case cudaErrorInvalidDevice: status = TW_ERR_UNSUPPORTED; break;
        case cudaErrorInvalidValue: status = TW_ERR_INVALID_ARGUMENT; break;
        default: break;
    }
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    return fail(status, std::string(what) + " failed: " + cudaGetErrorName(error) + ": " +
                            cudaGetErrorString(error));
}

tw_status require_device() {
    const DeviceProbe& p = probe();
    if (p.count == 0) return fail(TW_ERR_UNSUPPORTED, p.reason);
    return TW_OK;
}

}  // namespace twcuda

using twcuda::fail;
using twcuda::ok;

extern "C" {

TW_API const char* tw_cuda_last_error(void) {
    return twcuda::last_error.c_str();
}

TW_API tw_status tw_cuda_device_count(int* count) {
    if (count == nullptr) return fail(TW_ERR_INVALID_ARGUMENT, "count is null");
    const auto& p = twcuda::probe();
    *count = p.count;
    if (p.count == 0) return fail(TW_OK, p.reason);  // TW_OK, reason kept for the caller
    return ok();
}

TW_API tw_status tw_cuda_describe_device(int device, char* buf, size_t buf_size) {
    if (buf == nullptr || buf_size == 0) return fail(TW_ERR_INVALID_ARGUMENT, "buffer is empty");
    if (tw_status s = twcuda::require_device()) return s;
    cudaDeviceProp prop;
    TWC_CHECK(cudaGetDeviceProperties(&prop, device));
    std::snprintf(buf, buf_size, "%s (sm_%d%d, %d SMs, %.1f GiB)", prop.name, prop.major,
                  prop.minor, prop.multiProcessorCount,
                  static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
    return ok();
}

TW_API tw_status tw_cuda_set_device(int device) {
    if (tw_status s = twcuda::require_device()) return s;
    TWC_CHECK(cudaSetDevice(device));
    return ok();
}

TW_API tw_status tw_cuda_malloc(void** ptr, size_t bytes) {
    if (ptr == nullptr) return fail(TW_ERR_INVALID_ARGUMENT, "ptr is null");
    *ptr = nullptr;
    if (bytes == 0) return fail(TW_ERR_INVALID_ARGUMENT, "cannot allocate 0 bytes");
    if (tw_status s = twcuda::require_device()) return s;
    TWC_CHECK(cudaMalloc(ptr, bytes));
    return ok();
}

TW_API tw_status tw_cuda_free(void* ptr) {
    if (ptr == nullptr) return ok();
    if (tw_status s = twcuda::require_device()) return s;
    TWC_CHECK(cudaFree(ptr));
    return ok();
}

TW_API tw_status tw_cuda_copy_to_device(void* dst_device, const void* src_host, size_t bytes) {
    if (bytes == 0) return ok();
    if (dst_device == nullptr || src_host == nullptr) {
        return fail(TW_ERR_INVALID_ARGUMENT, "copy with a null pointer");
    }
    if (tw_status s = twcuda::require_device()) return s;
    TWC_CHECK(cudaMemcpy(dst_device, src_host, bytes, cudaMemcpyHostToDevice));
    return ok();
}

TW_API tw_status tw_cuda_copy_to_host(void* dst_host, const void* src_device, size_t bytes) {
    if (bytes == 0) return ok();
    if (dst_host == nullptr || src_device == nullptr) {
        return fail(TW_ERR_INVALID_ARGUMENT, "copy with a null pointer");
    }
    if (tw_status s = twcuda::require_device()) return s;
    TWC_CHECK(cudaMemcpy(dst_host, src_device, bytes, cudaMemcpyDeviceToHost));
    return ok();
}

TW_API tw_status tw_cuda_memset(void* dst_device, int value, size_t bytes) {
    if (bytes == 0) return ok();
    if (dst_device == nullptr) return fail(TW_ERR_INVALID_ARGUMENT, "memset of a null pointer");
    if (tw_status s = twcuda::require_device()) return s;
    TWC_CHECK(cudaMemset(dst_device, value, bytes));
    return ok();
}

TW_API tw_status tw_cuda_synchronize(void) {
    if (tw_status s = twcuda::require_device()) return s;
    TWC_CHECK(cudaDeviceSynchronize());
    return ok();
}

}  // extern "C"
