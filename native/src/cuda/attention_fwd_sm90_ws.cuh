// Hopper (sm_90a) forward kernel in FlashAttention-3's structure: warp specialisation with a TMA
// producer, mbarrier pipelines, two consumer warpgroups scheduled in ping-pong, and the
// intra-warpgroup overlap of S_(t+1) = Q K_(t+1)^T with the softmax of tile t. Same math as
// attention_fwd_sm80.cuh (online softmax, log2 domain) and the same wgmma operand layouts as
// attention_fwd_sm90.cuh (128-byte-swizzled 64-column blocks, P from registers, V read N-major).
//
// Work items: a 128-row block of queries of one (batch, head). Persistent blocks, one per SM, take
// the items in pairs (2c, 2c + 1) for c = blockIdx.x, blockIdx.x + gridDim.x, ...; the K/V ring
// and the two Q slots carry over, so the next item's loads overlap this item's last tiles and
// epilogue (no block launch, no pipeline refill between items).
//
// Roles in a block of 3 warpgroups (384 threads, one block per SM):
//   warpgroup 0, the producer: drops to kProducerRegs registers (setmaxnreg); one thread issues
//     cp.async.bulk.tensor (TMA) copies of Q (per item, once its "Q empty" mbarrier says both
//     consumers are done with the previous Q) and of K_t, V_t into kStages ring slots; each copy
//     completes on its "full" mbarrier (arrive.expect_tx + complete_tx bytes). Before refilling a
//     slot it waits on the slot's "empty" mbarrier. Its other three warps exit.
//   warpgroups 1 and 2, the consumers: raise their limit to kConsumerRegs registers; each owns 64
//     query rows. They wait on "full", issue wgmma, and each of their 8 warps arrives on "empty"
//     once its wgmma reading the slot has completed. No block-wide barrier after the prologue.
// Ping-pong: the two consumers take turns issuing their GEMMs through two named barriers (bar.sync
// on "my turn", bar.arrive on "your turn", 256 threads each), so one warpgroup's softmax runs
// while the other's GEMMs occupy the tensor cores.
// Intra-warpgroup overlap: in turn t a consumer issues S_t = Q K_t^T, rescales O by tile t-1's
// factor, issues O += P_(t-1) V_(t-1), and computes the softmax of S_t while that P V still
// runs; P_t is packed into the A-operand registers only after P V_(t-1) completed.
//
// Key padding (kv_valid_lengths): keys at or past a sequence's valid length are masked to -inf in
// S, but V rows there still meet P = 0 in P V, and 0 * NaN would poison O; so the one V tile that
// straddles the valid length (only when it is shorter than kv_len) is copied by the producer
// warp with cp.async zero-fill instead of TMA. Rows past kv_len and q_len are zero-filled by TMA.
#pragma once

// CUtensorMap (the type only: maps are encoded through the runtime's driver entry point).
#include <cuda.h>

#include "attention_fwd_sm90.cuh"

