// Row-count dispatch for register tiles that take their row count as a template argument.
// Templates only: every instantiation is made in the including (ISA) file with its own lambda.
#pragma once

#include <cstdint>
#include <type_traits>

namespace tw {

/// Calls tile(std::integral_constant<int, R>{}) for R = rows when 1 <= rows <= kMax.
template <int kMax, typename Tile>
__attribute__((always_inline)) inline void with_rows_upto(int64_t rows, Tile&& tile) {
    if constexpr (kMax >= 1) {
        if (rows == kMax) {
            tile(std::integral_constant<int, kMax>{});
            return;
        }
        with_rows_upto<kMax - 1>(rows, tile);
    }
}

}  // namespace tw
