/* pipeline/native/_portable.h: arithmetic that gives the same bits on every CPU, for the layout's C.
 *
 * The C library's exp and log differ between libraries and versions (glibc, musl, Apple's
 * libm: each rounds some arguments differently), and a t-SNE magnifies any last bit. These are
 * our own, from IEEE +, -, *, / only (compiled with -ffp-contract=off, so no fused
 * multiply-add changes a rounding): exp within 1 ulp, log within 3 ulp
 * (tests/test_embedding.py measures both against long-double references).
 *
 * `in_parts` runs a loop over independent outputs on 1 or 2 threads: each output is computed
 * whole by one thread in the loop's own order, so the thread count changes no bit.
 */
#ifndef PIPELINE_PORTABLE_H
#define PIPELINE_PORTABLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 2^k as a double, for -1022 <= k <= 1023, from its bits. */
static inline double portable_pow2(int k)
{
    uint64_t bits = (uint64_t)(k + 1023) << 52;
    double out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

#define PORTABLE_LN2_HI 6.93147180369123816490e-01 /* ln 2 with 32 zero low bits: k * it is exact */
#define PORTABLE_LN2_LO 1.90821492927058770002e-10 /* ln 2 - PORTABLE_LN2_HI */

/* e^x: x = k ln2 + r with |r| <= ln2 / 2, then e^r = 1 + 2r / (R(r) - r) where
 * R(r) = r coth(r / 2) = 2 + sum 2 B_2n r^2n / (2n)! (Bernoulli numbers, to r^16). */
static inline double portable_exp(double x)
{
    if (x != x)
        return x;
    if (x > 709.782712893384)
        return 1.0 / 0.0;
    if (x < -745.1332191019412)
        return 0.0;
    double kf = x * 1.4426950408889634;
    int k = (int)(kf < 0 ? kf - 0.5 : kf + 0.5);
    double hi = x - (double)k * PORTABLE_LN2_HI, lo = (double)k * PORTABLE_LN2_LO;
    double r = hi - lo, t = r * r;
    double p = t * (1.0 / 15120.0 +
                    t * (-1.0 / 604800.0 +
                         t * (1.0 / 23950080.0 +
                              t * (-691.0 / 653837184000.0 +
                                   t * (1.0 / 37362124800.0 + t * (-3617.0 / 5335311421440000.0))))));
    double c = r - t * (1.0 / 6.0 + t * (-1.0 / 360.0 + p));
    double y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    if (k < -1021)
        return y * portable_pow2(k + 1000) * portable_pow2(-1000);
    if (k > 1023)
        return y * 2.0 * portable_pow2(k - 1);
    return y * portable_pow2(k);
}

/* ln x: x = 2^k (1 + f) with sqrt(2)/2 <= 1 + f < sqrt(2), s = f / (2 + f), then
 * ln(1 + f) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R) with R = sum_n 2 s^2n / (2n + 1). */
static inline double portable_log(double x)
{
    if (x != x || x < 0.0)
        return 0.0 / 0.0;
    if (x == 0.0)
        return -1.0 / 0.0;
    if (x == 1.0 / 0.0)
        return x;
    int k = 0;
    if (x < 2.2250738585072014e-308) { /* subnormal: make it normal first */
        x *= 18014398509481984.0;       /* 2^54 */
        k = -54;
    }
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    k += (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL; /* the mantissa in [1, 2) */
    double m;
    memcpy(&m, &bits, sizeof m);
    if (m > 1.4142135623730951) {
        m *= 0.5;
        k += 1;
    }
    double f = m - 1.0, s = f / (2.0 + f), z = s * s, hfsq = 0.5 * f * f;
    double r =
        z * (2.0 / 3.0 +
             z * (2.0 / 5.0 +
                  z * (2.0 / 7.0 +
                       z * (2.0 / 9.0 +
                            z * (2.0 / 11.0 +
                                 z * (2.0 / 13.0 +
                                      z * (2.0 / 15.0 +
                                           z * (2.0 / 17.0 +
                                                z * (2.0 / 19.0 + z * (2.0 / 21.0 + z * 2.0 / 23.0))))))))));
    double kd = (double)k;
    return kd * PORTABLE_LN2_HI - ((hfsq - (s * (hfsq + r) + kd * PORTABLE_LN2_LO)) - f);
}

/* Work on the outputs [begin, end) of a loop; `arg` carries the rest. */
typedef void (*portable_part)(void *arg, ptrdiff_t begin, ptrdiff_t end);

typedef struct {
    portable_part work;
    void *arg;
    ptrdiff_t begin, end;
} PortableSlice;

static void *portable_run_slice(void *slice)
{
    PortableSlice *s = slice;
    s->work(s->arg, s->begin, s->end);
    return NULL;
}

/* work(arg, 0, n) split at the middle between this thread and one more when threads >= 2
 * (each output is still computed whole by one thread: the bits do not depend on the split);
 * on one thread if a thread cannot be started. */
static void in_parts(portable_part work, void *arg, ptrdiff_t n, int threads)
{
    if (threads < 2 || n < 2) {
        work(arg, 0, n);
        return;
    }
    PortableSlice second = {work, arg, n / 2, n};
    pthread_t helper;
    if (pthread_create(&helper, NULL, portable_run_slice, &second) != 0) {
        work(arg, 0, n);
        return;
    }
    work(arg, 0, n / 2);
    pthread_join(helper, NULL);
}

#endif
