// JNI for io.github.tilewise.djl.jni.LinearNative: checks every argument again (the Java side
// already did), unwraps direct buffers, and calls the C ABI of tilewise_gemm.h (linear layers of
// every weight format, the fused LayerNorm). No math here.
//
// Packed weights cross to Java as an opaque handle (the tw_packed_weights pointer as a long). A
// handle is only ever dereferenced inside a lease taken from the registry of live handles below, so
// a closed, forged or zero handle is an IllegalArgumentException, never a crash, and a handle freed
// while a call runs on it is freed when that call returns.
#include <jni.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "jni_util.h"
#include "tilewise/tilewise_gemm.h"

namespace {

using twjni::throw_illegal_argument;

// Each live handle counts the calls using it (WeightsLease). Freeing a handle first marks it (later
// lookups fail), then waits until its last call has returned, so memory is never freed under a
// running kernel, even when Java frees a handle that another thread is using.
struct Registered {
    int calls = 0;         // calls running on the weights now
    bool freeing = false;  // freeWeights has started: no new call may start
};
std::mutex registry_mutex;
std::condition_variable registry_idle;
std::unordered_map<const tw_packed_weights*, Registered>& registry() {
    static std::unordered_map<const tw_packed_weights*, Registered> live;
    return live;
}

jlong register_handle(tw_packed_weights* w) {
    std::lock_guard<std::mutex> lock(registry_mutex);
    registry().emplace(w, Registered{});
    return static_cast<jlong>(reinterpret_cast<intptr_t>(w));
}

/// A call's hold on live weights: valid until it goes out of scope; `get()` is nullptr (with an
/// IllegalArgumentException pending) when the handle is not live.
class WeightsLease {
   public:
    WeightsLease(JNIEnv* env, jlong handle)
        : w_(reinterpret_cast<const tw_packed_weights*>(static_cast<intptr_t>(handle))) {
        std::lock_guard<std::mutex> lock(registry_mutex);
        auto it = w_ == nullptr ? registry().end() : registry().find(w_);
        if (it == registry().end() || it->second.freeing) {
            w_ = nullptr;
            throw_illegal_argument(env, "packed weights handle " + std::to_string(handle) +
                                            " is not live (closed, or never created)");
            return;
        }
        ++it->second.calls;
    }
    ~WeightsLease() {
        if (w_ == nullptr) return;
        std::lock_guard<std::mutex> lock(registry_mutex);
        if (--registry()[w_].calls == 0) registry_idle.notify_all();
    }
    WeightsLease(const WeightsLease&) = delete;
    WeightsLease& operator=(const WeightsLease&) = delete;
    const tw_packed_weights* get() const { return w_; }

