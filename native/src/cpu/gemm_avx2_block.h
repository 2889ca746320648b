// The AVX2 linear kernels' loop nest over one block of rows and panels, shared by the int8 and
// 16-bit AVX2 files: a macro (not a function) so each expands with its own file's ISA flags.
#pragma once

// Loop nests: panels outer, the two 16-column halves, then row micro-tiles (leftover rows last).
#define TW_AVX2_BLOCK(NAME, TILE, ROWS)                                            \
    void NAME(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1) { \
        for (int64_t p = p0; p < p1; ++p) {                                        \
            for (int half = 0; half < 2; ++half) {                                 \
                if (p * kPanel + half * 16 >= a.w->n) break;                       \
                int64_t m = m0;                                                    \
                for (; m + ROWS <= m1; m += ROWS) TILE<ROWS>(a, m, p, half);       \
                switch (m1 - m) {                                                  \
                    case 1: TILE<1>(a, m, p, half); break;                         \
                    case 2: TILE<(ROWS > 2 ? 2 : 1)>(a, m, p, half); break;        \
                    case 3: TILE<(ROWS > 3 ? 3 : 1)>(a, m, p, half); break;        \
                    case 4: TILE<(ROWS > 4 ? 4 : 1)>(a, m, p, half); break;        \
                    case 5: TILE<(ROWS > 5 ? 5 : 1)>(a, m, p, half); break;        \
                    default: break;                                                \
                }                                                                  \
            }                                                                      \
        }                                                                          \
    }
