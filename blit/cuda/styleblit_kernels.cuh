// Per-pixel logic of the StyleBlit lookup and blend, shared by the CUDA
// kernels (blit/cuda/styleblit.cu) and a host build that the tests compile
// with g++ (tests/cuda_host_harness.cpp), so that the kernel logic is checked
// against the Numba kernels on every CI run, GPU or not.
//
// Each function here is the twin of a Numba function in blit/styleblit.py or
// blit/blending.py and keeps its names and its order of operations:
//
//   guide_error   <-> styleblit._error
//   argmin_lookup <-> styleblit._argmin_lookup   (ArgMinLookup)
//   seed_point    <-> one iteration of styleblit._seed_kernel   (SeedPoint)
//   lookup_pixel  <-> one pixel of styleblit._lookup_row   (NearestSeed, accept)
//   blend_pixel   <-> one pixel of blending._blend_row
//
// Integers: Numba computes coordinates in int64, so they are `long long`
// here; Python's floor modulo is `pmod`. Floats: see guide_error; the only
// other float operations (jitter, cell and rounding of the guide) are exact.
//
// Arguments travel in one struct per kernel (LookupArgs, BlendArgs), passed
// by value: blit/gpu.py packs it as a NumPy structured scalar with the same
// layout (static_asserts below, offsets checked by tests/test_gpu.py).
#pragma once

#ifdef __CUDACC__
#define SB_FN __host__ __device__ __forceinline__
#else
#include <math.h>
#define SB_FN inline
#endif

