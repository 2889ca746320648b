// Fused attention against a float64 reference, for every ISA level this CPU runs, on fresh random
// data: odd lengths, head dims up to 256, causal (bottom-right aligned), valid lengths, key
// padding, bias with broadcasting, GQA/MQA, cross lengths, single query rows, both layouts and the
// fused QKV layout, fp16/bf16 data and bf16 compute, sliding windows (one- and two-sided, 0, wider
// than the sequence, not multiples of the tiles) and relative-position bias tables (radius below
// and above the lengths, per head or shared), also on packed sequences; the tiles a windowed call
// visits; rotary embeddings against an fp32 emulation of torch and a float64 rotation.
// Half-precision results must be within 2x the error of the naive computation in the same precision
// (FlashAttention's rule) plus a small absolute slack.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../src/cpu/attention_kernels.h"
#include "../src/cpu/half.h"
#include "cpu/kernels.h"
#include "cpu/runtime.h"
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
    bool window = false;  // sliding window [i' - left, i' + right], negative = unlimited
    int64_t left = -1, right = -1;
    int rel = 0;  // relative-position bias table: 0 none, 1 per head, 2 shared (head stride 0)
    int64_t radius = 0;
    bool rel_masks = false;  // some table entries are -inf
    // K row j scaled by 1 + j/96: later key tiles hold scores far above the running max, so lazy
    // tiles give way to the exact rescale (kLazyRescale) again and again.
    bool growing_keys = false;

    std::string describe() const {
        char text[320];
        std::snprintf(text, sizeof(text),
                      "B=%lld H=%lld Hkv=%lld Nq=%lld Nk=%lld D=%lld causal=%d lens=%d mask=%d "
                      "bias=%d bshd=%d qkv=%d dtype=%d compute=%d window=%d(%lld,%lld) rel=%d "
                      "R=%lld relmask=%d grow=%d",
                      (long long)batch, (long long)q_heads, (long long)kv_heads, (long long)q_len,
                      (long long)kv_len, (long long)head_dim, causal, valid_lengths, padding_mask,
                      bias, seq_major, fused_qkv, dtype, compute, window, (long long)left,
                      (long long)right, rel, (long long)radius, rel_masks, growing_keys);
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
    std::vector<float> rel;  // [q_heads or 1][2R + 1]
    int64_t rel_stride = 0;
};

/// Index of (b, h, s, 0) in the test's own copies of q, k, v and in o ([B, S, H, D] for fused_qkv).
int64_t offset(const Case& c, int64_t heads, int64_t len, int64_t b, int64_t h, int64_t s) {
    const int64_t D = c.head_dim;
    return c.seq_major || c.fused_qkv ? ((b * len + s) * heads + h) * D
                                      : ((b * heads + h) * len + s) * D;
}

bool visible(const Case& c, const Tensors& t, int64_t b, int64_t i, int64_t j) {
    if (c.causal && j > i + (c.kv_len - c.q_len)) return false;
    const int64_t aligned = i + (c.kv_len - c.q_len);
    if (c.window && c.left >= 0 && j < aligned - c.left) return false;
    if (c.window && c.right >= 0 && j > aligned + c.right) return false;
    if (c.valid_lengths && j >= t.lengths[b]) return false;
    if (c.padding_mask && t.mask[b * c.kv_len + j] == 0) return false;
    return true;
}

/// The relative-position bias of (h, i, j), written out from the definition: distance j - i'
/// clamped to [-R, R], entry R + distance of head h's table.
double rel_at(const Case& c, const Tensors& t, int64_t h, int64_t i, int64_t j) {
    if (t.rel.empty()) return 0.0;
    int64_t distance = j - (i + c.kv_len - c.q_len);
    if (distance < -c.radius) distance = -c.radius;
    if (distance > c.radius) distance = c.radius;
    return t.rel[h * t.rel_stride + c.radius + distance];
}