   private:
    const tw_packed_weights* w_;
};

/// rows * cols * bytes, or -1 (after throwing) when negative or beyond 2^62.
int64_t matrix_bytes(JNIEnv* env, const char* what, int64_t rows, int64_t cols, int64_t bytes) {
    if (rows < 0 || cols < 0 || (cols > 0 && rows > (int64_t{1} << 62) / cols / bytes)) {
        throw_illegal_argument(env, std::string(what) + " shape " + std::to_string(rows) + " x " +
                                        std::to_string(cols) + " is negative or too large");
        return -1;
    }
    return rows * cols * bytes;
}

bool valid_format(JNIEnv* env, jint format) {
    if (format != TW_F32 && format != TW_I8 && format != TW_BF16 && format != TW_F16) {
        throw_illegal_argument(env, "weight format " + std::to_string(format) +
                                        " is none of TW_F32, TW_I8, TW_BF16, TW_F16");
        return false;
    }
    return true;
}

/// The fp32 weights [n, k] of a direct buffer, validated; nullptr with an exception pending.
const float* float_weights(JNIEnv* env, jlong n, jlong k, jobject weights) {
    if (n <= 0 || k <= 0) {
        throw_illegal_argument(env, "weight shape must be positive, got " + std::to_string(n) +
                                        " x " + std::to_string(k));
        return nullptr;
    }
    const int64_t bytes = matrix_bytes(env, "weights", n, k, 4);
    if (bytes < 0) return nullptr;
    return static_cast<const float*>(twjni::direct_address(env, weights, bytes, "weights"));
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_io_github_tilewise_djl_jni_LinearNative_packWeights(
    JNIEnv* env, jobject, jint format, jlong n, jlong k, jobject weights) {
    if (!valid_format(env, format)) return 0;
    const float* w = float_weights(env, n, k, weights);
    if (w == nullptr) return 0;
    tw_packed_weights* packed = nullptr;
    if (twjni::check(env, tw_pack_weights(static_cast<tw_dtype>(format), n, k, w, k, &packed)))
        return 0;
    return register_handle(packed);
}

JNIEXPORT jlong JNICALL Java_io_github_tilewise_djl_jni_LinearNative_packInt8WeightsInRange(
    JNIEnv* env, jobject, jlong n, jlong k, jobject weights, jint weight_max) {
    const float* w = float_weights(env, n, k, weights);
    if (w == nullptr) return 0;
    tw_packed_weights* packed = nullptr;
    if (twjni::check(env, tw_pack_weights_int8_range(n, k, w, k, weight_max, &packed))) return 0;
    return register_handle(packed);
}

JNIEXPORT jlong JNICALL Java_io_github_tilewise_djl_jni_LinearNative_packGatedWeights(
    JNIEnv* env, jobject, jint format, jlong n, jlong k, jobject weights, jint weight_max) {
    if (!valid_format(env, format)) return 0;
    const float* w = float_weights(env, n, k, weights);
    if (w == nullptr) return 0;
    tw_packed_weights* packed = nullptr;
    if (twjni::check(env, tw_pack_weights_gated(static_cast<tw_dtype>(format), n, k, w, k,
                                                weight_max, &packed)))
        return 0;
    return register_handle(packed);
}

JNIEXPORT jlong JNICALL Java_io_github_tilewise_djl_jni_LinearNative_packInt8Weights(
    JNIEnv* env, jobject, jlong n, jlong k, jobject codes, jobject scales) {
    if (n <= 0 || k <= 0) {
        throw_illegal_argument(env, "weight shape must be positive, got " + std::to_string(n) +
                                        " x " + std::to_string(k));
        return 0;
    }
    const int64_t bytes = matrix_bytes(env, "int8 weights", n, k, 1);
    if (bytes < 0) return 0;
    auto* q = static_cast<const int8_t*>(twjni::direct_bytes(env, codes, bytes, "int8 weights"));
    if (q == nullptr) return 0;
    auto* s = static_cast<const float*>(twjni::direct_address(env, scales, n * 4, "scales"));
    if (s == nullptr) return 0;
    tw_packed_weights* packed = nullptr;
    if (twjni::check(env, tw_pack_weights_int8(n, k, q, k, s, &packed))) return 0;
    return register_handle(packed);
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_LinearNative_freeWeights(JNIEnv* env,
                                                                                jobject,
                                                                                jlong handle) {
    auto* w = reinterpret_cast<tw_packed_weights*>(static_cast<intptr_t>(handle));
    {
        std::unique_lock<std::mutex> lock(registry_mutex);
        auto it = w == nullptr ? registry().end() : registry().find(w);
        if (it == registry().end() || it->second.freeing) {
            throw_illegal_argument(env, "packed weights handle " + std::to_string(handle) +
                                            " is not live (closed twice?)");
            return;
        }
        // No new call can start on the handle from here on; wait for those already running on it.
        it->second.freeing = true;
        registry_idle.wait(lock, [&] { return registry()[w].calls == 0; });
        registry().erase(w);
    }
    tw_packed_weights_free(w);
}

JNIEXPORT jlongArray JNICALL
Java_io_github_tilewise_djl_jni_LinearNative_weightsInfo(JNIEnv* env, jobject, jlong handle) {
    const WeightsLease lease(env, handle);
    const tw_packed_weights* w = lease.get();
    if (w == nullptr) return nullptr;
    tw_dtype format;
    int64_t n, k, bytes;
    if (twjni::check(env, tw_packed_weights_info(w, &format, &n, &k, &bytes))) return nullptr;
    jlong values[4] = {static_cast<jlong>(format), n, k, bytes};
    jlongArray out = env->NewLongArray(4);
    if (out != nullptr) env->SetLongArrayRegion(out, 0, 4, values);
    return out;
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_LinearNative_unpackWeights(JNIEnv* env,
                                                                                  jobject,
                                                                                  jlong handle,
                                                                                  jobject out) {
    const WeightsLease lease(env, handle);
    const tw_packed_weights* w = lease.get();
    if (w == nullptr) return;
    int64_t n, k;
    tw_packed_weights_info(w, nullptr, &n, &k, nullptr);
    auto* dst =
        static_cast<float*>(twjni::writable_address(env, out, n * k * 4, "unpacked weights"));
    if (dst == nullptr) return;
    twjni::check(env, tw_unpack_weights(w, dst, k));
}

namespace {

/// The width of y for weights of n rows: n, or n / 2 for gated weights.
int64_t output_width(const tw_packed_weights* w, int64_t n) {
    return tw_packed_weights_gated(w) ? n / 2 : n;
}

/// The epilogue arguments shared by both linear entry points, checked and unwrapped into `p`:
/// bias [n], residual and LayerNorm over the n_out output columns. Returns false after throwing.
bool fill_epilogue(JNIEnv* env, int64_t m, int64_t n, int64_t n_out, jobject bias, jint epilogue,
                   jobject residual, jobject ln_gamma, jobject ln_beta, jfloat ln_eps,
                   tw_linear_params& p) {
    if (epilogue &
        ~(TW_EPILOGUE_GELU | TW_EPILOGUE_RESIDUAL | TW_EPILOGUE_LAYERNORM | TW_EPILOGUE_GATED)) {
        throw_illegal_argument(env, "epilogue flags " + std::to_string(epilogue) + " are unknown");
        return false;
    }
    const int64_t y_bytes = matrix_bytes(env, "y", m, n_out, 4);
    if (y_bytes < 0) return false;
    p.bias = static_cast<const float*>(twjni::direct_address(env, bias, n * 4, "bias", true));
    if (env->ExceptionCheck()) return false;
    if (epilogue & TW_EPILOGUE_RESIDUAL) {
        p.residual =
            static_cast<const float*>(twjni::direct_address(env, residual, y_bytes, "residual"));
        if (p.residual == nullptr) return false;
        p.ld_residual = n_out;
    }
    if (epilogue & TW_EPILOGUE_LAYERNORM) {
        p.ln_gamma = static_cast<const float*>(
            twjni::direct_address(env, ln_gamma, n_out * 4, "LayerNorm gamma", true));
        if (env->ExceptionCheck()) return false;
        p.ln_beta = static_cast<const float*>(
            twjni::direct_address(env, ln_beta, n_out * 4, "LayerNorm beta", true));
        if (env->ExceptionCheck()) return false;
        p.ln_eps = ln_eps;
    }
    p.epilogue = epilogue;
    p.m = m;
    return true;
}

/// Rows of u8 codes with their scales and zero points, checked against m x k (row stride from
/// tw_quantized_row_stride). `output` rows may be absent (all three null) and are written, so
/// read-only buffers are refused. Returns false after throwing.
bool quantized_rows(JNIEnv* env, const char* what, int64_t m, int64_t k, jobject codes,
                    jobject scales, jobject zeros, bool output, tw_quantized_rows& out) {
    if (output && codes == nullptr && scales == nullptr && zeros == nullptr) return true;
    const int64_t ldq = tw_quantized_row_stride(k);
    const int64_t bytes = matrix_bytes(env, what, m, ldq, 1);
    if (bytes < 0) return false;
    const std::string name(what);
    auto address = [&](jobject buffer, int64_t needed, const std::string& label) {
        return output ? twjni::writable_address(env, buffer, needed, label.c_str())
                      : twjni::direct_address(env, buffer, needed, label.c_str());
    };
    const std::string codes_name = name + " codes";
    out.q = output && codes != nullptr && !twjni::writable(env, codes, codes_name.c_str())
                ? nullptr
                : static_cast<uint8_t*>(twjni::direct_bytes(env, codes, bytes, codes_name.c_str()));
    if (out.q == nullptr) return false;
    out.scales = static_cast<float*>(address(scales, m * 4, name + " scales"));
    if (out.scales == nullptr) return false;
    out.zero_points = static_cast<int32_t*>(address(zeros, m * 4, name + " zero points"));
    if (out.zero_points == nullptr) return false;
    out.m = m;
    out.k = k;
    out.ldq = ldq;
    return true;
}

}  // namespace

JNIEXPORT jint JNICALL Java_io_github_tilewise_djl_jni_LinearNative_linear(
    JNIEnv* env, jobject, jlong handle, jlong m, jobject x, jint act_quant, jobject channel_scale,
    jobject bias, jint epilogue, jobject residual, jobject ln_gamma, jobject ln_beta, jfloat ln_eps,
    jobject y, jobject yq_codes, jobject yq_scales, jobject yq_zeros, jint yq_mode,
    jobject yq_channel_scale) {
    const WeightsLease lease(env, handle);
    const tw_packed_weights* w = lease.get();
    if (w == nullptr) return 0;
    int64_t n, k;
    tw_packed_weights_info(w, nullptr, &n, &k, nullptr);
    if (act_quant < TW_QUANT_NONE || act_quant > TW_QUANT_ASYMMETRIC) {
        throw_illegal_argument(
            env, "activation quantization " + std::to_string(act_quant) + " is unknown");
        return 0;
    }
    const int64_t n_out = output_width(w, n);
    tw_linear_params p{};
    if (!fill_epilogue(env, m, n, n_out, bias, epilogue, residual, ln_gamma, ln_beta, ln_eps, p))
        return 0;
    const int64_t x_bytes = matrix_bytes(env, "x", m, k, 4);
    if (x_bytes < 0) return 0;
    p.x = static_cast<const float*>(twjni::direct_address(env, x, x_bytes, "x"));
    if (p.x == nullptr) return 0;
    p.ldx = k;
    tw_quantized_rows out{};
    if (!quantized_rows(env, "yq", m, n_out, yq_codes, yq_scales, yq_zeros, true, out)) return 0;
    if (out.q != nullptr) {
        p.yq = &out;
        p.yq_mode = static_cast<tw_activation_quant>(yq_mode);
        p.yq_channel_scale = static_cast<const float*>(
            twjni::direct_address(env, yq_channel_scale, n_out * 4, "yq channel scale", true));
        if (env->ExceptionCheck()) return 0;
    }
    p.y = static_cast<float*>(twjni::writable_address(env, y, n_out * m * 4, "y", p.yq != nullptr));
    if (env->ExceptionCheck()) return 0;
    p.ldy = n_out;
    p.act_quant = static_cast<tw_activation_quant>(act_quant);
    p.x_channel_scale = static_cast<const float*>(
        twjni::direct_address(env, channel_scale, k * 4, "channel scale", true));
    if (env->ExceptionCheck()) return 0;
    p.w = w;
    twjni::check(env, tw_linear(&p));
    return out.qmax;
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_LinearNative_linearFromQuantized(
    JNIEnv* env, jobject, jlong handle, jlong m, jobject x_codes, jobject x_scales, jobject x_zeros,
    jint qmax, jobject bias, jint epilogue, jobject residual, jobject ln_gamma, jobject ln_beta,
    jfloat ln_eps, jobject y) {
    const WeightsLease lease(env, handle);
    const tw_packed_weights* w = lease.get();
    if (w == nullptr) return;
    int64_t n, k;
    tw_packed_weights_info(w, nullptr, &n, &k, nullptr);
    const int64_t n_out = output_width(w, n);
    tw_linear_params p{};
    if (!fill_epilogue(env, m, n, n_out, bias, epilogue, residual, ln_gamma, ln_beta, ln_eps, p))
        return;
    tw_quantized_rows in{};
    if (!quantized_rows(env, "x", m, k, x_codes, x_scales, x_zeros, false, in)) return;
    in.qmax = qmax;
    p.xq = &in;
    p.y = static_cast<float*>(twjni::writable_address(env, y, n_out * m * 4, "y"));
    if (p.y == nullptr) return;
    p.ldy = n_out;
    p.w = w;
    twjni::check(env, tw_linear(&p));
}

JNIEXPORT void JNICALL Java_io_github_tilewise_djl_jni_LinearNative_layerNorm(
    JNIEnv* env, jobject, jlong m, jlong k, jobject x, jobject residual, jobject gamma,
    jobject beta, jfloat eps, jobject y) {
    if (k <= 0) {
        throw_illegal_argument(env, "LayerNorm width must be positive, got " + std::to_string(k));
        return;
    }
    const int64_t bytes = matrix_bytes(env, "x", m, k, 4);
    if (bytes < 0) return;
    auto* xp = static_cast<const float*>(twjni::direct_address(env, x, bytes, "x"));
    if (xp == nullptr) return;
    auto* yp = static_cast<float*>(twjni::writable_address(env, y, bytes, "y"));
    if (yp == nullptr) return;
    auto* rp =
        static_cast<const float*>(twjni::direct_address(env, residual, bytes, "residual", true));
    if (env->ExceptionCheck()) return;
    auto* gp = static_cast<const float*>(twjni::direct_address(env, gamma, k * 4, "gamma", true));
    if (env->ExceptionCheck()) return;
    auto* bp = static_cast<const float*>(twjni::direct_address(env, beta, k * 4, "beta", true));
    if (env->ExceptionCheck()) return;
    tw_layernorm_params p{};
    p.m = m;
    p.k = k;
    p.x = xp;
    p.ldx = k;
    p.residual = rp;
    p.ld_residual = k;
    p.gamma = gp;
    p.beta = bp;
    p.eps = eps;
    p.y = yp;
    p.ldy = k;
    twjni::check(env, tw_layernorm(&p));
}

JNIEXPORT jstring JNICALL Java_io_github_tilewise_djl_jni_LinearNative_kernelNameFor(
    JNIEnv* env, jobject, jlong handle, jint act_quant) {
    const WeightsLease lease(env, handle);
    const tw_packed_weights* w = lease.get();
    if (w == nullptr) return nullptr;
    return env->NewStringUTF(
        tw_linear_kernel_name_for(w, static_cast<tw_activation_quant>(act_quant)));
}

JNIEXPORT jstring JNICALL Java_io_github_tilewise_djl_jni_LinearNative_kernelName(JNIEnv* env,
                                                                                  jobject,
                                                                                  jint format,
                                                                                  jint act_quant) {
    return env->NewStringUTF(tw_linear_kernel_name(static_cast<tw_dtype>(format),
                                                   static_cast<tw_activation_quant>(act_quant)));
}

}  // extern "C"
