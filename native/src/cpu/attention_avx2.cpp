// Fused attention, AVX2 + FMA variant. (Placeholder: the portable kernel until the AVX2 tiles land.)
#include "attention_kernels.h"

namespace tw {
tw_status attention_avx2(const tw_attention_params& p) { return attention_portable(p); }
}  // namespace tw
