// Error reporting for libtilewise_cuda: a thread-local message behind tw_cuda_last_error(), and
// TWC_CHECK, which turns any failed CUDA runtime call into a tw_status whose message carries the
// call, the CUDA error name and its text.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "tilewise/tilewise.h"

namespace twcuda {

/// Records `message` as this thread's last error and returns `status`.
tw_status fail(tw_status status, const std::string& message);

/// Clears this thread's last error and returns TW_OK.
tw_status ok();

/// Maps a CUDA error to a status and records "<what>: <cudaErrorName>: <text>".
tw_status fail_cuda(cudaError_t error, const char* what);

/// TW_OK if a CUDA device can be used, else TW_ERR_UNSUPPORTED with the reason (checked once).
tw_status require_device();

}  // namespace twcuda

#define TWC_CHECK(call)                                                             \
    do {                                                                            \
        const cudaError_t twc_error_ = (call);                                      \
        if (twc_error_ != cudaSuccess) return twcuda::fail_cuda(twc_error_, #call); \
    } while (0)
