/* momentumlab's CPU optimizer kernels: a read-only statistics pass, then one update pass.
 *
 * Every function takes n tensors as arrays of data pointers and sizes, hyperparameters as
 * runtime arguments (an LR scheduler never recompiles anything) and the thread count of
 * torch's pool.  The work is split into chunks of whole rows (~CHUNK values); a chunk's
 * partial sums land in their own slot and are added per tensor in chunk order afterwards,
 * so every statistic is the same whatever the number of threads.  Sums are kept in double.
 *
 * The update rules are those of theory/rules.py (vradam, tam, adatam, adamp, sgdp); the
 * Python side (empirics/optim/native/__init__.py) turns the statistics into the per-tensor
 * and per-row coefficients named below.  Compiled once per scalar type (T = float, double).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 32768
#define SQRT_f32 sqrtf
#define SQRT_f64 sqrt

/* rowlen[i] > 0: tensor i is sizes[i]/rowlen[i] rows; 0: one row, chunked freely */
static int64_t *row_offsets(int n, const int64_t *sizes, const int64_t *rowlen) {
    int64_t *off = (int64_t *)malloc(sizeof(int64_t) * (n + 1));
    off[0] = 0;
    for (int i = 0; i < n; i++)
        off[i + 1] = off[i] + (rowlen[i] > 0 ? (sizes[i] > 0 ? sizes[i] / rowlen[i] : 0) : 1);
    return off;
}

typedef struct { int64_t tensor, begin, end, row0; } chunk_t;

/* chunks of whole rows: tensor i has sizes[i] values in rows of rowlen[i] (0: one flat chunking) */
static chunk_t *make_chunks(int n, const int64_t *sizes, const int64_t *rowlen, int64_t *count) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        int64_t r = (rowlen && rowlen[i] > 0) ? rowlen[i] : 1;
        int64_t per = CHUNK / r > 0 ? (CHUNK / r) * r : r;
        total += sizes[i] > 0 ? (sizes[i] + per - 1) / per : 0;
    }
    chunk_t *c = (chunk_t *)malloc(sizeof(chunk_t) * (total > 0 ? total : 1));
    int64_t k = 0;
    for (int i = 0; i < n; i++) {
        int64_t r = (rowlen && rowlen[i] > 0) ? rowlen[i] : 1;
        int64_t per = CHUNK / r > 0 ? (CHUNK / r) * r : r;
        for (int64_t b = 0; b < sizes[i]; b += per) {
            c[k].tensor = i; c[k].begin = b;
            c[k].end = b + per < sizes[i] ? b + per : sizes[i];
            c[k].row0 = b / r;
            k++;
        }
    }
    *count = k;
    return c;
}


/* ---- inner loops.  Sums use several independent double accumulators (so no add-latency
 * chain binds them).  For float32 on AVX2 the square root of Adam's denominator is rsqrt +
 * one Newton step (|rel. error| < 2^-22, two ulp) instead of vsqrtps, which shares the
 * divider with the division (no measurable gain on the memory-bound 2-core EPYC it was
 * developed on); the division itself stays exact.  float64 uses sqrt and / throughout. */
#define LANES 16

