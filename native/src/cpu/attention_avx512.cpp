// Fused attention, AVX-512 variant. (Placeholder: the portable kernel until the AVX-512 tiles land.)
#include "attention_kernels.h"

namespace tw {
tw_status attention_avx512(const tw_attention_params& p) { return attention_portable(p); }
}  // namespace tw
