// Internal interface of the fp32 linear layer: one tile = rows [m0, m0+rows) × one 32-column panel.
#pragma once

#include <cstdint>

#include "tilewise/tilewise_linear_f32.h"

namespace tw {

/// Computes the tile rows [m0, m0 + rows) × columns [32·panel, 32·panel + 32) ∩ [0, n) of p,
/// rows <= kLinearF32Rows, epilogue included.
using LinearF32Tile = void (*)(const tw_f32_linear_params& p, int64_t m0, int rows, int64_t panel);

/// Computes rows [m_begin, m_end) × one panel: a variant whose register tile covers less than the
/// panel sweeps the rows once per part of the panel (the loop nest otherwise calls a
/// LinearF32Tile per kLinearF32Rows rows).
using LinearF32Rows = void (*)(const tw_f32_linear_params& p, int64_t m_begin, int64_t m_end,
                               int64_t panel);

/// Rows per register tile (12 rows × 2 vectors = 24 accumulators of 32 zmm).
constexpr int kLinearF32Rows = 12;

void linear_f32_tile_avx512(const tw_f32_linear_params& p, int64_t m0, int rows, int64_t panel);
/// AVX2: 6-row × 16-column micro-tiles; each 16-column half of the panel (k × 64 bytes) is swept
/// over all the rows so that it stays in L1/L2.
void linear_f32_rows_avx2(const tw_f32_linear_params& p, int64_t m_begin, int64_t m_end,
                          int64_t panel);

}  // namespace tw