namespace twcuda {

template <typename T, int kHeadDim_, int kBlockN_, int kStages_, int kQSlots_>
struct Sm90WsTile {
    using Element = T;
    static constexpr int kHeadDim = kHeadDim_;
    static constexpr int kConsumers = 2;  // consumer warpgroups of 64 query rows
    static constexpr int kThreads = 128 * (1 + kConsumers);
    static constexpr int kBlockM = 64 * kConsumers;
    // Keys per tile: the wgmma N of Q K^T; S takes kBlockN / 2 fp32 registers per thread.
    static constexpr int kBlockN = kBlockN_;
    // Ring slots for K and for V (each slot one [kBlockN, D] tile).
    static constexpr int kStages = kStages_;
    // Q buffers: with two, a block's next work item's Q loads while this item still runs.
    static constexpr int kQSlots = kQSlots_;
    static constexpr int kChunks = kHeadDim / 8;
    static constexpr int kColBlocks = kHeadDim / 64;  // TMA boxes per tile (128-byte inner box)
    static constexpr int kTileBytes = kBlockN * kHeadDim * static_cast<int>(sizeof(T));
    static constexpr int kQBytes = kBlockM * kHeadDim * static_cast<int>(sizeof(T));
    // The block's 384 x 168 = 64512 registers, redistributed: 128 * 24 + 256 * 240
    // (FlashAttention-3's split). The producer needs few (addresses, loop counters: ptxas spills
    // one 4-byte value of its per-item loop, none with 32 and consumers at 232); the consumers
    // hold O (D / 2), S (kBlockN / 2) and P (kBlockN / 4) fp32/packed registers.
    static constexpr int kProducerRegs = 24;
    static constexpr int kConsumerRegs = 240;
    // mbarriers (8 bytes each): Q full and Q empty per Q slot, then K full, V full, K empty,
    // V empty per ring slot.
    static constexpr int kBarrierBytes = 8 * (2 * kQSlots + 4 * kStages);
    // Q slots, K slots, V slots, barriers; 1024 bytes of slack to align the base for the swizzle.
    static constexpr int kSmemBytes =
        kQSlots * kQBytes + 2 * kStages * kTileBytes + kBarrierBytes + 1024;
    static_assert(kHeadDim % 64 == 0, "column blocks of 64");
    static_assert(kBlockN % 16 == 0 && kBlockN >= 64 && kBlockN <= 192,
                  "wgmma N, k16 steps of P V");
    static_assert(kSmemBytes <= 227 * 1024, "shared memory per block");
};

namespace sm90 {

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
/// Makes the barrier initialisation visible to the async proxy (TMA) and the other threads.
__device__ __forceinline__ void fence_barrier_init() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
/// One arrival that also announces `bytes` of TMA transactions for the current phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
/// Waits until the phase of the given parity has completed (a fresh barrier counts its phase
/// "parity 1" as completed, which lets producers skip the first wait on an empty slot).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    uint32_t done;
    do {
        asm volatile(
            "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
            "selp.u32 %0, 1, 0, p;\n}\n"
            : "=r"(done)
            : "r"(bar), "r"(parity)
            : "memory");
    } while (done == 0);
}

/// TMA copy of one box of a 4-d tensor map (coordinates innermost first) into shared memory,
/// completing `bar`'s transaction count.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                            int c0, int c1, int c2, int c3) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%3, %4, %5, %6}], [%2];\n" ::"r"(dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
        : "memory");
}

