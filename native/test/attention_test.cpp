// Fused attention against a float64 reference, for every ISA level this CPU runs, on fresh random
// data: odd lengths, head dims up to 256, causal (bottom-right aligned), valid lengths, key
// padding, bias with broadcasting, GQA/MQA, cross lengths, single query rows, both layouts and the
// fused QKV layout, fp16/bf16 data and bf16 compute. Half-precision results must be within 2x the
// error of the naive computation in the same precision (FlashAttention's rule) plus a small
// absolute slack.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../src/cpu/half.h"
#include "test_util.h"
#include "tilewise/tilewise.h"

namespace {

struct Case {
    int64_t batch, q_heads, kv_heads, q_len, kv_len, head_dim;
    bool causal = false;
    bool valid_lengths = false;
    bool padding_mask = false;
    int bias = 0;  // 0 none, 1 full [B,H,Nq,Nk], 2 broadcast [1,1,Nq,Nk], 3 per-key [B,1,1,Nk]
    bool seq_major = false;  // [B, S, H, D] instead of [B, H, S, D]
    // q, k, v read in place from one fused projection output [B, S, 3, H, D] (as an encoder's QKV
    // linear produces it), o written as [B, S, H, D]; needs q_len == kv_len, q_heads == kv_heads.
    bool fused_qkv = false;
    tw_dtype dtype = TW_F32;
    tw_dtype compute = TW_F32;

    std::string describe() const {
        char text[256];
        std::snprintf(text, sizeof(text),
                      "B=%lld H=%lld Hkv=%lld Nq=%lld Nk=%lld D=%lld causal=%d lens=%d mask=%d "
                      "bias=%d bshd=%d qkv=%d dtype=%d compute=%d",
                      (long long)batch, (long long)q_heads, (long long)kv_heads, (long long)q_len,
                      (long long)kv_len, (long long)head_dim, causal, valid_lengths, padding_mask,
                      bias, seq_major, fused_qkv, dtype, compute);
        return text;
    }
};

/// Rounds a value to the storage or compute precision.
float round_to(tw_dtype dtype, float x) {
    if (dtype == TW_F16) return tw::fp16_to_float(tw::float_to_fp16(x));
    if (dtype == TW_BF16) return tw::bf16_to_float(tw::float_to_bf16(x));
    return x;
}

struct Tensors {
    std::vector<float> q, k, v;  // values, already representable in the storage dtype
    std::vector<int32_t> lengths;
    std::vector<uint8_t> mask;
    std::vector<float> bias;
    int64_t bias_strides[4] = {0, 0, 0, 0};
};

/// Index of (b, h, s, 0) in the test's own copies of q, k, v and in o ([B, S, H, D] for fused_qkv).
int64_t offset(const Case& c, int64_t heads, int64_t len, int64_t b, int64_t h, int64_t s) {
    const int64_t D = c.head_dim;
    return c.seq_major || c.fused_qkv ? ((b * len + s) * heads + h) * D
                                      : ((b * heads + h) * len + s) * D;
}

bool visible(const Case& c, const Tensors& t, int64_t b, int64_t i, int64_t j) {
    if (c.causal && j > i + (c.kv_len - c.q_len)) return false;
    if (c.valid_lengths && j >= t.lengths[b]) return false;
    if (c.padding_mask && t.mask[b * c.kv_len + j] == 0) return false;
    return true;
}

float bias_at(const Tensors& t, int64_t b, int64_t h, int64_t i, int64_t j) {
    if (t.bias.empty()) return 0.0f;
    return t.bias[b * t.bias_strides[0] + h * t.bias_strides[1] + i * t.bias_strides[2] +
                  j * t.bias_strides[3]];
}

/// Attention with every intermediate rounded to `precision` (the naive same-precision baseline,
/// like a framework's half matmul -> softmax -> matmul), or in float64 when precision is F32 and
/// `exact` is set.
void reference(const Case& c, const Tensors& t, bool exact, tw_dtype precision,
               std::vector<double>& out, std::vector<double>& lse) {
    const int64_t D = c.head_dim, group = c.q_heads / c.kv_heads;
    const double scale = 1.0 / std::sqrt(double(D));
    auto r = [&](double x) { return exact ? x : double(round_to(precision, float(x))); };
    out.assign(c.batch * c.q_heads * c.q_len * D, 0.0);
    lse.assign(c.batch * c.q_heads * c.q_len, -std::numeric_limits<double>::infinity());
    std::vector<double> s(c.kv_len);
    for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t h = 0; h < c.q_heads; ++h)
            for (int64_t i = 0; i < c.q_len; ++i) {
                const int64_t g = h / group;
                double m = -std::numeric_limits<double>::infinity();
                for (int64_t j = 0; j < c.kv_len; ++j) {
                    s[j] = -std::numeric_limits<double>::infinity();
                    if (!visible(c, t, b, i, j)) continue;
                    double dot = 0;
                    for (int64_t d = 0; d < D; ++d) {
                        dot += r(t.q[offset(c, c.q_heads, c.q_len, b, h, i) + d]) *
                               r(t.k[offset(c, c.kv_heads, c.kv_len, b, g, j) + d]);
                    }
                    s[j] = r(r(dot) * scale) + bias_at(t, b, h, i, j);
                    m = std::max(m, s[j]);
                }
                if (m == -std::numeric_limits<double>::infinity()) continue;  // zeros
                double l = 0;
                for (int64_t j = 0; j < c.kv_len; ++j) l += std::exp(s[j] - m);
                const int64_t o = ((b * c.q_heads + h) * c.q_len + i) * D;
                for (int64_t j = 0; j < c.kv_len; ++j) {
                    if (s[j] == -std::numeric_limits<double>::infinity()) continue;
                    const double pj = r(std::exp(s[j] - m) / l);
                    for (int64_t d = 0; d < D; ++d) {
                        out[o + d] += pj * r(t.v[offset(c, c.kv_heads, c.kv_len, b, g, j) + d]);
                    }
                }
                for (int64_t d = 0; d < D; ++d) out[o + d] = r(out[o + d]);
                lse[(b * c.q_heads + h) * c.q_len + i] = m + std::log(l);
            }
}

