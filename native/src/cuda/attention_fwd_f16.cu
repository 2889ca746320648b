// fp16 instantiations of the attention forward kernel (a file per dtype so they compile in
// parallel).
#include "attention_fwd_launch.cuh"

namespace twcuda {
tw_status launch_attention_fwd_f16(const AttentionArgs& args, int head_dim, FwdConfig config,
                                   int q_heads, int batch, cudaStream_t stream) {
    return launch_attention_fwd<__half>(args, head_dim, config, q_heads, batch, stream);
}
}  // namespace twcuda
