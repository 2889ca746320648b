// Per-ISA row functions of the fused LayerNorm (layernorm.cpp validates and dispatches).
#pragma once

#include "tilewise/tilewise_gemm.h"

namespace tw {

/// Normalizes rows [m0, m1) of p (x + residual -> y); arguments already validated.
void layernorm_rows_portable(const tw_layernorm_params& p, int64_t m0, int64_t m1);
void layernorm_rows_avx512(const tw_layernorm_params& p, int64_t m0, int64_t m1);
void layernorm_rows_avx2(const tw_layernorm_params& p, int64_t m0, int64_t m1);

}  // namespace tw
