// The one worker pool behind tw::parallel_for.
//
// Workers sleep on a condition variable between jobs after a short spin, so back-to-back kernel
// calls (one per layer) do not pay a wake-up each, and idle workers do not steal cycles from
// PyTorch's own threads for long. Only one job runs at a time: a call that finds the pool busy
// (another Java thread, or a task calling parallel_for) runs its tasks on its own thread, which is
// what a caller that already parallelises across threads wants.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime.h"

namespace tw {
namespace {

constexpr int kSpinIterations = 20000;  // ~50-100 us of spinning before a worker sleeps

inline void cpu_relax() {
#if defined(TILEWISE_X86)
    __builtin_ia32_pause();
#endif
}

class ThreadPool {
   public:
    explicit ThreadPool(int threads) { start(threads); }
    ~ThreadPool() { stop(); }

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    void resize(int threads) {
        std::lock_guard<std::mutex> job_lock(job_mutex_);
        stop();
        start(threads);
    }

    void run(int64_t n_tasks, void (*fn)(void*, int64_t, int), void* ctx) {
        std::unique_lock<std::mutex> job_lock(job_mutex_, std::try_to_lock);
        if (!job_lock.owns_lock() || workers_.empty() || n_tasks == 1) {
            for (int64_t t = 0; t < n_tasks; ++t) fn(ctx, t, 0);
            return;
        }
        fn_ = fn;
        ctx_ = ctx;
        n_tasks_ = n_tasks;
        next_task_.store(0);
        finished_tasks_.store(0);
        job_open_.store(true);
        {
            std::lock_guard<std::mutex> lock(wake_mutex_);
            generation_.fetch_add(1, std::memory_order_release);
        }
        wake_.notify_all();
        work(0);
        while (finished_tasks_.load(std::memory_order_acquire) < n_tasks_) cpu_relax();
        // A worker that woke for this job but was descheduled before taking a task must not touch
        // the job's fields (or `ctx`, on the caller's stack) after we return and they are reused:
        // close the job, then wait for every worker inside it to leave (Dekker-style handshake
        // with the worker's busy_ increment and job_open_ check, both sequentially consistent).
        job_open_.store(false);
        while (busy_.load() != 0) cpu_relax();
    }

   private:
    void start(int threads) {
        shutdown_ = false;
        // Each worker starts from the generation current now, so a job or a stop() issued before
        // the thread first runs is never missed.
        const uint64_t seen = generation_.load();
        for (int i = 1; i < threads; ++i) {
            workers_.emplace_back([this, i, seen] { loop(i, seen); });
        }
    }

    void stop() {
        {
            std::lock_guard<std::mutex> lock(wake_mutex_);
            shutdown_ = true;
            generation_.fetch_add(1);
        }
        wake_.notify_all();
        for (auto& t : workers_) t.join();
        workers_.clear();
    }

    void work(int worker) {
        int64_t task;
        while ((task = next_task_.fetch_add(1, std::memory_order_relaxed)) < n_tasks_) {
            fn_(ctx_, task, worker);
            finished_tasks_.fetch_add(1, std::memory_order_release);
        }
    }

    void loop(int worker, uint64_t seen) {
        for (;;) {
            for (int spin = 0; spin < kSpinIterations && generation_.load() == seen; ++spin) {
                cpu_relax();
            }
            {
                std::unique_lock<std::mutex> lock(wake_mutex_);
                wake_.wait(lock, [&] { return generation_.load() != seen || shutdown_; });
                seen = generation_.load();
                if (shutdown_) return;
            }
            busy_.fetch_add(1);
            if (job_open_.load() && generation_.load() == seen) {
                work(worker);
            }
            busy_.fetch_sub(1);
        }
    }

    std::mutex job_mutex_;
    std::mutex wake_mutex_;
    std::condition_variable wake_;
    std::vector<std::thread> workers_;
    std::atomic<uint64_t> generation_{0};
    bool shutdown_ = false;
    void (*fn_)(void*, int64_t, int) = nullptr;
    void* ctx_ = nullptr;
    int64_t n_tasks_ = 0;
    std::atomic<int64_t> next_task_{0};
    std::atomic<int64_t> finished_tasks_{0};
    std::atomic<bool> job_open_{false};  // true while a job's fields may be read by workers
    std::atomic<int> busy_{0};           // workers between their job_open_ check and leaving work()
};

int default_threads() {
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool& pool() {
    static ThreadPool instance(default_threads());
    return instance;
}

thread_local bool inside_task = false;

}  // namespace

void parallel_for(int64_t n_tasks, void (*fn)(void*, int64_t, int), void* ctx) {
    if (n_tasks <= 0) return;
    if (inside_task) {
        for (int64_t t = 0; t < n_tasks; ++t) fn(ctx, t, 0);
        return;
    }
    struct Guarded {
        void (*fn)(void*, int64_t, int);
        void* ctx;
        static void call(void* self, int64_t task, int worker) {
            auto* g = static_cast<Guarded*>(self);
            inside_task = true;
            g->fn(g->ctx, task, worker);
            inside_task = false;
        }
    } guarded{fn, ctx};
    pool().run(n_tasks, &Guarded::call, &guarded);
}

int num_workers() {
    return pool().size();
}

namespace {
struct Scratch {
    void* data = nullptr;
    size_t bytes = 0;
    ~Scratch() { std::free(data); }
};
thread_local Scratch scratches[static_cast<int>(ScratchSlot::kCount)];
}  // namespace

void* thread_scratch(size_t bytes, ScratchSlot slot) {
    Scratch& scratch = scratches[static_cast<int>(slot)];
    if (bytes <= scratch.bytes) return scratch.data;
    std::free(scratch.data);
    size_t rounded = (bytes + 63) / 64 * 64;
    scratch.data = std::aligned_alloc(64, rounded);
    scratch.bytes = scratch.data ? rounded : 0;
    return scratch.data;
}

}  // namespace tw

extern "C" {

tw_status tw_set_num_threads(int n) {
    if (n <= 0) n = tw::default_threads();
    if (n > 1024) return tw::fail(TW_ERR_INVALID_ARGUMENT, "thread count %d is too large", n);
    tw::pool().resize(n);
    return tw::ok();
}

int tw_num_threads(void) {
    return tw::num_workers();
}

}  // extern "C"