#define DEFINE_SUMS(T, S)                                                                         \
static void sums3_##S(const T *x, const T *y, int64_t b, int64_t e, double *o) {                \
    double a0[LANES] = {0}, a1[LANES] = {0}, a2[LANES] = {0};                                     \
    int64_t j = b;                                                                                \
    for (; j + LANES <= e; j += LANES) {                                                          \
        _Pragma("omp simd")                                                                       \
        for (int l = 0; l < LANES; l++) {                                                         \
            double xv = x[j + l], yv = y[j + l];                                                  \
            a0[l] += xv * yv; a1[l] += xv * xv; a2[l] += yv * yv;                                 \
        }                                                                                         \
    }                                                                                             \
    double s0 = 0, s1 = 0, s2 = 0;                                                                \
    for (; j < e; j++) { double xv = x[j], yv = y[j]; s0 += xv * yv; s1 += xv * xv; s2 += yv * yv; } \
    for (int l = 0; l < LANES; l++) { s0 += a0[l]; s1 += a1[l]; s2 += a2[l]; }                    \
    o[0] = s0; o[1] = s1; o[2] = s2;                                                              \
}                                                                                                 \
/* sum (a x + b y)^2, or sum y^2 when x is NULL */                                                \
static double sumsq_##S(const T *x, const T *y, double a, double b, int64_t lo, int64_t e) {    \
    double acc[LANES] = {0};                                                                      \
    const T ta = (T)a, tb = (T)b;                                                                 \
    int64_t j = lo;                                                                               \
    if (x) {                                                                                      \
        for (; j + LANES <= e; j += LANES) {                                                      \
            _Pragma("omp simd")                                                                   \
            for (int l = 0; l < LANES; l++) { T u = ta * x[j + l] + tb * y[j + l]; acc[l] += (double)u * u; } \
        }                                                                                         \
    } else {                                                                                      \
        for (; j + LANES <= e; j += LANES) {                                                      \
            _Pragma("omp simd")                                                                   \
            for (int l = 0; l < LANES; l++) { double u = y[j + l]; acc[l] += u * u; }             \
        }                                                                                         \
    }                                                                                             \
    double s = 0;                                                                                 \
    for (; j < e; j++) { double u = x ? (double)(ta * x[j] + tb * y[j]) : (double)y[j]; s += u * u; } \
    for (int l = 0; l < LANES; l++) s += acc[l];                                                  \
    return s;                                                                                     \
}                                                                                                 \
/* per row: (g.w, g.g, w.w, w.u), u = b1 m + b2 g (SGDP's new buffer) */                          \
static void rowsgd_##S(const T *w, const T *g, const T *m, double b1, double b2, int64_t lo,    \
                       int64_t e, double *o) {                                                    \
    double a0[8] = {0}, a1[8] = {0}, a2[8] = {0}, a3[8] = {0};                                    \
    const T tb1 = (T)b1, tb2 = (T)b2;                                                             \
    int64_t j = lo;                                                                               \
    for (; j + 8 <= e; j += 8) {                                                                  \
        _Pragma("omp simd")                                                                       \
        for (int l = 0; l < 8; l++) {                                                             \
            T gj = g[j + l], wj = w[j + l], u = tb1 * m[j + l] + tb2 * gj;                        \
            a0[l] += (double)gj * wj; a1[l] += (double)gj * gj; a2[l] += (double)wj * wj; a3[l] += (double)wj * u; \
        }                                                                                         \
    }                                                                                             \
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                        \
    for (; j < e; j++) {                                                                          \
        T gj = g[j], wj = w[j], u = tb1 * m[j] + tb2 * gj;                                        \
        s0 += (double)gj * wj; s1 += (double)gj * gj; s2 += (double)wj * wj; s3 += (double)wj * u; \
    }                                                                                             \
    for (int l = 0; l < 8; l++) { s0 += a0[l]; s1 += a1[l]; s2 += a2[l]; s3 += a3[l]; }           \
    o[0] = s0; o[1] = s1; o[2] = s2; o[3] = s3;                                                   \
}

DEFINE_SUMS(float, f32)
DEFINE_SUMS(double, f64)

