/* One int8 state against the int8 catalogue copy of GRU4Rec's output matrix (candidates.py).
 *
 * Why: oneDNN's kernel behind torch._int_mm is fast only with AVX512-VNNI; on an AVX2-only CPU
 * (an AMD EPYC seen here) it took 4.7 ms for 40,000 x 100, twice the fp32 mat-vec it replaces.
 * This kernel takes 0.27 ms there. Built by `python -m recommendations.gru4rec.native build`
 * (make venv does it); the engine loads it with ctypes and times it against the others.
 *
 * Layout ("blocked"): rows in blocks of 8, the state length K in groups of 4; block b, group g
 * holds the 32 bytes q[8b + r][4g + i] at offset (b * K/4 + g) * 32 + 4 r + i. One 32-byte load
 * then feeds eight rows' sums in the eight int32 lanes of an AVX2 register.
 *
 * Exactness: every value must lie in [-127, 127] (the scorer's quantisation guarantees it). The
 * products are formed as |a| (unsigned) times q * sign(a) (signed), so vpmaddubsw's pairs are at
 * most 2 * 127 * 127 = 32258 and never saturate; the int32 sums are exact for K < 2^31 / 127^2.
 * The fused scores round in fp32 in the order of candidates.Int8Scorer._approx's numpy version
 * ((float) sum * scale * t + bias, one rounding per operation; built with -ffp-contract=off), so
 * both give the same bits. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GRU4REC_I8_VERSION 1

int gru4rec_i8_version(void) { return GRU4REC_I8_VERSION; }

static void sums_scalar(const int8_t *q, const int8_t *a, int32_t *out, size_t rows, size_t k4) {
    for (size_t b = 0; b < rows / 8; b++) {
        const int8_t *blk = q + b * k4 * 32;
        int32_t acc[8] = {0};
        for (size_t g = 0; g < k4; g++)
            for (int r = 0; r < 8; r++)
                for (int i = 0; i < 4; i++) acc[r] += (int32_t)blk[32 * g + 4 * r + i] * (int32_t)a[4 * g + i];
        memcpy(out + 8 * b, acc, sizeof acc);
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
/* Software prefetch of the rows two pairs of blocks ahead (~3 KB for K = 104): with the catalogue
 * copy out of cache, as between a web worker's requests, the hardware prefetcher stops at each 4 KB
 * page; 40,000 x 104 took 0.78-0.81 ms cold with it against 1.16-1.36 ms without (AVX2 EPYC). */
#define PREFETCH_AHEAD 2

__attribute__((target("avx2"))) static inline __m256i dot8(__m256i acc, __m256i ua, __m256i sa, const int8_t *p) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i prod = _mm256_maddubs_epi16(ua, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)p), sa));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(prod, ones));
}

/* One block's eight sums to the output: the int32 sums (score NULL), or the scores (float) sum *
 * scale * t + bias, each operation rounded to fp32 (cvtepi32_ps is exact below 2^24). */
__attribute__((target("avx2"))) static inline void emit(__m256i acc, size_t b, int32_t *sums, const float *scale,
                                                        const float *bias, __m256 t, float *score) {
    if (!score) {
        _mm256_storeu_si256((__m256i *)(sums + 8 * b), acc);
        return;
    }
    __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(scale + 8 * b));
    s = _mm256_mul_ps(s, t);
    _mm256_storeu_ps(score + 8 * b, _mm256_add_ps(s, _mm256_loadu_ps(bias + 8 * b)));
}

__attribute__((target("avx2"))) static void run_avx2(const int8_t *q, const int8_t *a, int32_t *sums, size_t rows,
                                                      size_t k4, const float *scale, const float *bias, float t,
                                                      float *score) {
    size_t b = 0, nb = rows / 8;
    const size_t stride = k4 * 32;
    const __m256 tv = _mm256_set1_ps(t);
    for (; b + 2 <= nb; b += 2) {  /* two blocks share each broadcast of the state */
        const int8_t *p = q + b * stride;
        if (b + 2 * PREFETCH_AHEAD + 2 <= nb)  /* the pair PREFETCH_AHEAD pairs ahead */
            for (size_t o = 0; o < 2 * stride; o += 64)
                _mm_prefetch((const char *)(p + 2 * PREFETCH_AHEAD * stride + o), _MM_HINT_T0);
        __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
        for (size_t g = 0; g < k4; g++) {
            int32_t a4;
            memcpy(&a4, a + 4 * g, 4);
            __m256i sa = _mm256_set1_epi32(a4), ua = _mm256_abs_epi8(sa);
            c0 = dot8(c0, ua, sa, p + 32 * g);
            c1 = dot8(c1, ua, sa, p + stride + 32 * g);
        }
        emit(c0, b, sums, scale, bias, tv, score);
        emit(c1, b + 1, sums, scale, bias, tv, score);
    }
    for (; b < nb; b++) {
        const int8_t *p = q + b * stride;
        __m256i c0 = _mm256_setzero_si256();
        for (size_t g = 0; g < k4; g++) {
            int32_t a4;
            memcpy(&a4, a + 4 * g, 4);
            __m256i sa = _mm256_set1_epi32(a4);
            c0 = dot8(c0, _mm256_abs_epi8(sa), sa, p + 32 * g);
        }
        emit(c0, b, sums, scale, bias, tv, score);
    }
}
#endif

/* Which path gru4rec_i8_sums takes on this CPU: 2 = AVX2, 0 = portable C. */
int gru4rec_i8_isa(void) {
    static int isa = -1;  /* a benign race: every thread computes the same value */
    if (isa < 0) {
        isa = 0;
#ifdef HAVE_AVX2_PATH
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2")) isa = 2;
#endif
    }
    return isa;
}

/* out[r] = sum_k a[k] q[r][k] for the blocked q ([rows / 8][k4][8][4]); rows a multiple of 8.
 * force_portable != 0 takes the portable path (tests compare the two). */
void gru4rec_i8_sums(const int8_t *q, const int8_t *a, int32_t *out, size_t rows, size_t k4, int force_portable) {
#ifdef HAVE_AVX2_PATH
    if (!force_portable && gru4rec_i8_isa() == 2) {
        run_avx2(q, a, out, rows, k4, NULL, NULL, 0.0f, NULL);
        return;
    }
#endif
    (void)force_portable;
    sums_scalar(q, a, out, rows, k4);
}

/* The approximate scores of candidates.py: score[r] = (float) sum_r * scale[r] * t + bias[r], each
 * operation rounded to fp32 in that order (the build's -ffp-contract=off keeps them apart). sums is
 * scratch space of rows int32 (the portable path's). */
void gru4rec_i8_scores(const int8_t *q, const int8_t *a, const float *scale, const float *bias, float t,
                       int32_t *sums, float *score, size_t rows, size_t k4, int force_portable) {
#ifdef HAVE_AVX2_PATH
    if (!force_portable && gru4rec_i8_isa() == 2) {
        run_avx2(q, a, NULL, rows, k4, scale, bias, t, score);
        return;
    }
#endif
    sums_scalar(q, a, sums, rows, k4);
    for (size_t r = 0; r < rows; r++) {
        float s = (float)sums[r] * scale[r];
        s = s * t;
        score[r] = s + bias[r];
    }
}