namespace sb {

// NNF entry of a pixel outside `active`; a seed without guides (styleblit._INACTIVE).
constexpr int kInactive = -(1 << 24);
// styleblit.lookup accepts 1..12 levels.
constexpr int kMaxLevels = 12;

// styleblit._seed_grid, one column per level (level 0 unused): the cells
// (bx0 .. bx0 + ncx - 1, by0 ..) whose seeds the region may use lie at
// seeds[offset + (cy - by0) * ncx + (cx - bx0)].
struct SeedGrid {
    int offset[kMaxLevels];
    int bx0[kMaxLevels];
    int by0[kMaxLevels];
    int ncx[kMaxLevels];
};

struct LookupArgs {
    const float* tpos;            // (h, w, 2) target positional guide, exemplar (x, y)
    const float* tapp;            // (h, w) target appearance guide
    const unsigned char* active;  // (h, w) bool, or null: every pixel
    const float* sapp;            // (hs, ws) exemplar appearance guide
    const int* table;             // (hc, wc, nbins) flat exemplar index y * ws + x
    const int* app_bin;           // (256,) appearance bin of each integer level
    const float* jitter;          // (>= levels, jsize, jsize, 2) in [0, 1)
    const unsigned char* labels;  // (>= levels, hf, wf) nearest-seed labels, or null
    int* seeds;                   // (nseeds, 4) q_x, q_y, u_x, u_y
    int* nnf;                     // (h, w, 2) out: exemplar (x, y)
    int h, w, ox, oy;             // region size and its frame position
    int hs, ws;                   // exemplar size
    int hc, wc, nbins, cell;      // table
    int jsize;                    // jitter table size
    int hf, wf;                   // labels' frame size
    int levels, nseeds;
    float lam_pos, lam_app, threshold;
    SeedGrid grid;
};

struct BlendArgs {
    const unsigned char* style;   // (hs, ws, 3) exemplar image
    const int* nnf;               // (h, w, 2) exemplar (x, y), x < 0: inactive
    unsigned char* out;           // (h, w, 3)
    int h, w, hs, ws, radius;
};

static_assert(sizeof(SeedGrid) == 4 * 4 * kMaxLevels, "SeedGrid: blit/gpu.py packs 4 x 12 int32");
static_assert(sizeof(LookupArgs) == 10 * 8 + 18 * 4 + sizeof(SeedGrid), "LookupArgs: see blit/gpu.py");
static_assert(sizeof(BlendArgs) == 3 * 8 + 5 * 4 + 4, "BlendArgs: see blit/gpu.py");

// Rounded IEEE operations that the compiler may not fuse into an FMA (nvcc
// contracts a * b + c by default; Numba never does): the guide error must be
// bit-identical to the Numba one, since it is compared against a threshold
// and against another error.
SB_FN double mul_rn(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
SB_FN double add_rn(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}
SB_FN float mulf_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

SB_FN long long clamp(long long v, long long lo, long long hi) { return v < lo ? lo : (v > hi ? hi : v); }
SB_FN long long imin(long long a, long long b) { return a < b ? a : b; }
SB_FN long long imax(long long a, long long b) { return a > b ? a : b; }
// Python's a % n (n > 0): the cell index of the jitter table may be negative.
SB_FN long long pmod(long long a, long long n) { long long r = a % n; return r < 0 ? r + n : r; }

// E(c; g, a) = lam_pos (|c_x - g_x| + |c_y - g_y|) + lam_app |A(c) - a|.
//
// Exactly the operations Numba compiles for styleblit._error (checked in its
// assembly): int64 - float32 is computed in float64 (both operands converted
// exactly), so the positional term is float64 and lam_pos (float32) is
// widened to multiply it; the appearance term is float32 (A - a, abs,
// times lam_app), widened to float64 for the final sum. Every step is one
// IEEE round-to-nearest operation on both sides, without FMA, so the result
// is bit-identical. The one place a difference could arise is a build that
// breaks IEEE semantics (--use_fast_math, flush-to-zero of float32
// denormals, a host compiler contracting with -ffp-contract=fast): blit/gpu.py
// and the test harness compile with --fmad=false / -ffp-contract=off and
// without fast math.
SB_FN double guide_error(long long cx, long long cy, float gx, float gy, float a,
                         const LookupArgs& p) {
    double dpos = add_rn(fabs((double)cx - (double)gx), fabs((double)cy - (double)gy));
    float dapp = mulf_rn(p.lam_app, fabsf(p.sapp[cy * p.ws + cx] - a));
    return add_rn(mul_rn((double)p.lam_pos, dpos), (double)dapp);
}

// ArgMinLookup: the exemplar pixel best matching the guide value (g, a): the
// table's answer for g's cell and a's bin, unless the exemplar pixel nearest
// to g matches strictly better.
//
// float -> int conversions truncate like Numba's int(); they agree for every
// finite guide below 2**63 in magnitude. (Non-finite or larger guides are
// converted differently by x86 and by the GPU, which saturates.)
SB_FN void argmin_lookup(float gx, float gy, float a, const LookupArgs& p,
                         long long& ux, long long& uy) {
    long long ci = clamp((long long)((double)gx / (double)p.cell), 0, p.wc - 1);  // float32 / int64: float64
    long long cj = clamp((long long)((double)gy / (double)p.cell), 0, p.hc - 1);
    long long ai = clamp((long long)a, 0, 255);
    long long idx = p.table[(cj * p.wc + ci) * p.nbins + p.app_bin[ai]];
    long long bx = idx % p.ws;  // idx >= 0: C and Python modulo agree
    long long by = idx / p.ws;
    long long rx = clamp((long long)floor((double)gx + 0.5), 0, p.ws - 1);  // float32 + 0.5: float64
    long long ry = clamp((long long)floor((double)gy + 0.5), 0, p.hs - 1);
    if (guide_error(rx, ry, gx, gy, a, p) < guide_error(bx, by, gx, gy, a, p)) {
        ux = rx;
        uy = ry;
    } else {
        ux = bx;
        uy = by;
    }
}

// SeedPoint: the position q of seed k and the exemplar pixel u its guides
// look up; a seed outside the region has no guides and gets u = kInactive.
// `levels` is the lookup's; the grid has max(levels, 2) rows.
//
// The jittered position floor(2**level * (c + jitter)) is computed in
// float64 like Numba (int64 + float32): exact for any cell below 2**28.
SB_FN void seed_point(const LookupArgs& p, int levels, long long k) {
    const int rows = levels < 2 ? 2 : levels;
    int level = 1;
    while (level + 1 < rows && k >= p.grid.offset[level + 1]) ++level;
    const long long offset = p.grid.offset[level], ncx = p.grid.ncx[level];
    const long long spacing = 1LL << level;
    const long long cx = p.grid.bx0[level] + (k - offset) % ncx;
    const long long cy = p.grid.by0[level] + (k - offset) / ncx;
    const float* jit = p.jitter + ((level * (long long)p.jsize + pmod(cy, p.jsize)) * p.jsize
                                   + pmod(cx, p.jsize)) * 2;
    const long long qx = (long long)floor((double)spacing * ((double)cx + (double)jit[0]));
    const long long qy = (long long)floor((double)spacing * ((double)cy + (double)jit[1]));
    const long long sx = qx - p.ox, sy = qy - p.oy;
    int* s = p.seeds + k * 4;
    s[0] = (int)qx;
    s[1] = (int)qy;
    if (0 <= sx && sx < p.w && 0 <= sy && sy < p.h) {
        const long long t = sy * p.w + sx;
        long long ux, uy;
        argmin_lookup(p.tpos[2 * t], p.tpos[2 * t + 1], p.tapp[t], p, ux, uy);
        s[2] = (int)ux;
        s[3] = (int)uy;
    } else {
        s[2] = kInactive;
        s[3] = kInactive;
    }
}

// One pixel (x, y) of the region: levels from coarse to fine, NearestSeed,
// candidate u + (p - q), accepted at the first level where it lies in the
// exemplar with a guide error below the threshold; else the per-pixel
// ArgMinLookup (the finest level).
SB_FN void lookup_pixel(const LookupArgs& p, int levels, long long x, long long y) {
    const long long t = y * p.w + x;
    int* out = p.nnf + 2 * t;
    if (p.active && !p.active[t]) {
        out[0] = kInactive;
        out[1] = kInactive;
        return;
    }
    const long long px = x + p.ox, py = y + p.oy;
    const float gx = p.tpos[2 * t], gy = p.tpos[2 * t + 1], a = p.tapp[t];
    for (int level = levels - 1; level > 0; --level) {
        // NearestSeed: the closest of the seeds of the 9 cells around p's
        const long long offset = p.grid.offset[level], ncx = p.grid.ncx[level];
        const long long i0 = (px >> level) - p.grid.bx0[level] - 1;
        const long long j0 = (py >> level) - p.grid.by0[level] - 1;
        long long k_best = 0;
        if (p.labels) {  // precomputed for this frame size and jitter
            const int lab = p.labels[(level * (long long)p.hf + py) * p.wf + px];
            k_best = offset + (j0 + lab / 3) * ncx + i0 + lab % 3;
        } else {
            long long best_d = 1LL << 30;
            for (long long j = j0; j < j0 + 3; ++j) {
                for (long long i = i0; i < i0 + 3; ++i) {
                    const long long k = offset + j * ncx + i;
                    const long long dx = p.seeds[4 * k] - px, dy = p.seeds[4 * k + 1] - py;
                    const long long d = dx * dx + dy * dy;
                    if (d < best_d) {  // first minimum
                        best_d = d;
                        k_best = k;
                    }
                }
            }
        }
        const int* s = p.seeds + 4 * k_best;
        if (s[2] == kInactive) continue;  // a seed outside the region has no guides: go finer
        // candidate: the seed's exemplar position plus p's offset from it
        const long long cx = s[2] + (px - s[0]);
        const long long cy = s[3] + (py - s[1]);
        if (0 <= cx && cx < p.ws && 0 <= cy && cy < p.hs
            && guide_error(cx, cy, gx, gy, a, p) < (double)p.threshold) {
            out[0] = (int)cx;
            out[1] = (int)cy;
            return;
        }
    }
    // finest level: the pixel is its own seed; always accepted
    long long ux, uy;
    argmin_lookup(gx, gy, a, p, ux, uy);
    out[0] = (int)ux;
    out[1] = (int)uy;
}

// Voting at pixel (x, y): the rounded mean over the offsets o of its
// (2 radius + 1)^2 neighbourhood inside the target of Style(NNF(p + o) - o),
// for the votes inside the exemplar; one gather where the neighbourhood is one
// coherent patch. Pixels with an inactive NNF entry (x < 0) are left as they
// are. Integer arithmetic only: identical to the Numba kernel.
//
// For an NNF inside the exemplar (the contract of blit.blending.blend) the
// result is the Numba one. Outside the contract the CPU reads out of bounds
// (or wraps a negative y), while this falls back to the vote, which drops
// such entries, and leaves a pixel without any vote untouched.
SB_FN void blend_pixel(const BlendArgs& b, int radius, long long x, long long y) {
    const int* nnf = b.nnf;
    const long long px = nnf[2 * (y * b.w + x)], py = nnf[2 * (y * b.w + x) + 1];
    if (px < 0) return;
    unsigned char* out = b.out + 3 * (y * b.w + x);
    const long long oy0 = imax(-radius, -y), oy1 = imin(radius, b.h - 1 - y);
    const long long ox0 = imax(-radius, -x), ox1 = imin(radius, b.w - 1 - x);
    // Inside a patch every neighbour votes for the same exemplar pixel
    // (NNF(p + o) - o == NNF(p)): the mean is that pixel, one gather.
    bool coherent = px < b.ws && 0 <= py && py < b.hs;
    for (long long oy = oy0; coherent && oy <= oy1; ++oy) {
        for (long long ox = ox0; ox <= ox1; ++ox) {
            const int* q = nnf + 2 * ((y + oy) * b.w + x + ox);
            if (q[0] - ox != px || q[1] - oy != py) {
                coherent = false;
                break;
            }
        }
    }
    if (coherent) {
        const unsigned char* s = b.style + 3 * (py * b.ws + px);
        out[0] = s[0];
        out[1] = s[1];
        out[2] = s[2];
        return;
    }
    long long a0 = 0, a1 = 0, a2 = 0, n = 0;
    for (long long oy = oy0; oy <= oy1; ++oy) {
        for (long long ox = ox0; ox <= ox1; ++ox) {
            const int* q = nnf + 2 * ((y + oy) * b.w + x + ox);
            const long long sx = q[0] - ox, sy = q[1] - oy;
            if (0 <= sx && sx < b.ws && 0 <= sy && sy < b.hs) {
                const unsigned char* s = b.style + 3 * (sy * b.ws + sx);
                a0 += s[0];
                a1 += s[1];
                a2 += s[2];
                ++n;
            }
        }
    }
    if (n == 0) return;  // only for an NNF outside the exemplar (see above)
    const long long half = n / 2;
    out[0] = (unsigned char)((a0 + half) / n);
    out[1] = (unsigned char)((a1 + half) / n);
    out[2] = (unsigned char)((a2 + half) / n);
}

}  // namespace sb
