// Tests of libtilewise_cuda's C ABI.
//  - Everywhere: argument validation returns the right status and a message naming the problem,
//    before any device memory is touched; without a GPU every call fails cleanly.
//  - With a GPU: the attention output and log-sum-exp match a float64 reference computed on the
//    host from the same rounded fp16/bf16 inputs, on fresh random data and awkward shapes (q_len !=
//    kv_len, lengths not multiples of the tiles, GQA, causal, per-batch key lengths, [B, S, H, D]
//    strides); the output is poisoned with NaN first, so every element must be written.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tilewise/tilewise_cuda.h"

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
    if (!ok) {
        ++failures;
        std::printf("FAIL: %s\n", what.c_str());
    }
}

void expect_status(tw_status got, tw_status want, const char* needle, const std::string& what) {
    const std::string msg = tw_cuda_last_error();
    expect(got == want, what + ": status " + std::to_string(got) + " != " + std::to_string(want) +
                            " (" + msg + ")");
    if (needle != nullptr) {
        expect(msg.find(needle) != std::string::npos,
               what + ": message '" + msg + "' lacks '" + needle + "'");
    }
}

// Host conversions (round to nearest even), independent of the library.
uint16_t to_f16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    int exp = static_cast<int>((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffffu;
    if (exp <= 0) {  // subnormal or zero
        if (exp < -10) return static_cast<uint16_t>(sign);
        mant |= 0x800000u;
        const int shift = 14 - exp;
        uint32_t half = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1);
        const uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) ++half;
        return static_cast<uint16_t>(sign | half);
    }
    uint32_t half = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;
    return static_cast<uint16_t>(half);
}
float from_f16(uint16_t h) {
    const uint32_t sign = (h & 0x8000u) << 16;
    const int exp = (h >> 10) & 0x1f;
    const uint32_t mant = h & 0x3ffu;
    float f;
    if (exp == 0) {
        f = std::ldexp(static_cast<float>(mant), -24);
        uint32_t x;
        std::memcpy(&x, &f, 4);
        x |= sign;
        std::memcpy(&f, &x, 4);
        return f;
    }
    if (exp == 31) return mant ? NAN : (sign ? -INFINITY : INFINITY);
    const uint32_t x = sign | (static_cast<uint32_t>(exp - 15 + 127) << 23) | (mant << 13);
    std::memcpy(&f, &x, 4);
    return f;
}
uint16_t to_bf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    x += 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>(x >> 16);
}
float from_bf16(uint16_t h) {
    const uint32_t x = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

tw_cuda_attention_params valid_params(void* fake) {
    tw_cuda_attention_params p{};
    p.dtype = TW_F16;
    p.batch = 2;
    p.q_heads = 4;
    p.kv_heads = 2;
    p.q_len = 10;
    p.kv_len = 12;
    p.head_dim = 64;
    p.q = p.k = p.v = fake;
    p.o = fake;
    const int64_t s[3] = {4 * 12 * 64, 12 * 64, 64};
    for (int i = 0; i < 3; ++i)
        p.q_strides[i] = p.k_strides[i] = p.v_strides[i] = p.o_strides[i] = s[i];
    p.scale = 0.125f;
    return p;
}

void test_validation() {
    alignas(16) static unsigned char fake[64];
    expect_status(tw_cuda_attention_forward(nullptr), TW_ERR_INVALID_ARGUMENT, "null",
                  "null params");
    auto p = valid_params(fake);
    p.dtype = TW_F32;
    expect_status(tw_cuda_attention_forward(&p), TW_ERR_UNSUPPORTED, "dtype", "f32 dtype");
    p = valid_params(fake);
    p.head_dim = 96;
    expect_status(tw_cuda_attention_forward(&p), TW_ERR_UNSUPPORTED, "head_dim", "head_dim 96");
    p = valid_params(fake);
    p.kv_heads = 3;
    expect_status(tw_cuda_attention_forward(&p), TW_ERR_INVALID_ARGUMENT, "divide", "kv_heads 3");
    p = valid_params(fake);
    p.q_len = 0;
    expect_status(tw_cuda_attention_forward(&p), TW_ERR_INVALID_ARGUMENT, "q_len", "q_len 0");
    p = valid_params(fake);
    p.v = nullptr;
    expect_status(tw_cuda_attention_forward(&p), TW_ERR_INVALID_ARGUMENT, "non-null", "null v");
    p = valid_params(fake);
    p.k = fake + 2;
    expect_status(tw_cuda_attention_forward(&p), TW_ERR_INVALID_ARGUMENT, "aligned",
                  "misaligned k");
    p = valid_params(fake);
    p.o_strides[2] = 68;
    expect_status(tw_cuda_attention_forward(&p), TW_ERR_INVALID_ARGUMENT, "o_strides[2]",
                  "o seq stride 68");
    p = valid_params(fake);
    p.scale = NAN;
    expect_status(tw_cuda_attention_forward(&p), TW_ERR_INVALID_ARGUMENT, "scale", "NaN scale");
    p.scale = -0.125f;
    expect_status(tw_cuda_attention_forward(&p), TW_ERR_INVALID_ARGUMENT, "positive",
                  "negative scale");
    expect_status(tw_cuda_attention_set_config(7), TW_ERR_INVALID_ARGUMENT, "config", "config 7");
    expect_status(tw_cuda_attention_set_config(-1), TW_ERR_INVALID_ARGUMENT, "config", "config -1");
}

void test_without_device() {
    alignas(16) static unsigned char fake[64];
    auto p = valid_params(fake);
    expect_status(tw_cuda_attention_forward(&p), TW_ERR_UNSUPPORTED, "CUDA", "forward without GPU");
    void* ptr = reinterpret_cast<void*>(0x1);
    expect_status(tw_cuda_malloc(&ptr, 256), TW_ERR_UNSUPPORTED, nullptr, "malloc without GPU");
    expect(ptr == nullptr, "malloc without GPU leaves ptr null");
}

struct Case {
    tw_dtype dtype;
    int batch, q_heads, kv_heads, q_len, kv_len, head_dim;
    bool causal, varlen, seq_major, lse;
};

#define CHECK_CUDA(call)                                                     \
    do {                                                                     \
        tw_status s_ = (call);                                               \
        if (s_ != TW_OK) {                                                   \
            expect(false, std::string(#call) + ": " + tw_cuda_last_error()); \
            return;                                                          \
        }                                                                    \
    } while (0)

void run_case(const Case& c, std::mt19937& rng, int config) {
    const bool f16 = c.dtype == TW_F16;
    const int64_t B = c.batch, H = c.q_heads, HK = c.kv_heads, NQ = c.q_len, NK = c.kv_len,
                  D = c.head_dim;
    // Strides for [B, H, S, D] or [B, S, H, D].
    auto strides = [&](int64_t heads, int64_t len, int64_t(&s)[3]) {
        if (c.seq_major) {
            s[0] = len * heads * D, s[1] = D, s[2] = heads * D;
        } else {
            s[0] = heads * len * D, s[1] = len * D, s[2] = D;
        }
    };
    tw_cuda_attention_params p{};
    p.dtype = c.dtype;
    p.batch = B, p.q_heads = H, p.kv_heads = HK, p.q_len = NQ, p.kv_len = NK, p.head_dim = D;
    strides(H, NQ, p.q_strides);
    strides(HK, NK, p.k_strides);
    strides(HK, NK, p.v_strides);
    strides(H, NQ, p.o_strides);
    p.scale = 1.0f / std::sqrt(static_cast<float>(D));
    p.causal = c.causal;

    std::normal_distribution<float> normal(0.f, 1.f);
    auto fill = [&](std::vector<uint16_t>& bits, std::vector<double>& vals, int64_t n, float sd) {
        bits.resize(n), vals.resize(n);
        for (int64_t i = 0; i < n; ++i) {
            const float x = sd * normal(rng);
            bits[i] = f16 ? to_f16(x) : to_bf16(x);
            vals[i] = f16 ? from_f16(bits[i]) : from_bf16(bits[i]);
        }
    };
    std::vector<uint16_t> qb, kb, vb;
    std::vector<double> qv, kv, vv;
    fill(qb, qv, B * H * NQ * D, 1.5f);  // scores with a real spread: softmax far from uniform
    fill(kb, kv, B * HK * NK * D, 1.5f);
    fill(vb, vv, B * HK * NK * D, 1.0f);
    std::vector<int32_t> lens(B, static_cast<int32_t>(NK));
    if (c.varlen) {
        std::uniform_int_distribution<int> len(0, static_cast<int>(NK));
        for (auto& l : lens) l = len(rng);
        lens[0] = 0;  // one fully padded sequence: zeros, never NaN
        // Padding keys hold NaN values: masked keys must contribute exactly nothing (P = 0 must
        // never meet a NaN in P V; kernels zero-fill or skip such rows).
        for (int64_t b = 0; b < B; ++b) {
            for (int64_t h = 0; h < HK; ++h) {
                for (int64_t j = lens[b]; j < NK; ++j) {
                    for (int64_t d = 0; d < D; ++d) {
                        vb[b * p.v_strides[0] + h * p.v_strides[1] + j * p.v_strides[2] + d] =
                            0xffff;
                    }
                }
            }
        }
    }

    const size_t q_bytes = qb.size() * 2, kv_bytes = kb.size() * 2;
    const size_t lse_bytes = static_cast<size_t>(B * H * NQ) * 4;
    void *dq, *dk, *dv, *d_o, *dlen = nullptr, *dlse = nullptr;
    CHECK_CUDA(tw_cuda_malloc(&dq, q_bytes));
    CHECK_CUDA(tw_cuda_malloc(&dk, kv_bytes));
    CHECK_CUDA(tw_cuda_malloc(&dv, kv_bytes));
    CHECK_CUDA(tw_cuda_malloc(&d_o, q_bytes));
    CHECK_CUDA(tw_cuda_copy_to_device(dq, qb.data(), q_bytes));
    CHECK_CUDA(tw_cuda_copy_to_device(dk, kb.data(), kv_bytes));
    CHECK_CUDA(tw_cuda_copy_to_device(dv, vb.data(), kv_bytes));
    CHECK_CUDA(tw_cuda_memset(d_o, 0xff, q_bytes));  // 0xffff is NaN in fp16 and bf16
    if (c.varlen) {
        CHECK_CUDA(tw_cuda_malloc(&dlen, B * 4));
        CHECK_CUDA(tw_cuda_copy_to_device(dlen, lens.data(), B * 4));
    }
    if (c.lse) {
        CHECK_CUDA(tw_cuda_malloc(&dlse, lse_bytes));
        CHECK_CUDA(tw_cuda_memset(dlse, 0xff, lse_bytes));
    }
    p.q = dq, p.k = dk, p.v = dv, p.o = d_o;
    p.kv_valid_lengths = static_cast<const int32_t*>(dlen);
    p.lse = static_cast<float*>(dlse);
    CHECK_CUDA(tw_cuda_attention_forward(&p));
    CHECK_CUDA(tw_cuda_synchronize());
    std::vector<uint16_t> ob(qb.size());
    std::vector<float> lse(c.lse ? B * H * NQ : 0);
    CHECK_CUDA(tw_cuda_copy_to_host(ob.data(), d_o, q_bytes));
    if (c.lse) CHECK_CUDA(tw_cuda_copy_to_host(lse.data(), dlse, lse_bytes));

    // float64 reference.
    double err2 = 0, ref2 = 0, lse_err = 0;
    bool nan = false, masked_rows_zero = true, lse_inf_ok = true;
    std::vector<double> s(NK);
    for (int64_t b = 0; b < B; ++b) {
        for (int64_t h = 0; h < H; ++h) {
            const int64_t hk = h / (H / HK);
            for (int64_t i = 0; i < NQ; ++i) {
                const double* qi =
                    &qv[b * p.q_strides[0] + h * p.q_strides[1] + i * p.q_strides[2]];
                double mx = -INFINITY;
                for (int64_t j = 0; j < NK; ++j) {
                    const bool visible = j < lens[b] && (!c.causal || j <= i + (NK - NQ));
                    if (!visible) {
                        s[j] = -INFINITY;
                        continue;
                    }
                    const double* kj =
                        &kv[b * p.k_strides[0] + hk * p.k_strides[1] + j * p.k_strides[2]];
                    double dot = 0;
                    for (int64_t d = 0; d < D; ++d) dot += qi[d] * kj[d];
                    s[j] = dot * p.scale;
                    mx = std::max(mx, s[j]);
                }
                double sum = 0;
                for (int64_t j = 0; j < NK; ++j)
                    sum += (s[j] == -INFINITY) ? 0 : std::exp(s[j] - mx);
                const int64_t o_off = b * p.o_strides[0] + h * p.o_strides[1] + i * p.o_strides[2];
                for (int64_t d = 0; d < D; ++d) {
                    double ref = 0;
                    if (sum > 0) {
                        for (int64_t j = 0; j < NK; ++j) {
                            if (s[j] == -INFINITY) continue;
                            ref +=
                                std::exp(s[j] - mx) * vv[b * p.v_strides[0] + hk * p.v_strides[1] +
                                                         j * p.v_strides[2] + d];
                        }
                        ref /= sum;
                    }
                    const double got = f16 ? from_f16(ob[o_off + d]) : from_bf16(ob[o_off + d]);
                    if (std::isnan(got)) nan = true;
                    if (sum == 0 && got != 0) masked_rows_zero = false;
                    err2 += (got - ref) * (got - ref);
                    ref2 += ref * ref;
                }
                if (c.lse) {
                    const double got = lse[(b * H + h) * NQ + i];
                    if (sum == 0) {
                        if (!(std::isinf(got) && got < 0)) lse_inf_ok = false;
                    } else {
                        lse_err = std::max(lse_err, std::fabs(got - (mx + std::log(sum))));
                    }
                }
            }
        }
    }
    const double rel = std::sqrt(err2 / std::max(ref2, 1e-30));
    const double tol = f16 ? 4e-3 : 2.5e-2;  // P is rounded to the input type before P V
    char name[256];
    std::snprintf(name, sizeof name,
                  "%s B=%d H=%d Hkv=%d Nq=%d Nk=%d D=%d causal=%d varlen=%d bshd=%d config=%d",
                  f16 ? "f16" : "bf16", c.batch, c.q_heads, c.kv_heads, c.q_len, c.kv_len,
                  c.head_dim, c.causal, c.varlen, c.seq_major, config);
    std::printf("%s rel_err=%.2e lse_max_abs_err=%.2e\n", name, rel, lse_err);
    expect(!nan, std::string(name) + ": NaN (unwritten) output");
    expect(rel <= tol, std::string(name) + ": relative error " + std::to_string(rel));
    expect(masked_rows_zero, std::string(name) + ": fully masked rows not zero");
    expect(lse_inf_ok, std::string(name) + ": lse of fully masked rows not -inf");
    expect(lse_err <= 2e-2, std::string(name) + ": lse error " + std::to_string(lse_err));
    tw_cuda_free(dq), tw_cuda_free(dk), tw_cuda_free(dv), tw_cuda_free(d_o);
    tw_cuda_free(dlen), tw_cuda_free(dlse);
}

void test_numerics() {
    std::mt19937 rng(std::random_device{}());
    const Case cases[] = {
        {TW_F16, 2, 4, 4, 128, 128, 64, false, false, false, true},
        {TW_BF16, 2, 4, 4, 128, 128, 128, false, false, false, true},
        {TW_F16, 1, 8, 2, 77, 200, 128, true, false, false, true},  // GQA, Nq < Nk, causal
        {TW_BF16, 2, 6, 3, 150, 61, 64, true, false, true, true},   // Nq > Nk causal: masked rows
        {TW_F16, 3, 4, 1, 129, 300, 64, false, true, true, true},   // MQA, varlen, [B,S,H,D]
        {TW_BF16, 3, 2, 2, 1, 517, 128, true, true, false, true},   // decode step, varlen
        {TW_F16, 2, 2, 2, 333, 333, 128, true, true, false, false},
        {TW_BF16, 1, 2, 1, 1000, 1000, 64, true, false, true, false},
        // 480 and 360 work items: config 6's persistent blocks loop over several pairs, the K/V
        // ring and the Q slots carrying over from item to item; varlen, GQA; causal pairs of
        // m-blocks (longest with shortest) straddling heads (5 m-blocks per head).
        {TW_F16, 8, 20, 4, 300, 260, 64, false, true, false, true},
        {TW_BF16, 6, 12, 4, 520, 520, 128, true, true, false, true},
    };
    for (int config = 0; config <= 6; ++config) {
        tw_cuda_attention_set_config(config);
        for (const Case& c : cases) run_case(c, rng, config);
    }
    tw_cuda_attention_set_config(0);
}

}  // namespace

int main() {
    test_validation();
    int devices = 0;
    expect(tw_cuda_device_count(&devices) == TW_OK, "device count");
    if (devices == 0) {
        std::printf("no CUDA device (%s): checking that calls fail cleanly\n",
                    tw_cuda_last_error());
        test_without_device();
    } else {
        char name[256];
        tw_cuda_describe_device(0, name, sizeof name);
        std::printf("device: %s\n", name);
        test_numerics();
    }
    if (failures) {
        std::printf("%d failure(s)\n", failures);
        return 1;
    }
    std::printf("all passed\n");
    return 0;
}