Tensors make_inputs(const Case& c) {
    Tensors t;
    auto fill = [&](std::vector<float>& x, int64_t n, float range) {
        x.resize(n);
        for (auto& e : x) e = round_to(c.dtype, twtest::uniform(-range, range));
    };
    fill(t.q, c.batch * c.q_heads * c.q_len * c.head_dim, 2.0f);
    fill(t.k, c.batch * c.kv_heads * c.kv_len * c.head_dim, 2.0f);
    fill(t.v, c.batch * c.kv_heads * c.kv_len * c.head_dim, 1.0f);
    if (c.valid_lengths) {
        for (int64_t b = 0; b < c.batch; ++b) {
            // The first batch entry has no valid key at all when there are several: its rows must
            // be zeros.
            t.lengths.push_back(b == 0 && c.batch > 1 ? 0
                                                      : int32_t(twtest::uniform_int(1, c.kv_len)));
        }
    }
    if (c.padding_mask) {
        t.mask.resize(c.batch * c.kv_len);
        for (auto& m : t.mask) m = twtest::uniform(0, 1) < 0.7f ? 1 : 0;
    }
    if (c.bias) {
        int64_t shape[4] = {c.batch, c.q_heads, c.q_len, c.kv_len};
        if (c.bias == 2) shape[0] = shape[1] = 1;
        if (c.bias == 3) shape[1] = shape[2] = 1;
        t.bias.resize(shape[0] * shape[1] * shape[2] * shape[3]);
        for (auto& x : t.bias)
            x = twtest::uniform(0, 1) < 0.1f ? -INFINITY : twtest::uniform(-2, 2);
        const int64_t full[4] = {shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1};
        for (int i = 0; i < 4; ++i) t.bias_strides[i] = shape[i] == 1 ? 0 : full[i];
    }
    return t;
}

std::vector<uint16_t> to_half(const std::vector<float>& x, tw_dtype dtype) {
    std::vector<uint16_t> h(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        h[i] = dtype == TW_F16 ? tw::float_to_fp16(x[i]) : tw::float_to_bf16(x[i]);
    }
    return h;
}

