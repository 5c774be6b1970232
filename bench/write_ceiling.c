/* The single-thread write ceiling of this machine: how fast one thread can fill a 256 MiB
 * f32 buffer (64 Mi values, the dequant bench's output size) when it reads nothing and
 * computes nothing. Any dequant kernel at this size is bounded by the streaming-store line.
 *
 *   gcc -O2 -mavx2 bench/write_ceiling.c -o /tmp/write_ceiling && /tmp/write_ceiling
 *
 * Each figure is the fastest of 10 passes over the same (already faulted-in) buffer. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VALUES (64u << 20)
#define PASSES 10

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { STREAM, STORE, MEMSET, MODES };
static const char *const NAMES[MODES] = {
    "32-byte streaming stores", "32-byte ordinary stores", "memset (glibc)"};

int main(void) {
    float *out = aligned_alloc(64, (size_t)VALUES * sizeof(float));
    if (!out) return 1;
    memset(out, 1, (size_t)VALUES * sizeof(float));
    for (int mode = 0; mode < MODES; mode++) {
        double best = 1e9;
        for (int pass = 0; pass < PASSES; pass++) {
            __m256 v = _mm256_set1_ps((float)pass);
            double t = seconds();
            if (mode == STREAM) {
                for (size_t i = 0; i < VALUES; i += 8) _mm256_stream_ps(out + i, v);
                _mm_sfence();
            } else if (mode == STORE) {
                for (size_t i = 0; i < VALUES; i += 8) _mm256_store_ps(out + i, v);
            } else {
                memset(out, pass, (size_t)VALUES * sizeof(float));
            }
            t = seconds() - t;
            if (t < best) best = t;
        }
        printf("%-26s %5.1f GB/s = %.2f G f32/s\n", NAMES[mode],
               VALUES * sizeof(float) / best / 1e9, VALUES / best / 1e9);
    }
    /* Keep the stores observable. */
    return out[VALUES / 2] == 12345.0f;
}
