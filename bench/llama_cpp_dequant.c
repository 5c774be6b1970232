// llama.cpp's own dequantization throughput, single thread, on the inputs that
// core/benches/dequant.rs decodes: the same xorshift bytes and the same sane f16 scales, so
// both benches decode identical blocks. It calls ggml's `to_float` (ggml-quants.c's
// `dequantize_row_*`, ggml.c's f16/bf16 rows), as llama.cpp's
// `test-quantize-perf --op dequantize_row_q` does.
//
//   llama_cpp_dequant VALUES PASSES [TYPE]
//
// prints `best-pass <TYPE> <G values/s>` (the fastest of PASSES passes after a warm-up) per
// type, or for TYPE alone. Built and run by bench/llama_cpp_dequant.py against the vendored llama.cpp of the
// llama-cpp-python sdist.
#include "ggml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench_type {
    const char * name;  // as quantdoc names it
    enum ggml_type type;
    int scale_fields[2];  // byte offsets of f16 scales in one block, -1 for none
};

static const struct bench_type TYPES[] = {
    {"F16", GGML_TYPE_F16, {-1, -1}},      {"BF16", GGML_TYPE_BF16, {-1, -1}},
    {"Q4_0", GGML_TYPE_Q4_0, {0, -1}},     {"Q4_1", GGML_TYPE_Q4_1, {0, 2}},
    {"Q5_0", GGML_TYPE_Q5_0, {0, -1}},     {"Q5_1", GGML_TYPE_Q5_1, {0, 2}},
    {"Q8_0", GGML_TYPE_Q8_0, {0, -1}},     {"Q2_K", GGML_TYPE_Q2_K, {80, 82}},
    {"Q3_K", GGML_TYPE_Q3_K, {108, -1}},   {"Q4_K", GGML_TYPE_Q4_K, {0, 2}},
    {"Q5_K", GGML_TYPE_Q5_K, {0, 2}},      {"Q6_K", GGML_TYPE_Q6_K, {208, -1}},
    {"IQ4_NL", GGML_TYPE_IQ4_NL, {0, -1}}, {"IQ4_XS", GGML_TYPE_IQ4_XS, {0, -1}},
    {"MXFP4", GGML_TYPE_MXFP4, {-1, -1}},
};

// core/benches/dequant.rs `random_bytes`: each xorshift state, little-endian, in turn.
static void random_bytes(uint8_t * out, size_t n, uint64_t seed) {
    size_t at = 0;
    while (at < n) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        for (int i = 0; i < 8 && at < n; i++) {
            out[at++] = (uint8_t) (seed >> (8 * i));
        }
    }
}

// core/benches/dequant.rs `sane_half`: a half in [2^-14, 2^-6).
static void sane_half(uint8_t * h) {
    uint16_t exp = (uint16_t) (1 + h[0] % 8);
    uint16_t bits = (uint16_t) ((exp << 10) | ((uint16_t) h[1] << 2));
    h[0] = (uint8_t) bits;
    h[1] = (uint8_t) (bits >> 8);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

int main(int argc, char ** argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s VALUES PASSES [TYPE]\n", argv[0]);
        return 2;
    }
    const int64_t n = strtoll(argv[1], NULL, 10);
    const int passes = atoi(argv[2]);
    if (n <= 0 || n % 256 != 0 || passes <= 0) {
        fprintf(stderr, "VALUES must be a positive multiple of 256, PASSES positive\n");
        return 2;
    }
    float * dst = aligned_alloc(64, (size_t) n * sizeof(float));
    if (dst == NULL) {
        fprintf(stderr, "cannot allocate %lld floats\n", (long long) n);
        return 1;
    }
    for (size_t t = 0; t < sizeof(TYPES) / sizeof(TYPES[0]); t++) {
        const struct bench_type * bt = &TYPES[t];
        if (argc == 4 && strcmp(argv[3], bt->name) != 0) continue;
        const struct ggml_type_traits * traits = ggml_get_type_traits(bt->type);
        const size_t block = (size_t) traits->blck_size, size = traits->type_size;
        const size_t bytes = (size_t) n / block * size;
        uint8_t * src = malloc(bytes);
        if (src == NULL) {
            fprintf(stderr, "cannot allocate %zu bytes\n", bytes);
            return 1;
        }
        random_bytes(src, bytes, 0x9e3779b97f4a7c15ULL ^ (uint64_t) bt->type);
        if (bt->type == GGML_TYPE_F16) {
            for (size_t i = 0; i < bytes; i += 2) sane_half(src + i);
        }
        for (size_t b = 0; b < bytes; b += size) {
            for (int f = 0; f < 2; f++) {
                if (bt->scale_fields[f] >= 0) sane_half(src + b + bt->scale_fields[f]);
            }
            // The E8M0 scale: 2^(e - 127) for e in 118..=133, as the Rust bench sets it.
            if (bt->type == GGML_TYPE_MXFP4) src[b] = (uint8_t) (118 + src[b] % 16);
        }
        traits->to_float(src, dst, n);  // warm-up
        double best = 1e300;
        for (int p = 0; p < passes; p++) {
            const double t0 = now();
            traits->to_float(src, dst, n);
            const double dt = now() - t0;
            if (dt < best) best = dt;
        }
        // Keeps the output observable so the calls cannot be dropped.
        volatile float sink = dst[n - 1];
        (void) sink;
        printf("best-pass %s %.3f\n", bt->name, (double) n / best / 1e9);
        fflush(stdout);
        free(src);
    }
    free(dst);
    return 0;
}