/* Adam's u = m_t / (sqrt(v_t) c + eps), from m, v, g (not written) or in place (written) */
#define ADAM_U(T, S, SQRT)                                                                        \
static __attribute__((unused)) void rowadam_##S(const T *w, const T *g, const T *m, const T *v, T b1, T b1c, T b2,     \
                        T b2c, T c, T eps, int64_t lo, int64_t e, double *o) {                    \
    double a0[8] = {0}, a1[8] = {0}, a2[8] = {0}, a3[8] = {0};                                    \
    int64_t j = lo;                                                                               \
    for (; j + 8 <= e; j += 8) {                                                                  \
        _Pragma("omp simd")                                                                       \
        for (int l = 0; l < 8; l++) {                                                             \
            T gj = g[j + l], wj = w[j + l];                                                       \
            T mt = b1 * m[j + l] + b1c * gj, vt = b2 * v[j + l] + b2c * gj * gj;                 \
            T u = mt / (SQRT(vt) * c + eps);                                                      \
            a0[l] += (double)gj * wj; a1[l] += (double)gj * gj; a2[l] += (double)wj * wj; a3[l] += (double)wj * u; \
        }                                                                                         \
    }                                                                                             \
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                        \
    for (; j < e; j++) {                                                                          \
        T gj = g[j], wj = w[j];                                                                   \
        T mt = b1 * m[j] + b1c * gj, vt = b2 * v[j] + b2c * gj * gj;                             \
        T u = mt / (SQRT(vt) * c + eps);                                                          \
        s0 += (double)gj * wj; s1 += (double)gj * gj; s2 += (double)wj * wj; s3 += (double)wj * u; \
    }                                                                                             \
    for (int l = 0; l < 8; l++) { s0 += a0[l]; s1 += a1[l]; s2 += a2[l]; s3 += a3[l]; }           \
    o[0] = s0; o[1] = s1; o[2] = s2; o[3] = s3;                                                   \
}                                                                                                 \
static __attribute__((unused)) void adamrow_##S(T *p, const T *g, T *m, T *v, T b1, T k, T b2, T b2c, T c, T eps, T s,  \
                        T d, int64_t lo, int64_t e) {                                             \
    _Pragma("omp simd")                                                                           \
    for (int64_t j = lo; j < e; j++) {                                                            \
        T gj = g[j];                                                                              \
        T mt = b1 * m[j] + k * gj, vt = b2 * v[j] + b2c * gj * gj;                               \
        m[j] = mt; v[j] = vt;                                                                     \
        p[j] = p[j] * d - s * (mt / (SQRT(vt) * c + eps));                                        \
    }                                                                                             \
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <float.h>
/* sqrt(v) for v >= 0 as v * rsqrt(v) refined by one Newton step; 0 -> 0, inf -> sqrt(FLT_MAX) */
static inline __m256 sqrt_nr(__m256 v) {
    __m256 x = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(FLT_MIN)), _mm256_set1_ps(FLT_MAX));
    __m256 y = _mm256_rsqrt_ps(x);
    __m256 xyy = _mm256_mul_ps(_mm256_mul_ps(x, y), y);
    y = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), y), _mm256_sub_ps(_mm256_set1_ps(3.0f), xyy));
    return _mm256_mul_ps(_mm256_min_ps(v, _mm256_set1_ps(FLT_MAX)), y);
}
static inline float sqrt_nr1(float v) {
    float out[8];
    _mm256_storeu_ps(out, sqrt_nr(_mm256_set1_ps(v)));
    return out[0];
}
ADAM_U(float, f32_tail, sqrt_nr1)
static void rowadam_f32(const float *w, const float *g, const float *m, const float *v, float b1,
                        float b1c, float b2, float b2c, float c, float eps, int64_t lo, int64_t e,
                        double *o) {
    __m256d a[8];
    for (int q = 0; q < 8; q++) a[q] = _mm256_setzero_pd();
    const __m256 vb1 = _mm256_set1_ps(b1), vb1c = _mm256_set1_ps(b1c), vb2 = _mm256_set1_ps(b2),
                 vb2c = _mm256_set1_ps(b2c), vc = _mm256_set1_ps(c), ve = _mm256_set1_ps(eps);
    int64_t j = lo;
    for (; j + 8 <= e; j += 8) {
        __m256 gj = _mm256_loadu_ps(g + j), wj = _mm256_loadu_ps(w + j);
        __m256 mt = _mm256_fmadd_ps(vb1, _mm256_loadu_ps(m + j), _mm256_mul_ps(vb1c, gj));
        __m256 vt = _mm256_fmadd_ps(vb2, _mm256_loadu_ps(v + j), _mm256_mul_ps(vb2c, _mm256_mul_ps(gj, gj)));
        __m256 u = _mm256_div_ps(mt, _mm256_fmadd_ps(sqrt_nr(vt), vc, ve));
        __m256d gl = _mm256_cvtps_pd(_mm256_castps256_ps128(gj)), gh = _mm256_cvtps_pd(_mm256_extractf128_ps(gj, 1));
        __m256d wl = _mm256_cvtps_pd(_mm256_castps256_ps128(wj)), wh = _mm256_cvtps_pd(_mm256_extractf128_ps(wj, 1));
        __m256d ul = _mm256_cvtps_pd(_mm256_castps256_ps128(u)), uh = _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1));
        a[0] = _mm256_fmadd_pd(gl, wl, a[0]); a[1] = _mm256_fmadd_pd(gh, wh, a[1]);
        a[2] = _mm256_fmadd_pd(gl, gl, a[2]); a[3] = _mm256_fmadd_pd(gh, gh, a[3]);
        a[4] = _mm256_fmadd_pd(wl, wl, a[4]); a[5] = _mm256_fmadd_pd(wh, wh, a[5]);
        a[6] = _mm256_fmadd_pd(wl, ul, a[6]); a[7] = _mm256_fmadd_pd(wh, uh, a[7]);
    }
    double t[4];
    rowadam_f32_tail(w, g, m, v, b1, b1c, b2, b2c, c, eps, j, e, t);
    for (int q = 0; q < 4; q++) {
        double lanes[8];
        _mm256_storeu_pd(lanes, a[2 * q]); _mm256_storeu_pd(lanes + 4, a[2 * q + 1]);
        double s = t[q];
        for (int l = 0; l < 8; l++) s += lanes[l];
        o[q] = s;
    }
}
static void adamrow_f32(float *p, const float *g, float *m, float *v, float b1, float k, float b2,
                        float b2c, float c, float eps, float s, float d, int64_t lo, int64_t e) {
    const __m256 vb1 = _mm256_set1_ps(b1), vk = _mm256_set1_ps(k), vb2 = _mm256_set1_ps(b2),
                 vb2c = _mm256_set1_ps(b2c), vc = _mm256_set1_ps(c), ve = _mm256_set1_ps(eps),
                 vs = _mm256_set1_ps(s), vd = _mm256_set1_ps(d);
    int64_t j = lo;
    for (; j + 8 <= e; j += 8) {
        __m256 gj = _mm256_loadu_ps(g + j);
        __m256 mt = _mm256_fmadd_ps(vb1, _mm256_loadu_ps(m + j), _mm256_mul_ps(vk, gj));
        __m256 vt = _mm256_fmadd_ps(vb2, _mm256_loadu_ps(v + j), _mm256_mul_ps(vb2c, _mm256_mul_ps(gj, gj)));
        _mm256_storeu_ps(m + j, mt); _mm256_storeu_ps(v + j, vt);
        __m256 u = _mm256_div_ps(mt, _mm256_fmadd_ps(sqrt_nr(vt), vc, ve));
        _mm256_storeu_ps(p + j, _mm256_fnmadd_ps(vs, u, _mm256_mul_ps(_mm256_loadu_ps(p + j), vd)));
    }
    for (; j < e; j++) {
        float gj = g[j], mt = b1 * m[j] + k * gj, vt = b2 * v[j] + b2c * gj * gj;
        m[j] = mt; v[j] = vt;
        p[j] = p[j] * d - s * (mt / (sqrt_nr1(vt) * c + eps));
    }
}
#define NATIVE_SQRT_F32 "rsqrt+newton (AVX2)"
#else
ADAM_U(float, f32, sqrtf)
#define NATIVE_SQRT_F32 "sqrtf"
#endif
ADAM_U(double, f64, sqrt)