void run_case(const Case& c) {
    Tensors t = make_inputs(c);
    std::vector<double> exact, exact_lse, naive, naive_lse;
    reference(c, t, true, TW_F32, exact, exact_lse);
    const tw_dtype precision = c.compute == TW_BF16 ? TW_BF16 : c.dtype;
    if (precision != TW_F32) reference(c, t, false, precision, naive, naive_lse);

    const int64_t D = c.head_dim;
    const int64_t out_elems = c.batch * c.q_heads * c.q_len * D;
    std::vector<uint16_t> qh, kh, vh;
    std::vector<float> o32(out_elems, NAN);
    std::vector<uint16_t> o16(out_elems,
                              0x7e00);  // NaN in both half formats: every element must be written
    std::vector<float> lse(c.batch * c.q_heads * c.q_len, NAN);

    tw_attention_params p{};
    p.dtype = c.dtype;
    p.compute = c.compute;
    p.batch = c.batch;
    p.q_heads = c.q_heads;
    p.kv_heads = c.kv_heads;
    p.q_len = c.q_len;
    p.kv_len = c.kv_len;
    p.head_dim = D;
    std::vector<float> qkv32;
    std::vector<uint16_t> qkvh;
    if (c.fused_qkv) {
        // [B, S, 3, H, D] from the [B, S, H, D] copies: q, k, v rows interleaved per token.
        const int64_t HD = c.q_heads * D, tokens = c.batch * c.q_len;
        qkv32.resize(tokens * 3 * HD);
        for (int64_t token = 0; token < tokens; ++token) {
            std::memcpy(&qkv32[(token * 3 + 0) * HD], &t.q[token * HD], sizeof(float) * HD);
            std::memcpy(&qkv32[(token * 3 + 1) * HD], &t.k[token * HD], sizeof(float) * HD);
            std::memcpy(&qkv32[(token * 3 + 2) * HD], &t.v[token * HD], sizeof(float) * HD);
        }
        if (c.dtype == TW_F32) {
            p.q = qkv32.data();
            p.k = qkv32.data() + HD;
            p.v = qkv32.data() + 2 * HD;
            p.o = o32.data();
        } else {
            qkvh = to_half(qkv32, c.dtype);
            p.q = qkvh.data();
            p.k = qkvh.data() + HD;
            p.v = qkvh.data() + 2 * HD;
            p.o = o16.data();
        }
        for (int64_t* s : {p.q_strides, p.k_strides, p.v_strides}) {
            s[0] = c.q_len * 3 * HD;
            s[1] = D;
            s[2] = 3 * HD;
        }
        p.o_strides[0] = c.q_len * HD;
        p.o_strides[1] = D;
        p.o_strides[2] = HD;
    } else {
        if (c.dtype == TW_F32) {
            p.q = t.q.data();
            p.k = t.k.data();
            p.v = t.v.data();
            p.o = o32.data();
        } else {
            qh = to_half(t.q, c.dtype);
            kh = to_half(t.k, c.dtype);
            vh = to_half(t.v, c.dtype);
            p.q = qh.data();
            p.k = kh.data();
            p.v = vh.data();
            p.o = o16.data();
        }
        auto strides = [&](int64_t heads, int64_t len, int64_t* s) {
            if (c.seq_major) {
                s[0] = len * heads * D;
                s[1] = D;
                s[2] = heads * D;
            } else {
                s[0] = heads * len * D;
                s[1] = len * D;
                s[2] = D;
            }
        };
        strides(c.q_heads, c.q_len, p.q_strides);
        strides(c.kv_heads, c.kv_len, p.k_strides);
        strides(c.kv_heads, c.kv_len, p.v_strides);
        strides(c.q_heads, c.q_len, p.o_strides);
    }
    p.scale = float(1.0 / std::sqrt(double(D)));
    p.causal = c.causal;
    p.kv_valid_lengths = c.valid_lengths ? t.lengths.data() : nullptr;
    p.key_padding_mask = c.padding_mask ? t.mask.data() : nullptr;
    p.bias = c.bias ? t.bias.data() : nullptr;
    std::memcpy(p.bias_strides, t.bias_strides, sizeof(p.bias_strides));
    p.lse = lse.data();

    const tw_status status = tw_attention_forward(&p);
    TW_CHECK(status == TW_OK, "%s: status %d (%s)", c.describe().c_str(), status, tw_last_error());
    if (status != TW_OK) return;

    double err = 0, naive_err = 0, max_ref = 0, lse_err = 0;
    bool finite = true;
    for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t h = 0; h < c.q_heads; ++h)
            for (int64_t i = 0; i < c.q_len; ++i)
                for (int64_t d = 0; d < D; ++d) {
                    const int64_t ref_index = ((b * c.q_heads + h) * c.q_len + i) * D + d;
                    const int64_t out_index = offset(c, c.q_heads, c.q_len, b, h, i) + d;
                    const double got = c.dtype == TW_F32   ? o32[out_index]
                                       : c.dtype == TW_F16 ? tw::fp16_to_float(o16[out_index])
                                                           : tw::bf16_to_float(o16[out_index]);
                    if (!std::isfinite(got)) finite = false;
                    err = std::max(err, std::fabs(got - exact[ref_index]));
                    max_ref = std::max(max_ref, std::fabs(exact[ref_index]));
                    if (!naive.empty()) {
                        naive_err =
                            std::max(naive_err, std::fabs(naive[ref_index] - exact[ref_index]));
                    }
                }
    for (size_t i = 0; i < lse.size(); ++i) {
        if (std::isinf(exact_lse[i])) {
            TW_CHECK(std::isinf(lse[i]) && lse[i] < 0, "%s: lse[%zu] = %f for a row without keys",
                     c.describe().c_str(), i, lse[i]);
        } else {
            lse_err = std::max(
                lse_err, std::fabs(lse[i] - exact_lse[i]) / std::max(1.0, std::fabs(exact_lse[i])));
        }
    }
    TW_CHECK(finite, "%s: non-finite output (unwritten element or NaN)", c.describe().c_str());
    if (precision == TW_F32) {
        TW_CHECK(err <= 1e-5 * std::max(1.0, max_ref), "%s: max abs error %.3g",
                 c.describe().c_str(), err);
        TW_CHECK(lse_err <= 1e-5, "%s: lse relative error %.3g", c.describe().c_str(), lse_err);
    } else {
        // Output rounding alone costs half an ulp of the storage type.
        const double slack = c.dtype == TW_F32 ? 1e-6 : (c.dtype == TW_F16 ? 5e-4 : 4e-3);
        TW_CHECK(err <= 2 * naive_err + slack, "%s: max abs error %.3g vs naive %.3g",
                 c.describe().c_str(), err, naive_err);
        TW_CHECK(lse_err <= 2e-2, "%s: lse relative error %.3g", c.describe().c_str(), lse_err);
    }
}

