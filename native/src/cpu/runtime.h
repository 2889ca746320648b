// Internal runtime services shared by all kernel families: error reporting, the active ISA and the
// worker pool. Not part of the C ABI.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tilewise/tilewise.h"

namespace tw {

/// Records a printf-style message as this thread's last error and returns `status`.
tw_status fail(tw_status status, const char* format, ...) __attribute__((format(printf, 2, 3)));

/// Clears this thread's last error; returns TW_OK.
tw_status ok();

/// The ISA level kernels should use for this call.
tw_isa active_isa();

/// Feature bits (TW_CPU_*) of the running CPU.
int cpu_features();

/// Whether AVX512-BF16 dot products give more products per cycle than fp32 FMAs on this CPU (AMD
/// Zen 4 and later), so bf16 compute should use them; elsewhere it rounds operands to bf16 and
/// multiplies in fp32. TILEWISE_BF16_DOT=1 or 0 overrides.
bool bf16_dot_outruns_fma();

/// Runs fn(ctx, task, worker) for task in [0, n_tasks) on the worker pool; the caller takes part
/// and the call returns when every task has finished. `worker` is in [0, num_workers()); it is NOT
/// unique across concurrent callers (a busy pool runs a second caller's tasks serially as worker
/// 0), so per-thread workspaces must come from thread_scratch(). Nested calls run serially.
void parallel_for(int64_t n_tasks, void (*fn)(void* ctx, int64_t task, int worker), void* ctx);

/// Independent per-thread buffers, for code that needs one while a caller holds another.
enum class ScratchSlot {
    kTask,            // kernels' per-task tiles; the int8 driver's quantized input
    kOutputRows,      // linear layers: output rows that are quantized but never stored
    kWidenedWeights,  // weight-only int8: one half-panel widened to fp32
    kPackedRows,      // bf16 linear: a task's X rows packed into micro-tile streams
    kGateTile,        // gated linear: a task's 2 ff pre-activations before the gate
    kCount
};

/// A 64-byte aligned buffer of at least `bytes` owned by the calling thread, one per slot, reused
/// by every call on that thread (contents are not preserved across calls that ask for more).
/// nullptr if out of memory. Kernels carve their per-task tiles from it.
void* thread_scratch(size_t bytes, ScratchSlot slot = ScratchSlot::kTask);

/// Number of workers parallel_for may use (the caller included).
int num_workers();

}  // namespace tw