#define DEFINE_KERNELS(T, S)                                                                      \
/* Per tensor: mode 0 -> out[i] = sum (a x + b y)^2 (VRAdam's |m_t|^2, x = m, y = g);           \
 * mode 1 -> out[i] = sum y^2 (VRAdam's gradient gate); mode 2 -> out[3i..3i+2] =                \
 * (x.y, x.x, y.y) (TAM's alignment terms, x = m_{t-1}, y = g_t).  Reads only. */                 \
void tensor_sums_##S(int n, T **x, T **y, const int64_t *sizes, int mode, double a, double b,    \
                     double *out, int nthreads) {                                                 \
    int64_t nc;                                                                                   \
    chunk_t *ch = make_chunks(n, sizes, NULL, &nc);                                               \
    double *part = (double *)calloc(3 * (nc > 0 ? nc : 1), sizeof(double));                       \
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nthreads)")                        \
    for (int64_t k = 0; k < nc; k++) {                                                            \
        const T *xs = x ? x[ch[k].tensor] : NULL, *ys = y[ch[k].tensor];                          \
        if (mode == 2) sums3_##S(xs, ys, ch[k].begin, ch[k].end, part + 3 * k);                   \
        else part[3 * k] = sumsq_##S(mode == 0 ? xs : NULL, ys, a, b, ch[k].begin, ch[k].end);      \
    }                                                                                             \
    int w = mode == 2 ? 3 : 1;                                                                    \
    memset(out, 0, sizeof(double) * w * n);                                                       \
    for (int64_t k = 0; k < nc; k++)                                                              \
        for (int q = 0; q < w; q++) out[w * ch[k].tensor + q] += part[3 * k + q];                 \
    free(part); free(ch);                                                                         \
}                                                                                                 \
                                                                                                  \
/* Per row r of each tensor (rows of rowlen[i] values): out[4r..4r+3] = (g.w, g.g, w.w, w.u)    \
 * with u the update before projection: kind 0 (AdamP) u = m_t/(sqrt(v_t) c1[i] + eps),         \
 * m_t = b1 m + (1-b1) g, v_t = b2 v + (1-b2) g^2; kind 1 (SGDP) u = b1 m + b2 g (the new        \
 * buffer; v unused); kind 2: (g.w, g.g, w.w) only (m, v unused).  Reads only. */                      \
void row_stats_##S(int n, T **w, T **g, T **m, T **v, const int64_t *sizes,                     \
                   const int64_t *rowlen, int kind, double b1, double b2, double eps,             \
                   const double *c1, double *out, int nthreads) {                                 \
    int64_t nc;                                                                                   \
    chunk_t *ch = make_chunks(n, sizes, rowlen, &nc);                                             \
    int64_t *rowoff = row_offsets(n, sizes, rowlen);                                             \
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nthreads)")                        \
    for (int64_t k = 0; k < nc; k++) {                                                            \
        int64_t i = ch[k].tensor, L = rowlen[i] > 0 ? rowlen[i] : sizes[i];                      \
        const T *ws = w[i], *gs = g[i], *ms = kind < 2 ? m[i] : NULL, *vs = kind == 0 ? v[i] : NULL;                \
        for (int64_t r0 = ch[k].begin; r0 < ch[k].end; r0 += L) {                                 \
            double *o = out + 4 * (rowoff[i] + r0 / L);                                           \
            if (kind == 0)                                                                        \
                rowadam_##S(ws, gs, ms, vs, (T)b1, (T)(1 - b1), (T)b2, (T)(1 - b2), (T)c1[i],       \
                            (T)eps, r0, r0 + L, o);                                               \
            else if (kind == 1)                                                                   \
                rowsgd_##S(ws, gs, ms, b1, b2, r0, r0 + L, o);                                    \
            else                                                                                  \
                rowsgd_##S(ws, gs, gs, 0.0, 0.0, r0, r0 + L, o);                                  \
        }                                                                                         \
    }                                                                                             \
    free(rowoff); free(ch);                                                                       \
}                                                                                                 \
                                                                                                  \