std::vector<Case> cases() {
    std::vector<Case> list;
    // Head dims: fast paths and awkward ones.
    for (int64_t d : {32, 40, 64, 80, 96, 128, 256, 7}) list.push_back({1, 2, 2, 77, 93, d});
    // Lengths around the tiles (64 queries / 64 keys; AVX2 uses 24-query tiles).
    for (int64_t n : {1, 2, 15, 16, 17, 63, 64, 65, 129, 300}) list.push_back({2, 2, 1, n, n, 64});
    for (int64_t n : {1, 24, 25, 70, 200}) {
        Case c{1, 3, 3, n, n, 64};
        c.causal = true;
        list.push_back(c);
    }
    Case causal_cross{2, 4, 2, 50, 170, 64};  // decoding-like: bottom-right aligned causal
    causal_cross.causal = true;
    list.push_back(causal_cross);
    Case causal_more_queries{1, 2, 2, 100, 40, 32};  // first 60 rows see no key: zeros
    causal_more_queries.causal = true;
    list.push_back(causal_more_queries);
    Case lens{3, 4, 4, 90, 150, 64};
    lens.valid_lengths = true;
    list.push_back(lens);
    Case mask{2, 2, 2, 33, 201, 48};
    mask.padding_mask = true;
    list.push_back(mask);
    for (int bias : {1, 2, 3}) {
        Case c{2, 2, 1, 45, 80, 64};
        c.bias = bias;
        c.causal = bias == 2;
        list.push_back(c);
    }
    list.push_back({1, 8, 1, 1, 700, 128});  // MQA decoding: one query row, split-KV
    list.push_back({1, 1, 1, 3, 3000, 64});  // few rows, long keys: split-KV
    list.push_back({2, 6, 2, 130, 60, 96});  // GQA, cross lengths
    Case everything{3, 4, 2, 70, 90, 80};
    everything.causal = true;
    everything.valid_lengths = true;
    everything.padding_mask = true;
    everything.bias = 3;
    everything.seq_major = true;
    list.push_back(everything);
    Case bshd{2, 4, 4, 100, 100, 64};
    bshd.seq_major = true;
    list.push_back(bshd);

    // Every case again in half precision and bf16 compute (a subset, to keep the test quick).
    std::vector<Case> half;
    for (size_t i = 0; i < list.size(); i += 2) {
        for (auto [dtype, compute] : {std::pair{TW_F16, TW_F32}, std::pair{TW_BF16, TW_F32},
                                      std::pair{TW_F32, TW_BF16}, std::pair{TW_BF16, TW_BF16}}) {
            Case c = list[i];
            c.dtype = dtype;
            c.compute = compute;
            half.push_back(c);
        }
    }
    list.insert(list.end(), half.begin(), half.end());
    // The encoder's layout (q, k, v strided views of one fused QKV buffer) with head dims that are
    // not multiples of the vector width (the Qᵀ/Oᵀ transposes mask their ends; 25 leaves half a
    // bf16 pair) and query counts that are not multiples of 16 or 8 (partial transpose blocks), in
    // every storage type and compute precision. Valid lengths give batch 0 rows without keys.
    for (int64_t d : {24, 25, 32, 40, 72}) {
        for (int64_t n : {13, 100, 128}) {
            for (auto [dtype, compute] :
                 {std::pair{TW_F32, TW_F32}, std::pair{TW_F16, TW_F32}, std::pair{TW_BF16, TW_F32},
                  std::pair{TW_F32, TW_BF16}, std::pair{TW_BF16, TW_BF16}}) {
                Case c{2, 3, 3, n, n, d};
                c.fused_qkv = true;
                c.valid_lengths = n == 100;
                c.dtype = dtype;
                c.compute = compute;
                list.push_back(c);
            }
        }
    }
    // And random shapes.
    for (int i = 0; i < 12; ++i) {
        Case c{twtest::uniform_int(1, 3),   0,
               twtest::uniform_int(1, 3),   twtest::uniform_int(1, 150),
               twtest::uniform_int(1, 150), twtest::uniform_int(1, 130)};
        c.q_heads = c.kv_heads * twtest::uniform_int(1, 3);
        c.causal = twtest::uniform_int(0, 1);
        c.valid_lengths = twtest::uniform_int(0, 1);
        c.seq_major = twtest::uniform_int(0, 1);
        c.compute = twtest::uniform_int(0, 1) ? TW_BF16 : TW_F32;
        list.push_back(c);
    }
    return list;
}