__device__ __forceinline__ void named_sync(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_arrive(int id, int threads) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

template <int kRegs>
__device__ __forceinline__ void setmaxnreg_dec() {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_inc() {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// Named barrier ids (0 is __syncthreads): the consumers' turns (kTurnBarrier + consumer index).
constexpr int kTurnBarrier = 1;

}  // namespace sm90

/// One work item of the persistent kernel: a block of BM query rows of one (batch, head), the
/// K/V range it needs, and whether its key tiles need masking.
struct WsWorkItem {
    int m0, h, hk, b;
    int kv_end;      // keys >= kv_end are padding (per-sequence valid length)
    int n_tiles;     // key tiles to visit (causal: up to the diagonal)
    int n_unmasked;  // tiles before this one need no mask
};

template <int BM, int BN>
__device__ __forceinline__ WsWorkItem ws_work_item(const AttentionArgs& args, int item) {
    // Items run (batch, head)-major so that blocks working at the same time share K/V in L2.
    // A block takes items in pairs (2c, 2c + 1); with a causal mask each head's m-blocks are
    // ordered longest, shortest, second longest, second shortest, ... so that every pair holds
    // about the same number of key tiles and the blocks stay balanced.
    const int r = item % args.num_m_blocks;
    const int bh = item / args.num_m_blocks;
    WsWorkItem w;
    w.m0 = (args.causal ? ((r & 1) ? r >> 1 : args.num_m_blocks - 1 - (r >> 1)) : r) * BM;
    w.h = bh % args.q_heads;
    w.b = bh / args.q_heads;
    w.hk = w.h / args.group;
    w.kv_end = args.kv_len;
    if (args.kv_valid_lengths != nullptr) {
        w.kv_end = min(max(args.kv_valid_lengths[w.b], 0), args.kv_len);
    }
    const int causal_offset = args.kv_len - args.q_len;
    int n_end = w.kv_end;
    int n_full = w.kv_end;
    if (args.causal) {
        n_end = min(n_end, max(w.m0 + BM + causal_offset, 0));
        n_full = min(n_full, max(w.m0 + causal_offset + 1, 0));
    }
    w.n_tiles = (n_end + BN - 1) / BN;
    w.n_unmasked = min(n_full / BN, w.n_tiles);
    return w;
}

template <typename T, typename Tile>
__global__ void __launch_bounds__(Tile::kThreads, 1)
    attention_fwd_sm90_ws_kernel(const AttentionArgs args, const int num_items,
                                 const __grid_constant__ CUtensorMap tm_q,
                                 const __grid_constant__ CUtensorMap tm_k,
                                 const __grid_constant__ CUtensorMap tm_v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using namespace sm90;
    constexpr int D = Tile::kHeadDim;
    constexpr int BM = Tile::kBlockM;
    constexpr int BN = Tile::kBlockN;
    constexpr int kStages = Tile::kStages;
    constexpr int kChunks = Tile::kChunks;
    constexpr int kKSteps = D / 16;
    constexpr int kSTiles = BN / 8;
    constexpr int kOTiles = D / 8;
    constexpr int kPVSteps = BN / 16;
    constexpr int kConsumerWarps = 4 * Tile::kConsumers;

    extern __shared__ __align__(128) unsigned char smem_raw[];
    const uint32_t raw_addr = smem_addr(smem_raw);
    const uint32_t base = (raw_addr + 1023) & ~1023u;
    constexpr int kQSlots = Tile::kQSlots;
    const uint32_t kv_base = base + kQSlots * Tile::kQBytes;
    auto q_addr = [&](int s) { return base + s * Tile::kQBytes; };
    auto k_addr = [&](int s) { return kv_base + s * Tile::kTileBytes; };
    auto v_addr = [&](int s) { return kv_base + (kStages + s) * Tile::kTileBytes; };
    const uint32_t bars = kv_base + 2 * kStages * Tile::kTileBytes;
    auto q_full = [&](int s) { return bars + 8 * s; };
    auto q_empty = [&](int s) { return bars + 8 * (kQSlots + s); };
    const uint32_t kv_bars = bars + 16 * kQSlots;
    auto k_full = [&](int s) { return kv_bars + 8 * s; };
    auto v_full = [&](int s) { return kv_bars + 8 * (kStages + s); };
    auto k_empty = [&](int s) { return kv_bars + 8 * (2 * kStages + s); };
    auto v_empty = [&](int s) { return kv_bars + 8 * (3 * kStages + s); };
    // A block visits items in pairs: chunk c = blockIdx.x, blockIdx.x + gridDim.x, ... covers
    // items 2c and 2c + 1 (see ws_work_item); `visit` is the running count of items it took.
    auto item_of = [&](int visit) {
        return 2 * (blockIdx.x + (visit >> 1) * gridDim.x) + (visit & 1);
    };

    const int tid = threadIdx.x;
    const int lane = tid & 31;
    // Warp-uniform role (a shuffle makes the compiler see it as uniform, keeping setmaxnreg and
    // the warpgroup-collective wgmma in uniform branches).
    const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);

    if (tid == 0) {
        for (int s = 0; s < kQSlots; ++s) {
            mbar_init(q_full(s), 1);  // the producer's arrive.expect_tx (+ the TMA bytes)
            mbar_init(q_empty(s), kConsumerWarps);  // one arrival per consumer warp
        }
        for (int s = 0; s < kStages; ++s) {
            mbar_init(k_full(s), 1);
            mbar_init(v_full(s), 1);
            mbar_init(k_empty(s), kConsumerWarps);
            mbar_init(v_empty(s), kConsumerWarps);
        }
        fence_barrier_init();
    }
    __syncthreads();

    if (wg == 0) {
        // ---- producer ----------------------------------------------------------------------
        setmaxnreg_dec<Tile::kProducerRegs>();
        if (tid >= 32) return;
        int slot_iter = 0;  // K/V tiles loaded so far: ring slot and phase run across items
        for (int visit = 0; item_of(visit) < num_items; ++visit) {
            const WsWorkItem w = ws_work_item<BM, BN>(args, item_of(visit));
            if (lane == 0) {
                // A Q slot is free once both consumers finished the last S of its previous item.
                const int qs = visit % kQSlots;
                mbar_wait(q_empty(qs), ((visit / kQSlots) & 1) ^ 1);
                mbar_arrive_expect_tx(q_full(qs), Tile::kQBytes);
#pragma unroll
                for (int cb = 0; cb < Tile::kColBlocks; ++cb) {
                    tma_load_4d(q_addr(qs) + cb * BM * 128, &tm_q, q_full(qs), cb * 64, w.m0, w.h,
                                w.b);
                }
            }
            const bool zero_fill_v = args.kv_valid_lengths != nullptr && w.kv_end < args.kv_len;
            for (int t = 0; t < w.n_tiles; ++t, ++slot_iter) {
                const int s = slot_iter % kStages;
                const uint32_t phase = (slot_iter / kStages) & 1;
                const int n0 = t * BN;
                if (lane == 0) {
                    mbar_wait(k_empty(s), phase ^ 1);
                    mbar_arrive_expect_tx(k_full(s), Tile::kTileBytes);
#pragma unroll
                    for (int cb = 0; cb < Tile::kColBlocks; ++cb) {
                        tma_load_4d(k_addr(s) + cb * BN * 128, &tm_k, k_full(s), cb * 64, n0, w.hk,
                                    w.b);
                    }
                }
                if (zero_fill_v && n0 + BN > w.kv_end) {
                    // The V tile straddling the valid length: rows >= kv_end become zeros.
                    mbar_wait(v_empty(s), phase ^ 1);
                    const T* v = static_cast<const T*>(args.v) + w.b * args.v_strides[0] +
                                 w.hk * args.v_strides[1];
#pragma unroll 1
                    for (int idx = lane; idx < BN * kChunks; idx += 32) {
                        const int row = idx / kChunks;
                        const int chunk = idx % kChunks;
                        const bool ok = n0 + row < w.kv_end;
                        const T* src = ok ? v + (n0 + row) * args.v_strides[2] + chunk * 8 : v;
                        cp_async_16(v_addr(s) + block_swizzle<BN>(row, chunk), src, ok ? 16 : 0);
                    }
                    asm volatile("cp.async.wait_all;\n" ::: "memory");
                    wgmma::fence_proxy_async();  // generic-proxy writes, read next by wgmma
                    __syncwarp();
                    if (lane == 0) mbar_arrive(v_full(s));
                } else if (lane == 0) {
                    mbar_wait(v_empty(s), phase ^ 1);
                    mbar_arrive_expect_tx(v_full(s), Tile::kTileBytes);
#pragma unroll
                    for (int cb = 0; cb < Tile::kColBlocks; ++cb) {
                        tma_load_4d(v_addr(s) + cb * BN * 128, &tm_v, v_full(s), cb * 64, n0, w.hk,
                                    w.b);
                    }
                }
                __syncwarp();
            }
        }
        return;
    }

    // ---- consumers ---------------------------------------------------------------------------
    setmaxnreg_inc<Tile::kConsumerRegs>();
    const int cwg = wg - 1;            // consumer warpgroup: query rows [64 cwg, 64 cwg + 64)
    const int cwarp = (tid >> 5) & 3;  // warp within it: 16 rows each
    const int row_in_block = cwg * 64 + cwarp * 16 + (lane >> 2);  // this lane's first row
    const int col_in_tile = 2 * (lane & 3);
    const float scale_log2 = args.scale_log2;
    const int causal_offset = args.kv_len - args.q_len;

    // Turns: warpgroup c waits on barrier kTurnBarrier + c and hands over through the other one,
    // every turn, across work items. Consumer 1 opens consumer 0's first turn; consumer 0
    // absorbs consumer 1's last hand-over after its last item, so every barrier phase gets
    // exactly 256 threads.
    auto turn_begin = [&] { named_sync(kTurnBarrier + cwg, 256); };
    auto turn_end = [&] { named_arrive(kTurnBarrier + (cwg ^ 1), 256); };
    // Slot release: lane 0 of each consumer warp, after this warp's wgmma reading it completed.
    auto release = [&](uint32_t bar) {
        if (lane == 0) mbar_arrive(bar);
    };
    if (cwg == 1) named_arrive(kTurnBarrier, 256);  // consumer 0 goes first

    int slot_iter = 0;
    for (int visit = 0; item_of(visit) < num_items; ++visit) {
        const WsWorkItem w = ws_work_item<BM, BN>(args, item_of(visit));
        const int qs = visit % kQSlots;
        const uint32_t q_wg_addr = q_addr(qs) + cwg * 64 * 128;
        const int row0 = w.m0 + row_in_block;
        float acc_o[D / 2];
#pragma unroll
        for (int i = 0; i < D / 2; ++i) acc_o[i] = 0.f;
        float row_max[2] = {-INFINITY, -INFINITY};
        float row_sum[2] = {0.f, 0.f};

        auto issue_s = [&](float(&acc_s)[BN / 2], const int s) {
            wgmma::fence();
#pragma unroll
            for (int kk = 0; kk < kKSteps; ++kk) {
                const uint32_t in_row = (kk & 3) * 32;
                const uint64_t da =
                    make_desc(q_wg_addr + in_row + (kk >> 2) * (BM * 128), 16, 1024);
                const uint64_t db =
                    make_desc(k_addr(s) + in_row + (kk >> 2) * (BN * 128), 16, 1024);
                Wgmma<T>::ss(acc_s, da, db, kk > 0);
            }
            wgmma::commit();
        };
        auto issue_pv = [&](const uint32_t(&pa)[kPVSteps][4], const int s) {
            wgmma::fence();
#pragma unroll
            for (int kk = 0; kk < kPVSteps; ++kk) {
                Wgmma<T>::rs(acc_o, pa[kk], make_desc(v_addr(s) + kk * 2048, BN * 128, 1024));
            }
            wgmma::commit();
        };
        // Mask, online softmax statistics and P = exp2(...) in place in S; alpha is the factor
        // O must be scaled by before P V of this tile (applied by the caller: O may be in flight).
        auto softmax = [&](float(&acc_s)[BN / 2], const int t, float(&alpha)[2]) {
            if (t >= w.n_unmasked) {
                const int n0 = t * BN;
#pragma unroll
                for (int j = 0; j < kSTiles; ++j) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int key = n0 + j * 8 + col_in_tile + (e & 1);
                        const int qi = row0 + ((e >> 1) << 3);
                        if (key >= w.kv_end || (args.causal && key > qi + causal_offset)) {
                            acc_s[4 * j + e] = -INFINITY;
                        }
                    }
                }
            }
            // Row maxima and sums in 4 independent chains per row: one long serial chain left
            // the warp waiting on each instruction's latency (ncu; docs/history/cuda-notes.md).
            float part_max[2][4];
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                part_max[0][j] = fmaxf(acc_s[4 * j], acc_s[4 * j + 1]);
                part_max[1][j] = fmaxf(acc_s[4 * j + 2], acc_s[4 * j + 3]);
            }
#pragma unroll
            for (int j = 4; j < kSTiles; ++j) {
                part_max[0][j & 3] =
                    fmaxf(part_max[0][j & 3], fmaxf(acc_s[4 * j], acc_s[4 * j + 1]));
                part_max[1][j & 3] =
                    fmaxf(part_max[1][j & 3], fmaxf(acc_s[4 * j + 2], acc_s[4 * j + 3]));
            }
            float shift[2];
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                float m = fmaxf(fmaxf(part_max[r][0], part_max[r][1]),
                                fmaxf(part_max[r][2], part_max[r][3]));
                m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
                m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
                const float new_max = fmaxf(row_max[r], m);
                shift[r] = new_max == -INFINITY ? 0.f : new_max * scale_log2;
                alpha[r] = fast_exp2(row_max[r] * scale_log2 - shift[r]);
                row_max[r] = new_max;
                row_sum[r] *= alpha[r];
            }
            float part_sum[2][4] = {};