/* Adam-type update.  m <- b1 m + k[i] g (k = 1-b1 for Adam, eps + d_t for AdaTAM);              \
 * v <- b2 v + (1-b2) g^2; u = m/(sqrt(v) c1[i] + eps); p <- p decay[row] - s[i] u               \
 * (rows as in row_offsets; rowlen 0: one decay per tensor). */                                   \
void adam_update_##S(int n, T **p, T **g, T **m, T **v, const int64_t *sizes,                   \
                     const int64_t *rowlen, double b1, double b2, double eps, const double *k1,  \
                     const double *c1, const double *s, const double *rowdecay, int nthreads) {  \
    int64_t nc;                                                                                   \
    chunk_t *ch = make_chunks(n, sizes, rowlen, &nc);                                             \
    int64_t *rowoff = row_offsets(n, sizes, rowlen);                                             \
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nthreads)")                        \
    for (int64_t k = 0; k < nc; k++) {                                                            \
        int64_t i = ch[k].tensor;                                                                 \
        int64_t L = rowlen[i] > 0 ? rowlen[i] : ch[k].end - ch[k].begin;                         \
        for (int64_t r0 = ch[k].begin; r0 < ch[k].end; r0 += L)                                   \
            adamrow_##S(p[i], g[i], m[i], v[i], (T)b1, (T)k1[i], (T)b2, (T)(1 - b2), (T)c1[i],      \
                        (T)eps, (T)s[i], (T)rowdecay[rowoff[i] + (rowlen[i] > 0 ? r0 / L : 0)],      \
                        r0, r0 + L);                                                              \
    }                                                                                             \
    free(rowoff); free(ch);                                                                       \
}                                                                                                 \
                                                                                                  \
/* Momentum update.  b_new = mu b + k[i] g; d = b_new - c[row] p (c = 0: no projection);         \
 * b <- d if keep_projected else b_new; p <- p decay[row] - s[i] d.                              \
 * TAM: k = eps + d_t, c = 0; SGDP: k = 1 - dampening, c = AdamP's per-row coefficient. */       \
void momentum_update_##S(int n, T **p, T **g, T **b, const int64_t *sizes,                      \
                         const int64_t *rowlen, double mu, const double *k1, const double *s,    \
                         const double *rowdecay, const double *rowcoef, int keep_projected,      \
                         int nthreads) {                                                          \
    int64_t nc;                                                                                   \
    chunk_t *ch = make_chunks(n, sizes, rowlen, &nc);                                             \
    int64_t *rowoff = row_offsets(n, sizes, rowlen);                                             \
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nthreads)")                        \
    for (int64_t k = 0; k < nc; k++) {                                                            \
        int64_t i = ch[k].tensor, L = rowlen[i] > 0 ? rowlen[i] : ch[k].end - ch[k].begin;       \
        T *ps = p[i], *bs = b[i];                                                                 \
        const T *gs = g[i];                                                                       \
        const T tmu = (T)mu, tk = (T)k1[i], ts = (T)s[i];                                         \
        for (int64_t r0 = ch[k].begin; r0 < ch[k].end; r0 += L) {                                 \
            int64_t row = rowoff[i] + (rowlen[i] > 0 ? r0 / L : 0);                                                     \
            const T td = (T)rowdecay[row], tcf = rowcoef ? (T)rowcoef[row] : (T)0;                \
            if (rowcoef && keep_projected) {                                                      \
                _Pragma("omp simd")                                                               \
                for (int64_t j = r0; j < r0 + L; j++) {                                           \
                    T pj = ps[j], d = tmu * bs[j] + tk * gs[j] - tcf * pj;                        \
                    bs[j] = d; ps[j] = pj * td - ts * d;                                          \
                }                                                                                 \
            } else if (rowcoef) {                                                                 \
                _Pragma("omp simd")                                                               \
                for (int64_t j = r0; j < r0 + L; j++) {                                           \
                    T pj = ps[j], bn = tmu * bs[j] + tk * gs[j];                                  \
                    bs[j] = bn; ps[j] = pj * td - ts * (bn - tcf * pj);                           \
                }                                                                                 \
            } else {                                                                              \
                _Pragma("omp simd")                                                               \
                for (int64_t j = r0; j < r0 + L; j++) {                                           \
                    T bn = tmu * bs[j] + tk * gs[j];                                              \
                    bs[j] = bn; ps[j] = ps[j] * td - ts * bn;                                     \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    free(rowoff); free(ch);                                                                       \
}                                                                                                 \
                                                                                                  \
/* Channel-view projection done row by row while the row is in cache (AdamP / SGDP when the   \
 * cosine test picked the channel view for every tensor given).  Per row: first the moments /  \
 * new buffer (kind 0: Adam, m, v written; kind 1: momentum, nothing written) with u kept in a \
 * row buffer and w.u, w.w summed; then c = w.u/(|w| + eps)^2 and                              \
 * p <- p (base[i] + s[i] c) - s[i] u (kind 0), or d = u - c p, b <- d or u (keep_projected),  \
 * p <- p base[i] - s[i] d (kind 1). */                                                         \
void channel_update_##S(int n, T **p, T **g, T **m, T **v, const int64_t *sizes,               \
                        const int64_t *rowlen, int kind, double b1, double b2, double eps,       \
                        const double *k1, const double *c1, const double *s, const double *base, \
                        int keep_projected, int nthreads) {                                      \
    int64_t nc;                                                                                   \
    chunk_t *ch = make_chunks(n, sizes, rowlen, &nc);                                             \
    _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nthreads)")                        \
    for (int64_t k = 0; k < nc; k++) {                                                            \
        int64_t i = ch[k].tensor, L = rowlen[i];                                                  \
        T *ps = p[i], *ms = m[i], *vs = kind == 0 ? v[i] : NULL;                                  \
        const T *gs = g[i];                                                                       \
        T *u = (T *)malloc(sizeof(T) * L);                                                        \
        const T tb1 = (T)b1, tk = (T)k1[i], tb2 = (T)b2, tb2c = (T)(1 - b2);                       \
        const T tc = (T)c1[i], te = (T)eps, ts = (T)s[i], tbase = (T)base[i];                      \
        for (int64_t r0 = ch[k].begin; r0 < ch[k].end; r0 += L) {                                 \
            double awu[8] = {0}, aww[8] = {0};                                                    \
            int64_t j0 = 0;                                                                       \
            for (; j0 + 8 <= L; j0 += 8) {                                                        \
                if (kind == 0) {                                                                  \
                    _Pragma("omp simd")                                                           \
                    for (int l = 0; l < 8; l++) {                                                 \
                        int64_t j = r0 + j0 + l;                                                  \
                        T gj = gs[j], wj = ps[j];                                                 \
                        T mt = tb1 * ms[j] + tk * gj, vt = tb2 * vs[j] + tb2c * gj * gj;         \
                        ms[j] = mt; vs[j] = vt;                                                   \
                        T uj = mt / (SQRT_##S(vt) * tc + te);                                     \
                        u[j0 + l] = uj; awu[l] += (double)wj * uj; aww[l] += (double)wj * wj;     \
                    }                                                                             \
                } else {                                                                          \
                    _Pragma("omp simd")                                                           \
                    for (int l = 0; l < 8; l++) {                                                 \
                        int64_t j = r0 + j0 + l;                                                  \
                        T wj = ps[j], uj = tb1 * ms[j] + tk * gs[j];                              \
                        u[j0 + l] = uj; awu[l] += (double)wj * uj; aww[l] += (double)wj * wj;     \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
            double wu = 0, ww = 0;                                                                \
            for (; j0 < L; j0++) {                                                                \
                int64_t j = r0 + j0;                                                              \
                T gj = gs[j], wj = ps[j], uj;                                                     \
                if (kind == 0) {                                                                  \
                    T mt = tb1 * ms[j] + tk * gj, vt = tb2 * vs[j] + tb2c * gj * gj;             \
                    ms[j] = mt; vs[j] = vt;                                                       \
                    uj = mt / (SQRT_##S(vt) * tc + te);                                           \
                } else {                                                                          \
                    uj = tb1 * ms[j] + tk * gj;                                                   \
                }                                                                                 \
                u[j0] = uj; wu += (double)wj * uj; ww += (double)wj * wj;                         \
            }                                                                                     \
            for (int l = 0; l < 8; l++) { wu += awu[l]; ww += aww[l]; }                           \
            double nw = sqrt(ww) + eps;                                                           \
            const T cf = (T)(wu / (nw * nw));                                                     \
            if (kind == 0) {                                                                      \
                const T a = (T)(base[i] + s[i] * (wu / (nw * nw)));                               \
                _Pragma("omp simd")                                                               \
                for (int64_t j = 0; j < L; j++) ps[r0 + j] = ps[r0 + j] * a - ts * u[j];          \
            } else {                                                                              \
                _Pragma("omp simd")                                                               \
                for (int64_t j = 0; j < L; j++) {                                                 \
                    T pj = ps[r0 + j], d = u[j] - cf * pj;                                        \
                    ms[r0 + j] = keep_projected ? d : u[j];                                       \
                    ps[r0 + j] = pj * tbase - ts * d;                                             \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        free(u);                                                                                  \
    }                                                                                             \
    free(ch);                                                                                     \
}

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)

/* bumped when a signature changes */
int native_abi_version(void) { return 1; }
const char *native_sqrt_f32(void) { return NATIVE_SQRT_F32; }