void invalid_arguments_are_rejected() {
    std::vector<float> x(64, 1.0f);
    tw_attention_params p{};
    p.dtype = TW_F32;
    p.compute = TW_F32;
    p.batch = p.q_heads = p.kv_heads = 1;
    p.q_len = p.kv_len = 1;
    p.head_dim = 64;
    p.q = p.k = p.v = x.data();
    p.o = x.data();
    p.scale = 0.125f;
    TW_CHECK(tw_attention_forward(nullptr) == TW_ERR_INVALID_ARGUMENT, "null params");
    tw_attention_params bad = p;
    bad.head_dim = 300;
    TW_CHECK(tw_attention_forward(&bad) == TW_ERR_INVALID_ARGUMENT, "head_dim 300");
    TW_CHECK(std::strstr(tw_last_error(), "head_dim") != nullptr, "message names head_dim: %s",
             tw_last_error());
    bad = p;
    bad.q_heads = 3;
    bad.kv_heads = 2;
    TW_CHECK(tw_attention_forward(&bad) == TW_ERR_INVALID_ARGUMENT, "kv_heads must divide q_heads");
    bad = p;
    bad.k = nullptr;
    TW_CHECK(tw_attention_forward(&bad) == TW_ERR_INVALID_ARGUMENT, "null k");
    bad = p;
    bad.dtype = TW_I8;
    TW_CHECK(tw_attention_forward(&bad) == TW_ERR_INVALID_ARGUMENT, "int8 data");
    bad = p;
    bad.scale = NAN;
    TW_CHECK(tw_attention_forward(&bad) == TW_ERR_INVALID_ARGUMENT, "NaN scale");
    int32_t too_long = 2;
    bad = p;
    bad.kv_valid_lengths = &too_long;
    TW_CHECK(tw_attention_forward(&bad) == TW_ERR_INVALID_ARGUMENT, "valid length past kv_len");
    bad = p;
    bad.q_strides[2] = -1;
    TW_CHECK(tw_attention_forward(&bad) == TW_ERR_INVALID_ARGUMENT, "negative stride");
}