double bias_at(const Case& c, const Tensors& t, int64_t b, int64_t h, int64_t i, int64_t j) {
    double sum = rel_at(c, t, h, i, j);
    if (t.bias.empty()) return sum;
    return sum + t.bias[b * t.bias_strides[0] + h * t.bias_strides[1] + i * t.bias_strides[2] +
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
                    s[j] = r(r(dot) * scale) + bias_at(c, t, b, h, i, j);
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
    if (c.growing_keys) {
        for (int64_t b = 0; b < c.batch; ++b)
            for (int64_t g = 0; g < c.kv_heads; ++g)
                for (int64_t j = 0; j < c.kv_len; ++j) {
                    float* row = &t.k[offset(c, c.kv_heads, c.kv_len, b, g, j)];
                    for (int64_t d = 0; d < c.head_dim; ++d) {
                        row[d] = round_to(c.dtype, row[d] * (1.0f + float(j) / 96.0f));
                    }
                }
    }
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
    if (c.rel) {
        const int64_t width = 2 * c.radius + 1;
        t.rel_stride = c.rel == 1 ? width : 0;
        t.rel.resize((c.rel == 1 ? c.q_heads : 1) * width);
        for (auto& x : t.rel) {
            x = c.rel_masks && twtest::uniform(0, 1) < 0.15f ? -INFINITY : twtest::uniform(-3, 3);
        }
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
    p.has_window = c.window;
    p.window_left = c.left;
    p.window_right = c.right;
    p.rel_bias = c.rel ? t.rel.data() : nullptr;
    p.rel_bias_radius = c.radius;
    p.rel_bias_head_stride = t.rel_stride;

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

/// Sliding windows: two-sided, one-sided, 0 (own position only), wider than the sequence, sizes
/// that do and do not divide the tiles (64 keys; 128 / 24 queries), with causal, masks, valid
/// lengths, cross lengths (bottom-right aligned), GQA, both layouts and every precision.
std::vector<Case> window_cases() {
    std::vector<Case> list;
    const int64_t sides[][2] = {{0, 0},       {1, 1},   {5, 3},   {63, 64},  {64, 64},
                                {128, 0},     {0, 77},  {-1, 10}, {10, -1},  {-1, -1},
                                {2000, 2000}, {200, 7}, {31, -1}, {-1, 129}, {256, 256}};
    for (const auto& side : sides) {
        for (int64_t n : {1, 17, 130, 300}) {
            Case c{2, 2, 1, n, n, 32};
            c.window = true;
            c.left = side[0];
            c.right = side[1];
            list.push_back(c);
        }
        Case causal{1, 3, 3, 260, 260, 64};
        causal.window = true;
        causal.left = side[0];
        causal.right = side[1];
        causal.causal = true;
        list.push_back(causal);
        Case masked{2, 2, 2, 150, 150, 40};
        masked.window = true;
        masked.left = side[0];
        masked.right = side[1];
        masked.padding_mask = true;
        masked.valid_lengths = side[0] == 5;
        masked.seq_major = true;
        list.push_back(masked);
    }
    for (int64_t n : {1, 2, 3}) {  // cross lengths: decoding-like and more queries than keys
        Case c{2, 4, 2, 50 * n, 170 / n, 64};
        c.window = true;
        c.left = 20 * n;
        c.right = n == 2 ? -1 : 3;
        c.causal = n != 2;
        list.push_back(c);
    }
    Case mqa{1, 8, 1, 1, 1500, 64};  // one row against a long cache: split-KV inside a window
    mqa.window = true;
    mqa.left = 700;
    mqa.right = 0;
    list.push_back(mqa);
    Case qkv{2, 3, 3, 200, 200, 24};
    qkv.fused_qkv = true;
    qkv.window = true;
    qkv.left = qkv.right = 33;
    list.push_back(qkv);
    const size_t exact = list.size();
    for (size_t i = 0; i < exact; i += 3) {
        for (auto [dtype, compute] :
             {std::pair{TW_F16, TW_F32}, std::pair{TW_F32, TW_BF16}, std::pair{TW_BF16, TW_BF16}}) {
            Case c = list[i];
            c.dtype = dtype;
            c.compute = compute;
            list.push_back(c);
        }
    }
    return list;
}

/// Relative-position bias tables: radius 0, below, around and above the lengths, per head and
/// shared, some entries -inf, with windows, causal, dense bias, cross lengths, every precision.
std::vector<Case> rel_bias_cases() {
    std::vector<Case> list;
    for (int64_t radius : {0, 1, 3, 32, 64, 127, 500}) {
        for (int64_t n : {1, 77, 200}) {
            Case c{2, 3, 3, n, n, 64};
            c.rel = 1 + int(radius % 2);
            c.radius = radius;
            list.push_back(c);
        }
    }
    Case causal{1, 4, 2, 150, 150, 32};
    causal.rel = 1;
    causal.radius = 16;
    causal.causal = true;
    list.push_back(causal);
    Case cross{2, 2, 2, 40, 190, 48};
    cross.rel = 1;
    cross.radius = 50;
    cross.causal = true;
    list.push_back(cross);
    Case more_queries{1, 2, 2, 190, 60, 48};
    more_queries.rel = 2;
    more_queries.radius = 20;
    list.push_back(more_queries);
    Case windowed{2, 2, 1, 300, 300, 64};
    windowed.rel = 1;
    windowed.radius = 40;
    windowed.window = true;
    windowed.left = 50;
    windowed.right = 20;
    list.push_back(windowed);
    Case with_bias{2, 2, 1, 45, 80, 64};
    with_bias.rel = 1;
    with_bias.radius = 10;
    with_bias.bias = 1;
    list.push_back(with_bias);
    Case masks{2, 3, 3, 140, 140, 32};
    masks.rel = 1;
    masks.radius = 12;
    masks.rel_masks = true;
    masks.padding_mask = true;
    list.push_back(masks);
    const size_t exact = list.size();
    for (size_t i = 0; i < exact; i += 2) {
        for (auto [dtype, compute] : {std::pair{TW_BF16, TW_F32}, std::pair{TW_F32, TW_BF16}}) {
            Case c = list[i];
            c.dtype = dtype;
            c.compute = compute;
            list.push_back(c);
        }
    }
    return list;
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
    // Scores that keep growing along the keys: the lazy rescale's fallback to the exact update.
    for (Case c :
         {Case{1, 2, 2, 300, 700, 64}, Case{2, 2, 1, 200, 450, 48}, Case{1, 2, 2, 260, 260, 80}}) {
        c.growing_keys = true;
        c.causal = c.head_dim == 48;
        c.seq_major = c.head_dim == 80;
        list.push_back(c);
    }

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
    // Long strided K/V (sequence-major, fused QKV): gathered into a contiguous copy per call (fp32
    // compute only, so no half-precision copies of these).
    Case gathered{1, 4, 2, 150, 2100, 64};
    gathered.seq_major = true;
    list.push_back(gathered);
    Case gathered_qkv{1, 2, 2, 2050, 2050, 24};
    gathered_qkv.fused_qkv = true;
    list.push_back(gathered_qkv);
    // Shorter K/V whose rows are 4 KiB apart (8 heads of 128, 4 of 256), gathered once enough query
    // tiles read each row: AVX2's 24-query tiles in the first, both ISAs' tiles in the second.
    Case aliased{1, 8, 8, 400, 333, 128};
    aliased.seq_major = true;
    aliased.causal = true;
    list.push_back(aliased);
    Case aliased_gqa{1, 8, 4, 1000, 130, 256};
    aliased_gqa.seq_major = true;
    aliased_gqa.valid_lengths = true;
    list.push_back(aliased_gqa);
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
    for (const Case& c : window_cases()) list.push_back(c);
    for (const Case& c : rel_bias_cases()) list.push_back(c);
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
/// it, every row when the key is padded out, rows whose window ends before it stay finite; rows
/// that see it become NaN. fp32 and bf16 compute.
void hidden_nan_values_do_not_leak() {
    const int64_t N = 100, D = 64;
    for (int with_mask = 0; with_mask <= 2; ++with_mask) {
        for (tw_dtype compute : {TW_F32, TW_BF16}) {
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
            p.compute = compute;
            p.key_padding_mask = with_mask == 1 ? mask.data() : nullptr;
            // with_mask 2: a window of 9 keys back, so only rows 70..79 see the poisoned key.
            p.has_window = with_mask == 2;
            p.window_left = 9;
            p.window_right = 3;
            TW_CHECK(tw_attention_forward(&p) == TW_OK, "%s", tw_last_error());
            for (int64_t i = 0; i < N; ++i) {
                const bool sees_nan = with_mask == 0
                                          ? i >= poisoned
                                          : (with_mask == 2 && i >= poisoned && i <= poisoned + 9);
                bool any_nan = false;
                for (int64_t d = 0; d < D; ++d) any_nan |= std::isnan(o[i * D + d]);
                TW_CHECK(any_nan == sees_nan,
                         "isa %d mask %d compute %d row %lld: NaN %d, expected %d", tw_isa_active(),
                         with_mask, compute, (long long)i, any_nan, sees_nan);
            }
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

/// Packed sequences with a sliding window and a relative-position bias table, against float64 per
/// sequence (positions, window and distances within each sequence): random mixes with empty
/// sequences, queries without keys, causal or not, GQA, fp32 and bf16 compute.
void varlen_window_and_rel_bias_match_float64() {
    for (int round = 0; round < 16; ++round) {
        const int64_t h = 4, hkv = round % 2 ? 2 : 4, d = round % 3 ? 32 : 20;
        const bool causal = round % 4 == 1;
        const bool window = round % 4 != 3;
        const int64_t left = twtest::uniform_int(-1, 90), right = twtest::uniform_int(-1, 40);
        const bool rel = round % 4 != 2;
        const int64_t radius = twtest::uniform_int(0, 80);
        const tw_dtype compute = round >= 12 ? TW_BF16 : TW_F32;
        std::vector<int32_t> cu_q{0}, cu_k{0};
        const int64_t n = twtest::uniform_int(1, 6);
        for (int64_t s = 0; s < n; ++s) {
            const int64_t len = twtest::uniform_int(0, 1) ? twtest::uniform_int(0, 9)
                                                          : twtest::uniform_int(60, 320);
            const int64_t kl = causal ? len : (s == 1 ? 0 : len + twtest::uniform_int(0, 5));
            cu_q.push_back(cu_q.back() + int32_t(len));
            cu_k.push_back(cu_k.back() + int32_t(kl));
        }
        const int64_t tq = cu_q.back(), tk = cu_k.back();
        if (tq == 0 || tk == 0) continue;
        std::vector<float> q(tq * h * d), k(tk * hkv * d), v(tk * hkv * d), o(tq * h * d, 7.0f);
        for (auto* x : {&q, &k, &v})
            for (auto& e : *x) e = twtest::uniform(-1.5f, 1.5f);
        std::vector<float> table(h * (2 * radius + 1));
        for (auto& e : table) e = twtest::uniform(-2, 2);
        tw_attention_params p{};
        p.dtype = TW_F32;
        p.compute = compute;
        p.batch = 1;
        p.q_heads = h;
        p.kv_heads = hkv;
        p.q_len = tq;
        p.kv_len = tk;
        p.head_dim = d;
        p.q = q.data();
        p.k = k.data();
        p.v = v.data();
        p.o = o.data();
        const int64_t qs[3] = {tq * h * d, d, h * d}, ks[3] = {tk * hkv * d, d, hkv * d};
        std::memcpy(p.q_strides, qs, sizeof qs);
        std::memcpy(p.k_strides, ks, sizeof ks);
        std::memcpy(p.v_strides, ks, sizeof ks);
        std::memcpy(p.o_strides, qs, sizeof qs);
        p.scale = 1.0f / std::sqrt(float(d));
        p.causal = causal;
        p.has_window = window;
        p.window_left = left;
        p.window_right = right;
        p.rel_bias = rel ? table.data() : nullptr;
        p.rel_bias_radius = radius;
        p.rel_bias_head_stride = 2 * radius + 1;
        TW_CHECK(tw_attention_varlen_forward(&p, n, cu_q.data(), cu_k.data()) == TW_OK,
                 "varlen window/rel: %s", tw_last_error());
        double worst = 0;
        for (int64_t s = 0; s < n; ++s) {
            const int64_t q0 = cu_q[s], nq = cu_q[s + 1] - q0, k0 = cu_k[s], nk = cu_k[s + 1] - k0;
            for (int64_t hh = 0; hh < h; ++hh) {
                const int64_t g = hh / (h / hkv);
                for (int64_t i = 0; i < nq; ++i) {
                    const int64_t at = i + (nk - nq);  // aligned position within the sequence
                    std::vector<double> w(nk, -INFINITY);
                    double mx = -INFINITY, sum = 0;
                    for (int64_t j = 0; j < nk; ++j) {
                        if (causal && j > at) continue;
                        if (window && left >= 0 && j < at - left) continue;
                        if (window && right >= 0 && j > at + right) continue;
                        double dot = 0;
                        for (int64_t e = 0; e < d; ++e) {
                            dot += double(q[((q0 + i) * h + hh) * d + e]) *
                                   k[((k0 + j) * hkv + g) * d + e];
                        }
                        const int64_t dist = std::min(std::max(j - at, -radius), radius);
                        w[j] = dot * p.scale +
                               (rel ? table[hh * (2 * radius + 1) + radius + dist] : 0.0);
                        mx = std::max(mx, w[j]);
                    }
                    for (int64_t j = 0; j < nk; ++j) {
                        w[j] = w[j] == -INFINITY ? 0.0 : std::exp(w[j] - mx);
                        sum += w[j];
                    }
                    for (int64_t e = 0; e < d; ++e) {
                        double ref = 0;
                        for (int64_t j = 0; j < nk; ++j) {
                            ref += w[j] * v[((k0 + j) * hkv + g) * d + e];
                        }
                        ref = sum > 0 ? ref / sum : 0.0;
                        worst = std::max(worst, std::fabs(ref - o[((q0 + i) * h + hh) * d + e]));
                    }
                }
            }
        }
        TW_CHECK(worst < (compute == TW_BF16 ? 3e-2 : 2e-5),
                 "isa %d varlen window=%d(%lld,%lld) rel=%d R=%lld causal=%d compute=%d: error %g",
                 tw_isa_active(), window, (long long)left, (long long)right, rel, (long long)radius,
                 causal, compute, worst);
    }
}

/// A windowed call visits only the key tiles that intersect each query tile's window: at
/// N = 4096 with 64 keys each side, at most (Br + 128) / 64 + 3 tiles per query tile, against
/// N / 64 per query tile for global attention (measured through the kernels' tile counter).
void window_visits_only_its_tiles() {
    const int64_t N = 4096, D = 32, w = 64;
    std::vector<float> x(N * D), o(N * D);
    for (auto& e : x) e = twtest::uniform(-1, 1);
    tw_attention_params p{};
    p.dtype = TW_F32;
    p.compute = TW_F32;
    p.batch = p.q_heads = p.kv_heads = 1;
    p.q_len = p.kv_len = N;
    p.head_dim = D;
    p.q = p.k = p.v = x.data();
    p.o = o.data();
    for (int64_t* s : {p.q_strides, p.k_strides, p.v_strides, p.o_strides}) {
        s[0] = s[1] = N * D;
        s[2] = D;
    }
    p.scale = 0.125f;
    tw::reset_key_tiles_visited();
    TW_CHECK(tw_attention_forward(&p) == TW_OK, "%s", tw_last_error());
    const int64_t global = tw::key_tiles_visited();
    p.has_window = 1;
    p.window_left = p.window_right = w;
    tw::reset_key_tiles_visited();
    TW_CHECK(tw_attention_forward(&p) == TW_OK, "%s", tw_last_error());
    const int64_t windowed = tw::key_tiles_visited();
    // Query rows per tile: 24 (AVX2), 128 (AVX-512), key tiles of 64; the portable kernel counts
    // the key blocks (64) of each query row.
    const int64_t rows = tw_isa_active() == TW_ISA_AVX512 ? 128
                         : tw_isa_active() == TW_ISA_AVX2 ? 24
                                                          : 1;
    const int64_t query_tiles = (N + rows - 1) / rows;
    const int64_t bound = query_tiles * ((rows + 2 * w + 2) / 64 + 2);
    TW_CHECK(global >= query_tiles * (N / 64), "isa %d: global attention visited %lld key tiles",
             tw_isa_active(), (long long)global);
    TW_CHECK(windowed <= bound, "isa %d: window +-%lld visited %lld key tiles, bound %lld",
             tw_isa_active(), (long long)w, (long long)windowed, (long long)bound);
    std::printf("isa %d: key tiles visited at N=%lld: global %lld, window +-%lld %lld (%.1fx)\n",
                tw_isa_active(), (long long)N, (long long)global, (long long)w, (long long)windowed,
                double(global) / double(windowed));
}

void window_and_rel_bias_arguments_are_checked() {
    std::vector<float> x(64, 1.0f), table(3, 0.5f);
    tw_attention_params p{};
    p.dtype = TW_F32;
    p.compute = TW_F32;
    p.batch = p.q_heads = p.kv_heads = 1;
    p.q_len = p.kv_len = 1;
    p.head_dim = 64;
    p.q = p.k = p.v = x.data();
    p.o = x.data();
    p.scale = 0.125f;
    p.rel_bias = table.data();
    p.rel_bias_radius = -1;
    TW_CHECK(tw_attention_forward(&p) == TW_ERR_INVALID_ARGUMENT, "negative radius");
    TW_CHECK(std::strstr(tw_last_error(), "rel_bias_radius") != nullptr, "message: %s",
             tw_last_error());
    p.rel_bias_radius = 1;
    p.rel_bias_head_stride = -3;
    TW_CHECK(tw_attention_forward(&p) == TW_ERR_INVALID_ARGUMENT, "negative head stride");
    p.rel_bias_head_stride = 3;
    TW_CHECK(tw_attention_forward(&p) == TW_OK, "valid table: %s", tw_last_error());
    // A zero-initialised window is no window; window fields without has_window are ignored.
    p.rel_bias = nullptr;
    p.window_left = 0;
    p.window_right = 0;
    std::vector<float> q(2 * 8), kv(2 * 8), o(2 * 8);
    for (auto& e : q) e = twtest::uniform(-1, 1);
    for (auto& e : kv) e = twtest::uniform(-1, 1);
    p.q_len = p.kv_len = 2;
    p.head_dim = 8;
    p.q = q.data();
    p.k = p.v = kv.data();
    p.o = o.data();
    for (int64_t* s : {p.q_strides, p.k_strides, p.v_strides, p.o_strides}) {
        s[0] = s[1] = 16;
        s[2] = 8;
    }
    p.window_left = 0;
    p.window_right = 0;
    p.has_window = 0;
    TW_CHECK(tw_attention_forward(&p) == TW_OK, "%s", tw_last_error());
    const float first_row_global = o[0];
    p.has_window = 1;  // now each query sees only its own key: row 0 is v row 0
    TW_CHECK(tw_attention_forward(&p) == TW_OK, "%s", tw_last_error());
    TW_CHECK(std::fabs(o[0] - kv[0]) < 1e-6f && std::fabs(first_row_global - kv[0]) > 1e-6f,
             "window 0: %f (own value %f, global %f)", o[0], kv[0], first_row_global);
}

// ---- rotary embeddings ------------------------------------------------------------------------

/// Torch's fp32 sequence for one (position, i): inv_freq, the angle, cos and sin rounded to fp32.
void torch_angles(int32_t position, int64_t i, int64_t d, float theta, float* c, float* s) {
    const float exponent = float(2 * i) / float(d);
    const float inv_freq = 1.0f / float(std::pow(double(theta), double(exponent)));
    const float f = float(position) * inv_freq;
    *c = float(std::cos(double(f)));
    *s = float(std::sin(double(f)));
}

/// RoPE against an fp32 emulation of torch's eager q * cos + rotate_half(q) * sin (bit-exact) and
/// against the same rotation in float64 (close), on [tokens, 3 * H * d] fused rows with Q and K
/// rotated by one call and V left alone; positions per packed sequence, odd and large ones, and
/// negative ones. Bad arguments are refused.
void rope_matches_references() {
    struct RopeCase {
        int64_t tokens, heads, d;
        float theta;
        int positions;  // 0 packed sequences, 1 random large, 2 random with negatives
    };
    const RopeCase cases[] = {{1, 1, 2, 10000.0f, 0},     {37, 2, 64, 10000.0f, 0},
                              {300, 3, 32, 160000.0f, 0}, {129, 4, 8, 10000.0f, 1},
                              {50, 2, 128, 500000.0f, 1}, {77, 1, 6, 10.0f, 2},
                              {1000, 2, 64, 10000.0f, 0}, {5, 12, 64, 1000000.0f, 1}};
    for (const RopeCase& c : cases) {
        const int64_t hidden = c.heads * c.d, width = 3 * hidden;
        std::vector<float> x(c.tokens * width);
        for (auto& e : x) e = twtest::uniform(-3, 3);
        std::vector<int32_t> pos(c.tokens);
        int32_t next = 0;
        for (int64_t t = 0; t < c.tokens; ++t) {
            if (c.positions == 0) {
                if (twtest::uniform(0, 1) < 0.05f) next = 0;  // a new packed sequence
                pos[t] = next++;
            } else if (c.positions == 1) {
                pos[t] = int32_t(twtest::uniform_int(0, 1 << 20)) | 1;  // odd, past any table
            } else {
                pos[t] = int32_t(twtest::uniform_int(-5000, 5000));
            }
        }
        std::vector<float> y = x;
        TW_CHECK(tw_rope_apply(y.data(), c.tokens, 2 * c.heads, c.d, width, pos.data(), c.theta) ==
                     TW_OK,
                 "rope: %s", tw_last_error());
        int64_t mismatches = 0;
        double worst = 0;
        const int64_t half = c.d / 2;
        for (int64_t t = 0; t < c.tokens; ++t) {
            for (int64_t h = 0; h < 2 * c.heads; ++h) {
                const float* in = &x[t * width + h * c.d];
                const float* out = &y[t * width + h * c.d];
                for (int64_t i = 0; i < half; ++i) {
                    float cs, sn;
                    torch_angles(pos[t], i, c.d, c.theta, &cs, &sn);
                    // torch: x * cos + cat(-x2, x1) * sin, each product rounded to fp32.
                    volatile float p1 = in[i] * cs, p2 = -in[i + half] * sn;
                    volatile float p3 = in[i + half] * cs, p4 = in[i] * sn;
                    const float lo = p1 + p2, hi = p3 + p4;
                    mismatches += (lo != out[i]) + (hi != out[i + half]);
                    const double dlo = double(in[i]) * cs - double(in[i + half]) * sn;
                    const double dhi = double(in[i + half]) * cs + double(in[i]) * sn;
                    worst = std::max(worst, std::fabs(dlo - out[i]));
                    worst = std::max(worst, std::fabs(dhi - out[i + half]));
                }
            }
            // V is untouched.
            mismatches += std::memcmp(&x[t * width + 2 * hidden], &y[t * width + 2 * hidden],
                                      sizeof(float) * hidden) != 0;
        }
        TW_CHECK(mismatches == 0,
                 "rope tokens=%lld heads=%lld d=%lld: %lld values differ from torch",
                 (long long)c.tokens, (long long)c.heads, (long long)c.d, (long long)mismatches);
        TW_CHECK(worst < 4e-6, "rope tokens=%lld d=%lld: float64 error %g", (long long)c.tokens,
                 (long long)c.d, worst);
    }
    // The angles against the mathematical ones in float64: inv_freq = theta^(-2i/d) to fp32
    // precision (so the error of the angle grows with the position, as in torch).
    for (int32_t position : {1, 7, 513, 8191}) {
        for (int64_t i = 0; i < 32; ++i) {
            float cs, sn;
            torch_angles(position, i, 64, 10000.0f, &cs, &sn);
            const double angle = position * std::pow(10000.0, -2.0 * i / 64.0);
            const double tolerance = 1e-6 + 3e-7 * std::fabs(angle);
            TW_CHECK(std::fabs(cs - std::cos(angle)) < tolerance &&
                         std::fabs(sn - std::sin(angle)) < tolerance,
                     "rope angle pos %d i %lld", position, (long long)i);
        }
    }
    std::vector<float> x(64, 1.0f);
    int32_t pos[2] = {0, 1};
    TW_CHECK(tw_rope_apply(x.data(), 2, 1, 7, 32, pos, 10000.0f) == TW_ERR_INVALID_ARGUMENT,
             "odd head_dim");
    TW_CHECK(tw_rope_apply(x.data(), 2, 2, 16, 16, pos, 10000.0f) == TW_ERR_INVALID_ARGUMENT,
             "overlapping rows");
    TW_CHECK(tw_rope_apply(x.data(), 2, 1, 16, 32, pos, 0.0f) == TW_ERR_INVALID_ARGUMENT,
             "theta 0");
    TW_CHECK(tw_rope_apply(x.data(), 2, 1, 16, 32, pos, NAN) == TW_ERR_INVALID_ARGUMENT,
             "theta NaN");
    TW_CHECK(tw_rope_apply(x.data(), 2, 1, 16, 32, nullptr, 10000.0f) == TW_ERR_INVALID_ARGUMENT,
             "null positions");
    TW_CHECK(tw_rope_apply(nullptr, 0, 1, 16, 32, nullptr, 10000.0f) == TW_OK, "no tokens");
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
        varlen_window_and_rel_bias_match_float64();
        window_visits_only_its_tiles();
    }
    // AVX-512 bf16 compute has two paths, dot products and rounded fp32 operands, of which the CPU
    // vendor picks one (bf16_dot_outruns_fma): the other one too.
    if (tw_isa_detected() == TW_ISA_AVX512 && (tw_cpu_features() & TW_CPU_AVX512_BF16)) {
        TW_CHECK(tw_set_isa(TW_ISA_AVX512) == TW_OK, "set isa avx512");
        const bool dot = tw::bf16_dot_outruns_fma();
        tw::allow_bf16_dot_products(!dot);
        std::printf("isa 2, bf16 dot products %s: %zu cases\n", dot ? "off" : "on", all.size());
        for (const Case& c : all) run_case(c);
        hidden_nan_values_do_not_leak();
        varlen_matches_float64();
        tw::allow_bf16_dot_products(dot);
    }
    window_and_rel_bias_arguments_are_checked();
    rope_matches_references();
    return twtest::finish("attention_test");
}