#pragma unroll
            for (int j = 0; j < kSTiles; ++j) {
                float* sv = acc_s + 4 * j;
                sv[0] = fast_exp2(fmaf(sv[0], scale_log2, -shift[0]));
                sv[1] = fast_exp2(fmaf(sv[1], scale_log2, -shift[0]));
                sv[2] = fast_exp2(fmaf(sv[2], scale_log2, -shift[1]));
                sv[3] = fast_exp2(fmaf(sv[3], scale_log2, -shift[1]));
                part_sum[0][j & 3] += sv[0] + sv[1];
                part_sum[1][j & 3] += sv[2] + sv[3];
            }
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                row_sum[r] += (part_sum[r][0] + part_sum[r][1]) + (part_sum[r][2] + part_sum[r][3]);
            }
        };
        auto rescale_o = [&](const float(&alpha)[2]) {
            if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
                for (int j = 0; j < kOTiles; ++j) {
                    acc_o[4 * j] *= alpha[0];
                    acc_o[4 * j + 1] *= alpha[0];
                    acc_o[4 * j + 2] *= alpha[1];
                    acc_o[4 * j + 3] *= alpha[1];
                }
            }
        };
        // S accumulator tiles 2kk and 2kk + 1 form the A operand of P V's k16 step kk.
        auto pack_p = [&](const float(&acc_s)[BN / 2], uint32_t(&pa)[kPVSteps][4]) {
#pragma unroll
            for (int j = 0; j < kSTiles; ++j) {
                pa[j >> 1][(j & 1) * 2] = Elem<T>::pack(acc_s[4 * j], acc_s[4 * j + 1]);
                pa[j >> 1][(j & 1) * 2 + 1] = Elem<T>::pack(acc_s[4 * j + 2], acc_s[4 * j + 3]);
            }
        };

        mbar_wait(q_full(qs), (visit / kQSlots) & 1);
        if (w.n_tiles > 0) {
            float acc_s[BN / 2];
            float alpha[2];
            uint32_t pa[kPVSteps][4];
            auto slot = [&](int t) { return (slot_iter + t) % kStages; };
            auto phase = [&](int t) {
                return static_cast<uint32_t>((slot_iter + t) / kStages) & 1;
            };
            // Turn 0: S_0 alone. Turn t: S_t, then P_(t-1) V_(t-1); softmax of S_t under P V.
            mbar_wait(k_full(slot(0)), phase(0));
            turn_begin();
            issue_s(acc_s, slot(0));
            turn_end();
            wgmma::wait<0>();
            release(k_empty(slot(0)));
            if (w.n_tiles == 1) release(q_empty(qs));  // last S of this item: Q may be refilled
            softmax(acc_s, 0, alpha);
            pack_p(acc_s, pa);
            for (int t = 1; t < w.n_tiles; ++t) {
                mbar_wait(k_full(slot(t)), phase(t));
                turn_begin();
                issue_s(acc_s, slot(t));
                rescale_o(alpha);
                mbar_wait(v_full(slot(t - 1)), phase(t - 1));
                issue_pv(pa, slot(t - 1));
                turn_end();
                wgmma::wait<1>();  // S_t done, P_(t-1) V_(t-1) may still run
                release(k_empty(slot(t)));
                if (t + 1 == w.n_tiles) release(q_empty(qs));
                softmax(acc_s, t, alpha);
                wgmma::wait<0>();
                release(v_empty(slot(t - 1)));
                pack_p(acc_s, pa);
            }
            const int last = w.n_tiles - 1;
            rescale_o(alpha);
            mbar_wait(v_full(slot(last)), phase(last));
            issue_pv(pa, slot(last));
            wgmma::wait<0>();
            release(v_empty(slot(last)));
            slot_iter += w.n_tiles;
        } else {
            release(q_empty(qs));
        }

        // Epilogue: O / l straight from the accumulators (each quad of lanes writes 16 bytes of
        // a row per n8 block; O is written once, so staging it through shared memory buys
        // little in this compute-bound kernel), then lse = m + ln l.
        float inv[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 1);
            row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 2);
            inv[r] = row_sum[r] > 0.f ? 1.f / row_sum[r] : 0.f;
        }
        T* o = static_cast<T*>(args.o) + w.b * args.o_strides[0] + w.h * args.o_strides[1];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int qi = row0 + 8 * r;
            if (qi < args.q_len) {
                T* orow = o + qi * args.o_strides[2] + col_in_tile;
#pragma unroll
                for (int j = 0; j < kOTiles; ++j) {
                    *reinterpret_cast<uint32_t*>(orow + j * 8) = Elem<T>::pack(
                        acc_o[4 * j + 2 * r] * inv[r], acc_o[4 * j + 2 * r + 1] * inv[r]);
                }
            }
        }
        if (args.lse != nullptr && (lane & 3) == 0) {
            float* lse = args.lse + (static_cast<int64_t>(w.b) * args.q_heads + w.h) * args.q_len;
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const int qi = row0 + 8 * r;
                if (qi < args.q_len) {
                    lse[qi] = row_sum[r] > 0.f ? row_max[r] * scale_log2 * 0.69314718055994531f +
                                                     logf(row_sum[r])
                                               : -INFINITY;
                }
            }
        }
    }
    if (cwg == 0) named_sync(kTurnBarrier, 256);  // consumer 1's last hand-over
#else
    __trap();  // launched only on compute capability 9.x, where the sm_90a image exists
#endif
}

}  // namespace twcuda