/// A NaN in the value of a key never reaches a query that cannot see that key: causal rows before
/// it and every row when the key is padded out stay finite; rows that see it become NaN.
void hidden_nan_values_do_not_leak() {
    const int64_t N = 100, D = 64;
    for (int with_mask = 0; with_mask <= 1; ++with_mask) {
        std::vector<float> q(N * D), k(N * D), v(N * D), o(N * D, 0.0f);
        for (auto* x : {&q, &k, &v})
            for (auto& e : *x) e = twtest::uniform(-1, 1);
        const int64_t poisoned = 70;
        for (int64_t d = 0; d < D; ++d) v[poisoned * D + d] = NAN;
        std::vector<uint8_t> mask(N, 1);
        mask[poisoned] = 0;
        tw_attention_params p{};
        p.dtype = TW_F32;
        p.compute = TW_F32;
        p.batch = p.q_heads = p.kv_heads = 1;
        p.q_len = p.kv_len = N;
        p.head_dim = D;
        p.q = q.data();
        p.k = k.data();
        p.v = v.data();
        p.o = o.data();
        for (int64_t* s : {p.q_strides, p.k_strides, p.v_strides, p.o_strides}) {
            s[0] = N * D;
            s[1] = N * D;
            s[2] = D;
        }
        p.scale = 0.125f;
        p.causal = 1;
        p.key_padding_mask = with_mask ? mask.data() : nullptr;
        TW_CHECK(tw_attention_forward(&p) == TW_OK, "%s", tw_last_error());
        for (int64_t i = 0; i < N; ++i) {
            const bool sees_nan = !with_mask && i >= poisoned;
            bool any_nan = false;
            for (int64_t d = 0; d < D; ++d) any_nan |= std::isnan(o[i * D + d]);
            TW_CHECK(any_nan == sees_nan, "isa %d mask %d row %lld: NaN %d, expected %d",
                     tw_isa_active(), with_mask, (long long)i, any_nan, sees_nan);
        }
    }
}

/// Keys past a valid length are never read into a result, even when the valid length is odd and
/// bf16 compute multiplies keys in pairs: a NaN in the value of the first hidden key stays out.
/// Both bf16 K/V layouts: converted per task (one query tile) and once per call (several tiles).
void values_past_valid_length_do_not_leak() {
    const int64_t D = 32;
    for (int64_t N : {100, 300}) {
        for (tw_dtype compute : {TW_F32, TW_BF16}) {
            std::vector<float> q(N * D), k(N * D), v(N * D), o(N * D, 0.0f);
            for (auto* x : {&q, &k, &v})
                for (auto& e : *x) e = twtest::uniform(-1, 1);
            const int32_t valid = 69;  // odd: key 69 shares a bf16 pair with key 68
            for (int64_t d = 0; d < D; ++d) v[valid * D + d] = NAN;
            tw_attention_params p{};
            p.dtype = TW_F32;
            p.compute = compute;
            p.batch = p.q_heads = p.kv_heads = 1;
            p.q_len = p.kv_len = N;
            p.head_dim = D;
            p.q = q.data();
            p.k = k.data();
            p.v = v.data();
            p.o = o.data();
            for (int64_t* s : {p.q_strides, p.k_strides, p.v_strides, p.o_strides}) {
                s[0] = N * D;
                s[1] = N * D;
                s[2] = D;
            }
            p.scale = 0.125f;
            p.kv_valid_lengths = &valid;
            TW_CHECK(tw_attention_forward(&p) == TW_OK, "%s", tw_last_error());
            int64_t nan_rows = 0;
            for (int64_t i = 0; i < N; ++i) {
                bool any_nan = false;
                for (int64_t d = 0; d < D; ++d) any_nan |= !std::isfinite(o[i * D + d]);
                nan_rows += any_nan;
            }
            TW_CHECK(nan_rows == 0, "isa %d N=%lld compute=%d: %lld rows see the hidden NaN value",
                     tw_isa_active(), (long long)N, compute, (long long)nan_rows);
        }
    }
}

}  // namespace

/// Packed variable-length attention against float64, sequence by sequence: random length mixes
/// with empty sequences, single rows, one sequence taking (almost) everything, queries without
/// keys, causal or not, GQA, packed-QKV strides (q, k, v inside one [T, (H + 2 Hkv) D] row), fp32
/// data.
void varlen_matches_float64() {
    const int64_t kMixes[][6] = {{1, 0, 0, 0, 0, 0},  {5, 1, 0, 7, 0, 0},   {3, 40, 1, 2, 0, 0},
                                 {2, 97, 0, 0, 0, 0}, {6, 3, 17, 1, 64, 5}, {4, 0, 0, 33, 1, 0}};
    for (const auto& mix : kMixes) {
        for (int causal = 0; causal <= 1; ++causal) {
            for (const int64_t hkv_over : {int64_t{1}, int64_t{2}}) {
                const int64_t d = std::vector<int64_t>{64, 24, 16, 8}[twtest::uniform_int(0, 3)];
                const int64_t h = 4, hkv = h / hkv_over;
                std::vector<int32_t> cu_q{0}, cu_k{0};
                for (int64_t len : mix) {
                    if (len == 0 && cu_q.size() > 1 && twtest::uniform_int(0, 1)) continue;
                    cu_q.push_back(cu_q.back() + static_cast<int32_t>(len));
                    // Keys: the same length (self-attention), or for some sequences none / a
                    // different count.
                    const int64_t kl = causal ? len : (len == 7 ? 0 : len + (len > 3 ? 2 : 0));
                    cu_k.push_back(cu_k.back() + static_cast<int32_t>(kl));
                }
                const int64_t n = static_cast<int64_t>(cu_q.size()) - 1;
                const int64_t tq = cu_q.back(), tk = cu_k.back();
                if (tq == 0 || tk == 0) continue;
                // Q, K, V share one packed buffer per side: rows of width (h + 2 hkv) d for q-side.
                const int64_t wq = h * d, wk = 2 * hkv * d;
                std::vector<float> qbuf(tq * wq), kvbuf(tk * wk), out(tq * h * d, 7.0f);
                for (auto& x : qbuf) x = twtest::uniform(-1.5f, 1.5f);
                for (auto& x : kvbuf) x = twtest::uniform(-1.5f, 1.5f);
                tw_attention_params p{};
                p.dtype = TW_F32;
                p.compute = TW_F32;
                p.batch = 1;
                p.q_heads = h;
                p.kv_heads = hkv;
                p.q_len = tq;
                p.kv_len = tk;
                p.head_dim = d;
                p.q = qbuf.data();
                p.k = kvbuf.data();
                p.v = kvbuf.data() + hkv * d;
                p.o = out.data();
                const int64_t qs[3] = {tq * wq, d, wq}, ks[3] = {tk * wk, d, wk},
                              os[3] = {tq * h * d, d, h * d};
                std::memcpy(p.q_strides, qs, sizeof qs);
                std::memcpy(p.k_strides, ks, sizeof ks);
                std::memcpy(p.v_strides, ks, sizeof ks);
                std::memcpy(p.o_strides, os, sizeof os);
                p.scale = 1.0f / std::sqrt(static_cast<float>(d));
                p.causal = causal;
                TW_CHECK(tw_attention_varlen_forward(&p, n, cu_q.data(), cu_k.data()) == TW_OK,
                         "varlen: %s", tw_last_error());
                double worst = 0;
                for (int64_t s = 0; s < n; ++s) {
                    const int64_t q0 = cu_q[s], nq = cu_q[s + 1] - q0, k0 = cu_k[s],
                                  nk = cu_k[s + 1] - k0;
                    for (int64_t hh = 0; hh < h; ++hh) {
                        const int64_t g = hh / (h / hkv);
                        for (int64_t i = 0; i < nq; ++i) {
                            std::vector<double> w(nk, 0.0);
                            double mx = -INFINITY, sum = 0;
                            for (int64_t j = 0; j < nk; ++j) {
                                if (causal && j > i + (nk - nq)) continue;
                                double dot = 0;
                                for (int64_t e = 0; e < d; ++e)
                                    dot += double(qbuf[(q0 + i) * wq + hh * d + e]) *
                                           kvbuf[(k0 + j) * wk + g * d + e];
                                w[j] = dot * p.scale;
                                mx = std::max(mx, w[j]);
                            }
                            for (int64_t j = 0; j < nk; ++j) {
                                const bool seen = !(causal && j > i + (nk - nq));
                                w[j] = seen ? std::exp(w[j] - mx) : 0.0;
                                sum += w[j];
                            }
                            for (int64_t e = 0; e < d; ++e) {
                                double ref = 0;
                                for (int64_t j = 0; j < nk; ++j)
                                    ref += w[j] * kvbuf[(k0 + j) * wk + hkv * d + g * d + e];
                                ref = sum > 0 ? ref / sum : 0.0;
                                worst = std::max(
                                    worst, std::fabs(ref - out[(q0 + i) * h * d + hh * d + e]));
                            }
                        }
                    }
                }
                TW_CHECK(worst < 2e-5,
                         "varlen %lld sequences, %lld rows, causal %d, hkv %lld, d %lld: error %g",
                         (long long)n, (long long)tq, causal, (long long)hkv, (long long)d, worst);
            }
        }
    }
    // Bad offsets are errors, never reads past the buffers.
    std::vector<float> x(64 * 16, 0.5f), o(64 * 16);
    tw_attention_params p{};
    p.dtype = TW_F32;
    p.compute = TW_F32;
    p.batch = 1;
    p.q_heads = p.kv_heads = 1;
    p.q_len = p.kv_len = 64;
    p.head_dim = 16;
    p.q = p.k = p.v = x.data();
    p.o = o.data();
    const int64_t st[3] = {64 * 16, 16, 16};
    std::memcpy(p.q_strides, st, sizeof st);
    std::memcpy(p.k_strides, st, sizeof st);
    std::memcpy(p.v_strides, st, sizeof st);
    std::memcpy(p.o_strides, st, sizeof st);
    p.scale = 0.25f;
    const int32_t past_end[] = {0, 30, 65}, decreasing[] = {0, 40, 30, 64}, not_zero[] = {1, 64},
                  fine[] = {0, 20, 64};
    TW_CHECK(tw_attention_varlen_forward(&p, 2, past_end, past_end) == TW_ERR_INVALID_ARGUMENT,
             "past the end");
    TW_CHECK(tw_attention_varlen_forward(&p, 3, decreasing, decreasing) == TW_ERR_INVALID_ARGUMENT,
             "decreasing");
    TW_CHECK(tw_attention_varlen_forward(&p, 1, not_zero, not_zero) == TW_ERR_INVALID_ARGUMENT,
             "not from 0");
    TW_CHECK(tw_attention_varlen_forward(&p, 2, fine, nullptr) == TW_ERR_INVALID_ARGUMENT,
             "null offsets");
    TW_CHECK(tw_attention_varlen_forward(&p, 2, fine, fine) == TW_OK, "valid offsets: %s",
             tw_last_error());
    p.batch = 2;
    TW_CHECK(tw_attention_varlen_forward(&p, 2, fine, fine) == TW_ERR_INVALID_ARGUMENT, "batch 2");
}

int main() {
    invalid_arguments_are_rejected();
    const std::vector<Case> all = cases();
    for (int isa = TW_ISA_PORTABLE; isa <= tw_isa_detected(); ++isa) {
        TW_CHECK(tw_set_isa(static_cast<tw_isa>(isa)) == TW_OK, "set isa %d", isa);
        std::printf("isa %d: %zu cases\n", isa, all.size());
        for (const Case& c : all) run_case(c);
        hidden_nan_values_do_not_leak();
        values_past_valid_length_do_not_leak();
        varlen_matches_float64();
    }
    return twtest::finish("attention_test");
}
