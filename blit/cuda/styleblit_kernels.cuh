// Per-pixel logic of the StyleBlit lookup and blend and of the stream's
// propagation and temporal filter, shared by the CUDA
// kernels (blit/cuda/styleblit.cu) and a host build that the tests compile
// with g++ (tests/cuda_host_harness.cpp), so that the kernel logic is checked
// against the Numba kernels on every CI run, GPU or not.
//
// Each function here is the twin of a Numba function in blit/styleblit.py,
// blit/blending.py, blit/stream.py or blit/temporal.py and keeps its names
// and its order of operations:
//
//   guide_error     <-> styleblit._error
//   argmin_lookup   <-> styleblit._argmin_lookup   (ArgMinLookup)
//   seed_point      <-> styleblit._seed_position and _look_up_seed for one seed   (SeedPoint)
//   lookup_pixel    <-> one pixel of styleblit._lookup_row, all levels   (NearestSeed, accept;
//                       the CPU tests its coarsest level for runs of pixels: _run_row)
//   blend_pixel     <-> one pixel of blending._blend_row
//   denoise_pixel   <-> one pixel of blending._denoise_kernel   (the NNF's mode filter)
//   propagate_pixel <-> one pixel of stream._propagate_row
//   merge_pixel     <-> one pixel of stream._merge_kernel
//   temporal_pixel  <-> one pixel of temporal._filter_row   (first pass)
//   temporal_round_pixel <-> one pixel of temporal._filter_kernel's second pass
//   mls_node        <-> one node of guides/mls._mls_nodes   (the MLS map, alpha 1, in float64)
//   upsample_pixel  <-> one pixel of guides/mls._upsample_nodes   (positional guide; Numba
//                       interpolates along x once per node row, the same operations)
//   composite_pixel <-> one pixel of guides/mask._composite_kernel
//   gray_pixel      <-> one pixel of guides/appearance._gray_kernel   (the appearance guide:
//   pyrdown_pixel   <-> one pixel of cv2.pyrDown                       luminance, its pyramid,
//   detail_count_pixel <-> one pixel of appearance._level_count_kernel  the blur's levels
//                       (the blur by _along_x_kernel and _blur_row at once: the same integers)
//   detail_table_bin <-> one bin of appearance._matching_table (quantile_at: np.interp's arithmetic)
//   detail_map_pixel <-> one pixel of appearance._level_map_kernel
//   flow_up_pixel   <-> one pixel of stream._upsample_flow_kernel   (the flow from DIS's
//                       half size to the box's, its edges continued)
//   mask_cover_row  <-> one sample row of guides/mask._coverage_kernel   (the head mask:
//   mask_norm_pixel <-> one block of mask.blurred_coverage's division       the polygon's
//   mask_blur_pixel <-> one pixel of guides/mask._blur_kernel                coverage, blurred,
//   mask_up_pixel   <-> one pixel of guides/mask._enlarge_mask_kernel        enlarged onto the box)
//   dis_halve_pixel, dis_sobel_pixel, dis_tensor_patch, dis_search_patch, dis_densify_pixel,
//   dis_up_pixel    <-> one pixel or patch of blit/dis.halve, sobel, structure_tensor,
//                       patch_search (one round), densify, upsample_flow2   (the DIS flow)
//
// Integers: Numba computes coordinates in int64, so they are `long long`
// here; Python's floor modulo is `pmod`. Floats: see guide_error; the other
// float operations of the lookup (jitter, cell and rounding of the guide) are
// exact; those of propagate_pixel, temporal_pixel, mls_node, upsample_pixel,
// composite_pixel, flow_up_pixel, mask_blur_pixel, mask_up_pixel and the dis_ functions are one IEEE operation
// each, in Numba's order and precision, every product a non-fusing mulf_rn /
// mul_rn (a rounded product cannot be contracted with the sum that follows).
//
// Arguments travel in one struct per kernel (LookupArgs, BlendArgs,
// DenoiseArgs, PropagateArgs, MergeArgs, TemporalArgs, MlsArgs, UpsampleArgs,
// CompositeArgs, GrayArgs, PyrDownArgs, DetailArgs, FlowUpArgs, MaskArgs, MaskUpArgs, DisArgs), passed
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
// Source field of a pixel without exemplar source (stream.NO_SOURCE).
constexpr float kNoSource = -1e30f;
// History (channel 0) of a pixel that was not painted (temporal.NO_HISTORY).
constexpr float kNoHistory = -1.0f;

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

// stream.propagate: prev_src / prev_pos in the previous box (at pox, poy),
// flow on a frame region at (fox, foy) of row length fw, this box at (ox, oy).
struct PropagateArgs {
    const float* prev_src;        // (ph, pw, 2) previous source field
    const float* prev_pos;        // (ph, pw, 2) previous positional guide, or null with flow
    const float* flow;            // (>= h, fw, 2) backward flow, or null: guide motion
    const float* tpos;            // (h, w, 2) target positional guide
    const float* tapp;            // (h, w) target appearance guide
    const unsigned char* active;  // (h, w) bool, or null: every pixel
    const float* sapp;            // (hs, ws) exemplar appearance guide
    float* src;                   // (h, w, 2) out: unrounded sources of the kept pixels
    int* nnf;                     // (h, w, 2) out: their rounded sources
    unsigned char* need;          // (h, w) out: bool, active and not kept
    double jxx, jxy, jyx, jyy;    // inverse Jacobian (guide motion)
    int h, w, ox, oy;             // box size and frame position
    int ph, pw, pox, poy;         // previous box
    int fw, fox, foy;             // flow row length and frame position
    int hs, ws, iterations;
    float lam_pos, lam_app, threshold;
};

// stream._merge_kernel: where need, nnf and src take the fresh lookup's entry.
struct MergeArgs {
    const int* fresh;             // (h, w, 2)
    const unsigned char* need;    // (h, w) bool
    int* nnf;                     // (h, w, 2) in/out
    float* src;                   // (h, w, 2) in/out
    int h, w;
};

// temporal.temporal_filter: this region (h, w) at (ox, oy), the previous
// history (ph, pw) at (pox, poy), the flow of row length fw at (fox, foy).
struct TemporalArgs {
    unsigned char* current;       // (h, w, 3) this frame's stylization; rounded into by the second pass
    const unsigned char* active;  // (h, w) bool, or null: every pixel
    const float* prev;            // (ph, pw, 3) previous history
    const float* flow;            // (>= h, fw, 2) backward flow
    float* hist;                  // (h, w, 3) out: this frame's history
    int h, w, ph, pw, pox, poy, fw, fox, foy, ox, oy;
    float alpha;
};

// mls._upsample_nodes: corner-aligned grid nodes to every pixel of (h, w).
struct UpsampleArgs {
    const float* nodes;           // (gh, gw, 2) MLS map at the nodes, exemplar (x, y)
    float* out;                   // (h, w, 2) out: the positional guide
    double sx, sy;                // node steps per pixel: (gw - 1) / max(w - 1, 1), ...
    int h, w, gh, gw;
};

// mls._mls_nodes (alpha 1): the MLS map at the (h, w) grid nodes of a box,
// node (j, i) at pixel (i step_x, j step_y).
// The landmarks travel in the struct (by value: no copy to the device).
constexpr int kMaxLandmarks = 100;  // mls.MAX_DEVICE_POINTS
struct MlsArgs {
    float* nodes;                 // (h, w, 2) out: exemplar (x, y) at every node
    double step_x, step_y;
    int n, h, w;
    double points[2 * 2 * kMaxLandmarks];  // (2, n, 2): the target's landmarks, then the exemplar's
};

// blending.denoise_nnf: the mode filter of an (h, w) NNF's offsets.
struct DenoiseArgs {
    const int* nnf;               // (h, w, 2) exemplar (x, y); x < 0: inactive
    int* out;                     // (h, w, 2) out
    int h, w, hs, ws, radius;     // hs, ws: the exemplar's size
};

// mask.composite: the box (h, w) at (x0, y0) of a frame of row length fw.
struct CompositeArgs {
    unsigned char* out;           // (>= y0 + h, fw, 3) the frame, blended into in place
    const unsigned char* fg;      // (h, w, 3) the box's pixels
    const float* mask;            // (h, w) weight in [0, 1]
    int h, w, x0, y0, fw;
    float min_weight;             // mask.MIN_WEIGHT: below it, the frame is left as it is
};

// appearance._gray_kernel: the luminance of an (h, w) image whose rows lie
// `stride` bytes apart (a box of a frame, read in place).
struct GrayArgs {
    const unsigned char* image;   // (h, w, 3) BGR, rows `stride` bytes apart
    unsigned char* out;           // (h, w) out
    long long stride;
    int h, w;
};

// cv2.pyrDown: (sh, sw) -> (h, w) = ((sh + 1) / 2, (sw + 1) / 2).
struct PyrDownArgs {
    const unsigned char* src;     // (sh, sw), rows `stride` bytes apart (a box of an image)
    unsigned char* out;           // (h, w) out
    long long stride;
    int h, w, sh, sw;
};

// appearance.target_appearance from the luminance and the pyramid's top:
// the detail's counts, the matching table, the guide.
struct DetailArgs {
    const unsigned char* gray;    // (h, w) luminance
    const unsigned char* small;   // (sh, sw) the pyramid's top level
    const float* mask;            // (h, w) head mask, or null: every pixel counts
    unsigned char* blur;          // (h, w) out (count kernel): the blur
    unsigned int* counts;         // (2, 511) detail levels d + 255 of the pixels in the
                                  // mask (row 0) and out of it (row 1); zeroed before counting
    const float* quantiles;       // (nq) the exemplar's quantile function
    float* table;                 // (512) out (table kernel): the matched value of each bin
    float* out;                   // (h, w) out (map kernel): the guide
    int h, w, sh, sw, nq;
};

// stream._upsample_flow_kernel: the (h, w) flow from its (hh, hw) half-size
// values, on a box grown by (top, left, ...) pixels whose flow is that of
// the nearest pixel of (h, w).
struct FlowUpArgs {
    const float* half;            // (hh, hw, 2)
    float* out;                   // (oh, ow, 2) out
    int h, w, hh, hw, top, left, oh, ow;
};

// mask.blurred_coverage: a head polygon's coverage of (sh, sw) blocks of
// f x f pixels, and its blur (the polygon and the blur's weights by value).
constexpr int kMaxPolygon = 64;  // mask.MAX_POLYGON
constexpr int kMaxRadius = 64;   // mask.MAX_RADIUS
struct MaskArgs {
    int* counts;                  // (sh, sw) out (cover kernel, zeroed before): samples inside
    float* small;                 // (sh, sw) out (norm kernel): their share of the block's
    float* row;                   // (sh, sw) out (blur kernel along x)
    float* blur;                  // (sh, sw) out (blur kernel along y)
    int sh, sw, f, n, radius, delta, rows;  // rows: sample rows, sh f kSamples
    int polygon[2 * kMaxPolygon];           // (n, 2): (x, y) in 1/kSubpixel px
    float taps[kMaxRadius + 1];             // the blur's weights at 0..radius
};

// mask.enlarge_mask: the (h, w) mask of a box from its (sh, sw) values
// blurred at 1/factor resolution, read on the (gh, gw) = factor (sh, sw)
// grid from (ox, oy).
struct MaskUpArgs {
    const float* small;           // (sh, sw)
    float* out;                   // (h, w) out
    int h, w, sh, sw, gh, gw, ox, oy;
};

// blit.dis: one level of the DIS flow. Each kernel reads the fields it needs.
struct DisArgs {
    const unsigned char* i0;      // (h, w) the level's first image
    const unsigned char* i1;      // (h, w) its second
    unsigned char* half0;         // (h / 2, w / 2) out (halve kernel): i0 halved
    unsigned char* half1;         // (h / 2, w / 2) out (halve kernel): i1 halved
    short* gx;                    // (h, w) out (sobel kernel): i0's gradients
    short* gy;
    float* tensor;                // (hs, ws, 5) out (tensor kernel)
    float* flow;                  // (h, w, 2) the coarser level's flow enlarged (read by the
                                  // first round); out (densify and up kernels)
    const float* s_in;            // (hs, ws, 2) the patches' flows of the round before
    float* s_out;                 // (hs, ws, 2) out (search kernel)
    const float* small;           // (sh, sw, 2) the coarser flow (up kernel)
    int h, w, sh, sw, hs, ws, patch, stride, steps, first;
};

static_assert(sizeof(SeedGrid) == 4 * 4 * kMaxLevels, "SeedGrid: blit/gpu.py packs 4 x 12 int32");
static_assert(sizeof(LookupArgs) == 10 * 8 + 18 * 4 + sizeof(SeedGrid), "LookupArgs: see blit/gpu.py");
static_assert(sizeof(BlendArgs) == 3 * 8 + 5 * 4 + 4, "BlendArgs: see blit/gpu.py");
static_assert(sizeof(DenoiseArgs) == 2 * 8 + 5 * 4 + 4, "DenoiseArgs: see blit/gpu.py");
static_assert(sizeof(PropagateArgs) == 10 * 8 + 4 * 8 + 14 * 4 + 3 * 4 + 4, "PropagateArgs: see blit/gpu.py");
static_assert(sizeof(MergeArgs) == 4 * 8 + 2 * 4, "MergeArgs: see blit/gpu.py");
static_assert(sizeof(TemporalArgs) == 5 * 8 + 11 * 4 + 4, "TemporalArgs: see blit/gpu.py");
static_assert(sizeof(UpsampleArgs) == 2 * 8 + 2 * 8 + 4 * 4, "UpsampleArgs: see blit/gpu.py");
static_assert(sizeof(CompositeArgs) == 3 * 8 + 6 * 4, "CompositeArgs: see blit/gpu.py");
static_assert(sizeof(GrayArgs) == 3 * 8 + 2 * 4, "GrayArgs: see blit/gpu.py");
static_assert(sizeof(PyrDownArgs) == 3 * 8 + 4 * 4, "PyrDownArgs: see blit/gpu.py");
static_assert(sizeof(DetailArgs) == 8 * 8 + 5 * 4 + 4, "DetailArgs: see blit/gpu.py");
static_assert(sizeof(FlowUpArgs) == 2 * 8 + 8 * 4, "FlowUpArgs: see blit/gpu.py");
static_assert(sizeof(MaskUpArgs) == 2 * 8 + 8 * 4, "MaskUpArgs: see blit/gpu.py");
static_assert(sizeof(DisArgs) == 11 * 8 + 10 * 4, "DisArgs: see blit/gpu.py");
static_assert(sizeof(MlsArgs) == 8 + 2 * 8 + 3 * 4 + 4 + 4 * kMaxLandmarks * 8,
              "MlsArgs: see blit/gpu.py");
static_assert(sizeof(MaskArgs) == 4 * 8 + 7 * 4 + 2 * kMaxPolygon * 4 + (kMaxRadius + 1) * 4,
              "MaskArgs: see blit/gpu.py");

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
// Numba's min(a, b) / max(a, b) of two floats (Python's algorithm): b when
// b < a (b > a), else a; so a NaN first argument is kept, a NaN second one dropped.
SB_FN float pymin(float a, float b) { return b < a ? b : a; }
SB_FN float pymax(float a, float b) { return b > a ? b : a; }

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
                         const float* sapp, long long ws, float lam_pos, float lam_app) {
    double dpos = add_rn(fabs((double)cx - (double)gx), fabs((double)cy - (double)gy));
    float dapp = mulf_rn(lam_app, fabsf(sapp[cy * ws + cx] - a));
    return add_rn(mul_rn((double)lam_pos, dpos), (double)dapp);
}
SB_FN double guide_error(long long cx, long long cy, float gx, float gy, float a,
                         const LookupArgs& p) {
    return guide_error(cx, cy, gx, gy, a, p.sapp, p.ws, p.lam_pos, p.lam_app);
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

// ---------------------------------------------------------------------------
// The stream: propagation of the sources and the temporal filter
// ---------------------------------------------------------------------------

// Propagation at pixel (x, y) of the box: the previous source at q = round(q*)
// moved by q* - q (q* from the flow, or by Newton steps on the previous
// positional guide with the inverse Jacobian), kept where its rounding lies
// in the exemplar with a guide error below the threshold; need marks the
// active pixels not kept. `use_flow` is p.flow != null.
//
// Floats as Numba: float32 for the flow motion (q*, its rounding
// floor(v + 0.5) and the fraction) and for the source s' = s(q) + (q* - q);
// float64 for the guide motion (the Jacobian is float64, the guide
// difference float32, widened), rounded to float32 for the fraction. The
// float -> int conversions truncate like Numba's int(); they agree for every
// finite value below 2**63 in magnitude (a non-finite flow, guide or source
// is converted differently by x86 and by the GPU).
SB_FN void propagate_pixel(const PropagateArgs& p, bool use_flow, long long x, long long y) {
    const long long t = y * p.w + x;
    bool kept = false;
    if (!p.active || p.active[t]) {
        const float gx = p.tpos[2 * t], gy = p.tpos[2 * t + 1];
        // (px, py): this pixel in the previous box's coordinates
        const long long px = x + p.ox - p.pox, py = y + p.oy - p.poy;
        long long qx, qy;
        float fx = 0.0f, fy = 0.0f;
        if (use_flow) {
            // q*: where the flow says this pixel's content was
            const float* f = p.flow + 2 * ((y + p.oy - p.foy) * (long long)p.fw + x + p.ox - p.fox);
            const float qfx = (float)px + f[0];
            const float qfy = (float)py + f[1];
            qx = (long long)floorf(qfx + 0.5f);
            qy = (long long)floorf(qfy + 0.5f);
            fx = qfx - (float)qx;
            fy = qfy - (float)qy;
        } else {
            // q*: where the previous positional guide had this pixel's guide value
            qx = px;
            qy = py;
            for (int i = 0; i < p.iterations; ++i) {
                if (!(0 <= qx && qx < p.pw && 0 <= qy && qy < p.ph)) break;
                const float* pp = p.prev_pos + 2 * (qy * p.pw + qx);
                const double dx = gx - pp[0], dy = gy - pp[1];  // float32 differences
                qx += (long long)floor(add_rn(add_rn(mul_rn(p.jxx, dx), mul_rn(p.jxy, dy)), 0.5));
                qy += (long long)floor(add_rn(add_rn(mul_rn(p.jyx, dx), mul_rn(p.jyy, dy)), 0.5));
            }
            if (0 <= qx && qx < p.pw && 0 <= qy && qy < p.ph) {
                const float* pp = p.prev_pos + 2 * (qy * p.pw + qx);
                const double dx = gx - pp[0], dy = gy - pp[1];
                fx = (float)add_rn(mul_rn(p.jxx, dx), mul_rn(p.jxy, dy));
                fy = (float)add_rn(mul_rn(p.jyx, dx), mul_rn(p.jyy, dy));
            }
        }
        const bool inside = 0 <= qx && qx < p.pw && 0 <= qy && qy < p.ph;
        const float* s = inside ? p.prev_src + 2 * (qy * p.pw + qx) : nullptr;
        // NO_SOURCE / 2 is float64 in Numba (float32 / int); halving is exact
        if (inside && (double)s[0] > (double)kNoSource / 2) {
            // unit-scale patches: s' = s(q) + (q* - q)
            const float sx = s[0] + fx, sy = s[1] + fy;
            const long long cx = (long long)floorf(sx + 0.5f);
            const long long cy = (long long)floorf(sy + 0.5f);
            if (0 <= cx && cx < p.ws && 0 <= cy && cy < p.hs
                && guide_error(cx, cy, gx, gy, p.tapp[t], p.sapp, p.ws, p.lam_pos, p.lam_app)
                       < (double)p.threshold) {
                p.nnf[2 * t] = (int)cx;
                p.nnf[2 * t + 1] = (int)cy;
                p.src[2 * t] = sx;
                p.src[2 * t + 1] = sy;
                kept = true;
            }
        }
        p.need[t] = !kept;
    } else {
        p.need[t] = 0;
    }
    if (!kept) {
        p.nnf[2 * t] = kInactive;
        p.nnf[2 * t + 1] = kInactive;
        p.src[2 * t] = kNoSource;
        p.src[2 * t + 1] = kNoSource;
    }
}

// Merge at pixel (x, y): where need, the fresh lookup's entry becomes the
// NNF entry and the source (int32 -> float32, exact below 2**24).
SB_FN void merge_pixel(const MergeArgs& m, long long x, long long y) {
    const long long t = y * m.w + x;
    if (!m.need[t]) return;
    m.nnf[2 * t] = m.fresh[2 * t];
    m.nnf[2 * t + 1] = m.fresh[2 * t + 1];
    m.src[2 * t] = (float)m.fresh[2 * t];
    m.src[2 * t + 1] = (float)m.fresh[2 * t + 1];
}

// First pass of the temporal filter at pixel (x, y): the history
// (1 - alpha) S + alpha clamp(bilinear H_prev(p + b(p)), 3x3 range of S),
// or S where the warped position has no history; NO_HISTORY outside active.
// temporal_round_pixel rounds it into current once every pixel's first pass
// has read its neighbours.
//
// The 3x3 range is taken directly over the window, where Numba slides column
// ranges along the row: the same integer min and max. Floats: float32 in
// Numba's order, products non-fusing: the result is bit-identical.
SB_FN void temporal_pixel(const TemporalArgs& a, bool clamp, long long x, long long y) {
    const long long t = y * a.w + x;
    float* hist = a.hist + 3 * t;
    if (a.active && !a.active[t]) {
        hist[0] = kNoHistory;
        hist[1] = kNoHistory;
        hist[2] = kNoHistory;
        return;
    }
    const unsigned char* cur = a.current + 3 * t;
    // per-channel range of the active pixels of the 3x3 neighbourhood
    int lo[3] = {255, 255, 255}, hi[3] = {0, 0, 0};
    if (clamp) {
        for (long long ny = imax(y - 1, 0); ny <= imin(y + 1, a.h - 1); ++ny) {
            for (long long nx = imax(x - 1, 0); nx <= imin(x + 1, a.w - 1); ++nx) {
                const long long n = ny * a.w + nx;
                if (a.active && !a.active[n]) continue;
                for (int c = 0; c < 3; ++c) {
                    const int v = a.current[3 * n + c];
                    lo[c] = v < lo[c] ? v : lo[c];
                    hi[c] = v > hi[c] ? v : hi[c];
                }
            }
        }
    }
    // q: where this pixel's content was, in the previous region's pixels
    const float* f = a.flow + 2 * ((y + a.oy - a.foy) * (long long)a.fw + x + a.ox - a.fox);
    const float qx = (float)(x + a.ox - a.pox) + f[0];
    const float qy = (float)(y + a.oy - a.poy) + f[1];
    bool ok = 0.0f <= qx && qx <= (float)(a.pw - 1) && 0.0f <= qy && qy <= (float)(a.ph - 1);
    long long ix = 0, iy = 0, jx = 0, jy = 0;
    if (ok) {
        ix = (long long)floorf(qx);
        iy = (long long)floorf(qy);
        jx = imin(ix + 1, a.pw - 1);  // on the last row or column the weight of the next is 0
        jy = imin(iy + 1, a.ph - 1);
        ok = a.prev[3 * (iy * a.pw + ix)] >= 0 && a.prev[3 * (iy * a.pw + jx)] >= 0
             && a.prev[3 * (jy * a.pw + ix)] >= 0 && a.prev[3 * (jy * a.pw + jx)] >= 0;
    }
    if (!ok) {
        for (int c = 0; c < 3; ++c) hist[c] = (float)cur[c];
        return;
    }
    const float fx = qx - (float)ix, fy = qy - (float)iy;
    const float w00 = mulf_rn(1.0f - fx, 1.0f - fy);
    const float w01 = mulf_rn(fx, 1.0f - fy);
    const float w10 = mulf_rn(1.0f - fx, fy);
    const float w11 = mulf_rn(fx, fy);
    const float* p00 = a.prev + 3 * (iy * a.pw + ix);
    const float* p01 = a.prev + 3 * (iy * a.pw + jx);
    const float* p10 = a.prev + 3 * (jy * a.pw + ix);
    const float* p11 = a.prev + 3 * (jy * a.pw + jx);
    for (int c = 0; c < 3; ++c) {
        float o = mulf_rn(p00[c], w00) + mulf_rn(p01[c], w01) + mulf_rn(p10[c], w10)
                  + mulf_rn(p11[c], w11);
        if (clamp) o = pymin(pymax(o, (float)lo[c]), (float)hi[c]);  // to the 3x3 range of this frame
        const float v = mulf_rn(1.0f - a.alpha, (float)cur[c]) + mulf_rn(a.alpha, o);
        hist[c] = v;
    }
}

// Second pass, in place: the rounded history into current at the active
// pixels (after every first pass has read current).
SB_FN void temporal_round_pixel(const TemporalArgs& a, long long x, long long y) {
    const long long t = y * a.w + x;
    if (a.active && !a.active[t]) return;
    unsigned char* cur = a.current + 3 * t;
    // int(v + 0.5), then uint8 (modulo 256), as Numba
    for (int c = 0; c < 3; ++c) cur[c] = (unsigned char)(long long)(a.hist[3 * t + c] + 0.5f);
}

// The MLS similarity (Schaefer et al. 2006, eq. 7 in complex numbers, weights
// 1 / |p_i - v|^2) at node (i, j): the weighted centroids of the target's
// and the exemplar's landmarks, then a = sum w conj(p^) q^ / sum w |p^|^2,
// f(v) = a (v - p*) + q*; exactly the exemplar's landmark on one of the
// target's. In float64 in Numba's order (the weights computed again in the
// second pass: the same values), products non-fusing, rounded to float32 once.
SB_FN void mls_node(const MlsArgs& m, long long i, long long j) {
    const double x = mul_rn((double)i, m.step_x), y = mul_rn((double)j, m.step_y);
    const double* src = m.points;
    const double* dst = m.points + 2 * (long long)m.n;
    float* out = m.nodes + 2 * (j * m.w + i);
    double wsum = 0.0, px = 0.0, py = 0.0, qx = 0.0, qy = 0.0;
    for (long long k = 0; k < m.n; ++k) {
        const double dx = src[2 * k] - x, dy = src[2 * k + 1] - y;
        const double d2 = add_rn(mul_rn(dx, dx), mul_rn(dy, dy));
        if (d2 < 1e-12) {
            out[0] = (float)dst[2 * k];
            out[1] = (float)dst[2 * k + 1];
            return;
        }
        const double wi = 1.0 / d2;
        wsum = wsum + wi;
        px = add_rn(px, mul_rn(wi, src[2 * k]));
        py = add_rn(py, mul_rn(wi, src[2 * k + 1]));
        qx = add_rn(qx, mul_rn(wi, dst[2 * k]));
        qy = add_rn(qy, mul_rn(wi, dst[2 * k + 1]));
    }
    px = px / wsum;
    py = py / wsum;
    qx = qx / wsum;
    qy = qy / wsum;
    double mu = 0.0, ar = 0.0, ai = 0.0;
    for (long long k = 0; k < m.n; ++k) {
        const double dx = src[2 * k] - x, dy = src[2 * k + 1] - y;
        const double wi = 1.0 / add_rn(mul_rn(dx, dx), mul_rn(dy, dy));
        const double phx = src[2 * k] - px, phy = src[2 * k + 1] - py;
        const double qhx = dst[2 * k] - qx, qhy = dst[2 * k + 1] - qy;
        mu = add_rn(mu, mul_rn(wi, add_rn(mul_rn(phx, phx), mul_rn(phy, phy))));
        ar = add_rn(ar, mul_rn(wi, add_rn(mul_rn(phx, qhx), mul_rn(phy, qhy))));
        ai = add_rn(ai, mul_rn(wi, mul_rn(phx, qhy) - mul_rn(phy, qhx)));
    }
    ar = ar / mu;
    ai = ai / mu;
    const double vx = x - px, vy = y - py;
    out[0] = (float)add_rn(mul_rn(ar, vx) - mul_rn(ai, vy), qx);
    out[1] = (float)add_rn(add_rn(mul_rn(ar, vy), mul_rn(ai, vx)), qy);
}

// The positional guide at pixel (x, y): bilinear between the four nodes
// around it. Node column and weight as Numba computes them (float64 x * sx
// truncated, the remainder rounded to float32), the interpolation in float32
// in its order, products non-fusing.
SB_FN void upsample_pixel(const UpsampleArgs& u, long long x, long long y) {
    const double fx = mul_rn((double)x, u.sx);
    const long long i = imin((long long)fx, u.gw - 2);
    const float tx = (float)(fx - (double)i);
    const double fy = mul_rn((double)y, u.sy);
    const long long j = imin((long long)fy, u.gh - 2);
    const float ty = (float)(fy - (double)j);
    const float* n0 = u.nodes + 2 * (j * u.gw + i);  // node (j, i); (j, i + 1) follows it
    const float* n1 = n0 + 2 * u.gw;                 // node (j + 1, i)
    float* o = u.out + 2 * (y * u.w + x);
    for (int c = 0; c < 2; ++c) {
        const float top = n0[c] + mulf_rn(n0[2 + c] - n0[c], tx);
        const float bot = n1[c] + mulf_rn(n1[2 + c] - n1[c], tx);
        o[c] = top + mulf_rn(bot - top, ty);
    }
}

// The composite at box pixel (x, y): round(b + a (f - b)) per channel in
// float32 (Numba's order, the product non-fusing), into the frame; a pixel
// whose weight is below min_weight keeps the frame exactly.
SB_FN void composite_pixel(const CompositeArgs& c, long long x, long long y) {
    const float a = c.mask[y * c.w + x];
    if (a < c.min_weight) return;
    unsigned char* o = c.out + 3 * ((y + c.y0) * (long long)c.fw + x + c.x0);
    const unsigned char* f = c.fg + 3 * (y * c.w + x);
    for (int k = 0; k < 3; ++k) {
        const float b = (float)o[k];
        o[k] = (unsigned char)(long long)(b + mulf_rn(a, (float)f[k] - b) + 0.5f);
    }
}

// The offset NNF(q) - q of pixel q = (qx, qy), into (dx, dy); false where q
// is outside the NNF or inactive (blending._offset_kernel's -1).
SB_FN bool nnf_offset(const DenoiseArgs& d, long long qx, long long qy, long long& dx,
                      long long& dy) {
    if (qx < 0 || qx >= d.w || qy < 0 || qy >= d.h) return false;
    const int* q = d.nnf + 2 * (qy * d.w + qx);
    if (q[0] < 0) return false;
    dx = q[0] - qx;
    dy = q[1] - qy;
    return true;
}

// How many pixels of the (2 radius + 1)^2 neighbourhood of (x, y) have the
// offset (dx, dy).
SB_FN long long offset_count(const DenoiseArgs& d, int radius, long long x, long long y,
                             long long dx, long long dy) {
    long long c = 0, ex, ey;
    for (long long qy = y - radius; qy <= y + radius; ++qy)
        for (long long qx = x - radius; qx <= x + radius; ++qx)
            if (nnf_offset(d, qx, qy, ex, ey) && ex == dx && ey == dy) ++c;
    return c;
}

// The mode filter at pixel (x, y): the offset most frequent around it (its
// own unless another is strictly more frequent; then the first of those in
// raster order); its own source where that lies off the exemplar; an inactive
// pixel copied as it is. Integer arithmetic only: the Numba kernel's result
// (its 3x3 fast path decides as its generic one: a majority of the n window
// positions is the mode).
SB_FN void denoise_pixel(const DenoiseArgs& d, int radius, long long x, long long y) {
    const int* p = d.nnf + 2 * (y * d.w + x);
    int* o = d.out + 2 * (y * d.w + x);
    o[0] = p[0];
    o[1] = p[1];
    long long ox, oy;
    if (!nnf_offset(d, x, y, ox, oy)) return;
    const long long n = (2LL * radius + 1) * (2LL * radius + 1);
    long long best = offset_count(d, radius, x, y, ox, oy), mx = ox, my = oy;
    if (2 * best <= n) {  // not a majority: another offset may be more frequent
        long long dx, dy;
        for (long long qy = y - radius; qy <= y + radius; ++qy) {
            for (long long qx = x - radius; qx <= x + radius; ++qx) {
                if (!nnf_offset(d, qx, qy, dx, dy)) continue;
                const long long c = offset_count(d, radius, x, y, dx, dy);
                if (c > best) {
                    best = c;
                    mx = dx;
                    my = dy;
                }
            }
        }
    }
    if (mx == ox && my == oy) return;
    const long long sx = x + mx, sy = y + my;
    if (0 <= sx && sx < d.ws && 0 <= sy && sy < d.hs) {
        o[0] = (int)sx;
        o[1] = (int)sy;
    }
}

// ---------------------------------------------------------------------------
// The appearance guide (guides/appearance.py): integer arithmetic up to the
// matching table, whose float64 steps are np.interp's, one rounding each.
// ---------------------------------------------------------------------------

// appearance.GRAY_WEIGHTS, GRAY_SHIFT; LINEAR_BITS; the detail's levels and bins.
constexpr int kGrayB = 1868, kGrayG = 9617, kGrayR = 4899, kGrayShift = 14;
constexpr int kLinearBits = 11;
constexpr int kLevels = 511;   // detail -255..255 as d + 255
constexpr int kBins = 512;     // appearance._BINS

// The luminance at (x, y), rounded.
SB_FN void gray_pixel(const GrayArgs& g, long long x, long long y) {
    const unsigned char* p = g.image + y * g.stride + 3 * x;
    g.out[y * g.w + x] = (unsigned char)((p[0] * kGrayB + p[1] * kGrayG + p[2] * kGrayR
                                          + (1 << (kGrayShift - 1))) >> kGrayShift);
}

// BORDER_REFLECT_101 of index i into 0..n-1 (OpenCV's default border).
SB_FN long long reflect101(long long i, long long n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

// The pyramid's next level at (x, y): the 5x5 binomial (1 4 6 4 1)^2 / 256
// around source pixel (2x, 2y), borders reflected, rounded.
SB_FN void pyrdown_pixel(const PyrDownArgs& p, long long x, long long y) {
    const int k[5] = {1, 4, 6, 4, 1};
    long long sum = 0;
    for (int i = 0; i < 5; ++i) {
        const unsigned char* row = p.src + reflect101(2 * y + i - 2, p.sh) * p.stride;
        long long r = 0;
        for (int j = 0; j < 5; ++j) r += k[j] * row[reflect101(2 * x + j - 2, p.sw)];
        sum += k[i] * r;
    }
    p.out[y * p.w + x] = (unsigned char)((sum + 128) >> 8);
}

// appearance.centre_tap: output index i of `size` read from `src` inputs at
// first + rest / (2 size) (rest 0 before the first input's centre and past the last's).
SB_FN void centre_tap(long long i, long long size, long long src, long long& first,
                      long long& rest) {
    const long long num = (2 * i + 1) * src - size;
    first = 0;
    rest = 0;
    if (num <= 0) return;
    first = num / (2 * size);
    if (first >= src - 1) {
        first = src - 1;
        return;
    }
    rest = num - first * 2 * size;
}

// appearance.linear_tap: the next input's weight rounded to 1/2^kLinearBits.
SB_FN void linear_tap(long long i, long long size, long long src, long long& first,
                      long long& weight) {
    long long rest;
    centre_tap(i, size, src, first, rest);
    weight = (rest * (1LL << kLinearBits) + size) / (2 * size);
}

// The blur at (x, y): the pyramid's top bilinearly at (x, y), along x then y, rounded.
SB_FN long long blur_at(const DetailArgs& a, long long x, long long y) {
    long long x0, ax, y0, ay;
    linear_tap(x, a.w, a.sw, x0, ax);
    linear_tap(y, a.h, a.sh, y0, ay);
    const long long x1 = imin(x0 + 1, a.sw - 1), y1 = imin(y0 + 1, a.sh - 1);
    const long long one = 1LL << kLinearBits;
    const unsigned char* r0 = a.small + y0 * a.sw;
    const unsigned char* r1 = a.small + y1 * a.sw;
    const long long top = r0[x0] * (one - ax) + r0[x1] * ax;
    const long long bottom = r1[x0] * (one - ax) + r1[x1] * ax;
    return (top * (one - ay) + bottom * ay + (1LL << (2 * kLinearBits - 1))) >> (2 * kLinearBits);
}

// One more pixel in a count (on the device, from many threads at once).
SB_FN void count_one(unsigned int* c) {
#ifdef __CUDA_ARCH__
    atomicAdd(c, 1u);
#else
    ++*c;
#endif
}

// The blur at (x, y) written, and the pixel's detail level counted: in
// row 0 of the counts inside the mask (or without one), in row 1 outside.
SB_FN void detail_count_pixel(const DetailArgs& a, long long x, long long y) {
    const long long b = blur_at(a, x, y);
    a.blur[y * a.w + x] = (unsigned char)b;
    const long long level = a.gray[y * a.w + x] - b + 255;
    const bool inside = a.mask == nullptr || a.mask[y * a.w + x] > 0.5f;
    count_one(a.counts + (inside ? 0 : kLevels) + level);
}

// appearance._LEVEL_BINS: the bin of detail level l (d = l - 255), as
// match_histogram bins the value d over [-128, 128) in 512 bins, clipped.
SB_FN long long level_bin(long long level) { return clamp(2 * level - 254, 0, kBins - 1); }

// appearance.quantile_at: the quantile function q (at the n probabilities
// i / (n - 1)) at p, interpolated linearly as np.interp.
SB_FN double quantile_at(double p, const float* q, long long n) {
    const double step = 1.0 / (double)(n - 1);
    if (p < 0.0) return (double)q[0];
    if (p >= 1.0) return (double)q[n - 1];
    long long j = imin((long long)(p / step), n - 2);
    while (j > 0 && mul_rn((double)j, step) > p) --j;
    while (j < n - 2 && mul_rn((double)(j + 1), step) <= p) ++j;
    const double x0 = mul_rn((double)j, step), y0 = (double)q[j];
    if (x0 == p) return y0;
    const double x1 = j + 1 == n - 1 ? 1.0 : mul_rn((double)(j + 1), step);
    const double slope = ((double)q[j + 1] - y0) / (x1 - x0);
    return add_rn(mul_rn(slope, p - x0), y0);
}

// The matched value of bin b: its mid-rank in the CDF of the counts inside
// the mask (of all pixels where none is inside), through the quantile function.
SB_FN void detail_table_bin(const DetailArgs& a, long long b) {
    unsigned long long inside = 0;
    for (int l = 0; l < kLevels; ++l) inside += a.counts[l];
    unsigned long long cum = 0, hist = 0, total = 0;
    for (int l = 0; l < kLevels; ++l) {
        const unsigned long long c = a.counts[l] + (inside ? 0u : a.counts[kLevels + l]);
        const long long bin = level_bin(l);
        total += c;
        if (bin <= b) cum += c;
        if (bin == b) hist += c;
    }
    // (hist / 2 is exact: a product by 0.5, kept apart from the difference)
    const double cdf = add_rn((double)cum, -mul_rn((double)hist, 0.5)) / (double)total;
    a.table[b] = (float)quantile_at(cdf, a.quantiles, a.nq);
}

// The guide at (x, y): the matched value of its detail's bin.
SB_FN void detail_map_pixel(const DetailArgs& a, long long x, long long y) {
    const long long i = y * a.w + x;
    a.out[i] = a.table[level_bin(a.gray[i] - a.blur[i] + 255)];
}

// ---------------------------------------------------------------------------
// The flow brought from DIS's half size to the box's (stream.upsample_flow)
// ---------------------------------------------------------------------------

// appearance.float_tap: the next input's weight in float32 (exact integers divided once).
SB_FN void float_tap(long long i, long long size, long long src, long long& first, float& weight) {
    long long rest;
    centre_tap(i, size, src, first, rest);
    weight = (float)rest / (float)(2 * size);
}

// The flow at (x, y) of the grown box: bilinear along x on two rows, then
// along y, every product rounded on its own.
SB_FN void flow_up_pixel(const FlowUpArgs& f, long long x, long long y) {
    long long x0, y0;
    float a, b;
    float_tap(clamp(x - f.left, 0, f.w - 1), f.w, f.hw, x0, a);
    float_tap(clamp(y - f.top, 0, f.h - 1), f.h, f.hh, y0, b);
    const long long x1 = imin(x0 + 1, f.hw - 1), y1 = imin(y0 + 1, f.hh - 1);
    const float na = 1.0f - a, nb = 1.0f - b;
    const float* r0 = f.half + 2 * y0 * f.hw;
    const float* r1 = f.half + 2 * y1 * f.hw;
    float* o = f.out + 2 * (y * f.ow + x);
    for (int c = 0; c < 2; ++c) {
        const float top = mulf_rn(r0[2 * x0 + c], na) + mulf_rn(r0[2 * x1 + c], a);
        const float bottom = mulf_rn(r1[2 * x0 + c], na) + mulf_rn(r1[2 * x1 + c], a);
        o[c] = mulf_rn(top, nb) + mulf_rn(bottom, b);
    }
}

// ---------------------------------------------------------------------------
// The head mask from its outline (mask.blurred_coverage, mask.enlarge_mask)
// ---------------------------------------------------------------------------

// mask.SAMPLES samples a pixel each way; the polygon in 1/mask.SUBPIXEL px.
constexpr long long kSamples = 4, kSubpixel = 16;
constexpr long long kStep = kSubpixel / kSamples, kFirst = kStep / 2 - kSubpixel / 2;

// Python's floor division a // b and ceil(a / b) for b > 0.
SB_FN long long floor_div(long long a, long long b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
SB_FN long long ceil_div(long long a, long long b) { return -floor_div(-a, b); }

// mask.crossing_samples: the samples of the row at y (1/kSubpixel px) left of
// where the edge (xa, ya)-(xb, yb) crosses it, 0..cols; exact integers.
SB_FN long long crossing_samples(long long xa, long long ya, long long xb, long long yb,
                                 long long y, long long cols) {
    if (yb < ya) {
        long long t = xa; xa = xb; xb = t;
        t = ya; ya = yb; yb = t;
    }
    const long long den = yb - ya;
    const long long num = (xa - kFirst) * den + (y - ya) * (xb - xa);
    return clamp(ceil_div(num, kStep * den), 0, cols);
}

// Sample row j of mask._coverage_kernel: its crossings sorted, the spans
// between pairs (even-odd) added to the blocks they cover (integers: the
// same sums in any order of the rows' threads).
SB_FN void mask_cover_row(const MaskArgs& m, long long j) {
    const long long per = (long long)m.f * kSamples, cols = m.sw * per, by = j / per;
    const long long y = kStep * j + kFirst;
    long long xs[kMaxPolygon];
    long long k = 0;
    for (long long e = 0; e < m.n; ++e) {
        const long long e1 = (e + 1) % m.n;
        const long long xa = m.polygon[2 * e], ya = m.polygon[2 * e + 1];
        const long long xb = m.polygon[2 * e1], yb = m.polygon[2 * e1 + 1];
        if ((ya < yb ? ya : yb) <= y && y < (ya < yb ? yb : ya)) {
            const long long c = crossing_samples(xa, ya, xb, yb, y, cols);
            long long i = k;
            while (i > 0 && xs[i - 1] > c) {
                xs[i] = xs[i - 1];
                --i;
            }
            xs[i] = c;
            ++k;
        }
    }
    for (long long p = 0; p + 1 < k; p += 2) {
        const long long s0 = xs[p], s1 = xs[p + 1];
        const long long end = imin((s1 + per - 1) / per, m.sw);
        for (long long bx = s0 / per; bx < end; ++bx) {
            const int add = (int)(imin(s1, (bx + 1) * per) - imax(s0, bx * per));
#ifdef __CUDA_ARCH__
            atomicAdd(m.counts + by * m.sw + bx, add);
#else
            m.counts[by * m.sw + bx] += add;
#endif
        }
    }
}

// The coverage's share at block (x, y): exact integers divided once.
SB_FN void mask_norm_pixel(const MaskArgs& m, long long x, long long y) {
    const long long i = y * m.sw + x;
    m.small[i] = (float)m.counts[i] / (float)(kSamples * kSamples * m.f * m.f);
}

// mask.reflect_index (cv2.borderInterpolate): BORDER_REFLECT (delta 0) or _101 (1).
SB_FN long long reflect_index(long long p, long long n, long long delta) {
    if (n == 1) return 0;
    while (p < 0 || p >= n) p = p < 0 ? -p - 1 + delta : n - 1 - (p - n) - delta;
    return p;
}

// One pixel of mask._blur_kernel: along x (small -> row) or y (row -> blur),
// the sum from -radius to radius in float32, each product rounded on its own.
SB_FN void mask_blur_pixel(const MaskArgs& m, bool along_x, long long x, long long y) {
    const float* src = along_x ? m.small : m.row;
    float acc = 0.0f;
    for (long long k = -m.radius; k <= m.radius; ++k) {
        const float v = along_x ? src[y * m.sw + reflect_index(x + k, m.sw, m.delta)]
                                : src[reflect_index(y + k, m.sh, m.delta) * m.sw + x];
        acc = acc + mulf_rn(m.taps[k < 0 ? -k : k], v);
    }
    (along_x ? m.row : m.blur)[y * m.sw + x] = acc;
}

// The mask at (x, y) of the box: bilinear along x on two rows, then along y,
// every product rounded on its own, cut to at most 1.
SB_FN void mask_up_pixel(const MaskUpArgs& m, long long x, long long y) {
    long long x0, y0;
    float a, b;
    float_tap(x + m.ox, m.gw, m.sw, x0, a);
    float_tap(y + m.oy, m.gh, m.sh, y0, b);
    const long long x1 = imin(x0 + 1, m.sw - 1), y1 = imin(y0 + 1, m.sh - 1);
    const float na = 1.0f - a, nb = 1.0f - b;
    const float* r0 = m.small + y0 * m.sw;
    const float* r1 = m.small + y1 * m.sw;
    const float top = mulf_rn(r0[x0], na) + mulf_rn(r0[x1], a);
    const float bottom = mulf_rn(r1[x0], na) + mulf_rn(r1[x1], a);
    const float v = mulf_rn(top, nb) + mulf_rn(bottom, b);
    m.out[y * m.w + x] = v > 1.0f ? 1.0f : v;
}

// ---------------------------------------------------------------------------
// DIS optical flow, every patch of a level at once (blit/dis.py)
// ---------------------------------------------------------------------------

// One pixel of dis.halve: the rounded mean of the 2x2 block of each image.
SB_FN void dis_halve_pixel(const DisArgs& a, long long x, long long y) {
    const long long hw = a.w / 2, i = y * hw + x;
    const long long t = 2 * y * a.w + 2 * x, b = t + a.w;
    a.half0[i] = (unsigned char)((a.i0[t] + a.i0[t + 1] + a.i0[b] + a.i0[b + 1] + 2) >> 2);
    a.half1[i] = (unsigned char)((a.i1[t] + a.i1[t + 1] + a.i1[b] + a.i1[b + 1] + 2) >> 2);
}

// One pixel of dis.sobel: the 3x3 Sobel gradients of i0, borders reflected (_101).
SB_FN void dis_sobel_pixel(const DisArgs& a, long long x, long long y) {
    const unsigned char* rm = a.i0 + reflect_index(y - 1, a.h, 1) * a.w;
    const unsigned char* r = a.i0 + y * a.w;
    const unsigned char* rp = a.i0 + reflect_index(y + 1, a.h, 1) * a.w;
    const long long xm = reflect_index(x - 1, a.w, 1), xp = reflect_index(x + 1, a.w, 1);
    const int gx = (rm[xp] - rm[xm]) + 2 * (r[xp] - r[xm]) + (rp[xp] - rp[xm]);
    const int gy = (rp[xm] - rm[xm]) + 2 * (rp[x] - rm[x]) + (rp[xp] - rm[xp]);
    a.gx[y * a.w + x] = (short)gx;
    a.gy[y * a.w + x] = (short)gy;
}

// One patch of dis.structure_tensor: exact integer sums, then float32.
SB_FN void dis_tensor_patch(const DisArgs& a, long long p) {
    const long long i = (p / a.ws) * a.stride, j = (p % a.ws) * a.stride;
    long long sxx = 0, syy = 0, sxy = 0, sx = 0, sy = 0;
    for (int r = 0; r < a.patch; ++r) {
        for (int c = 0; c < a.patch; ++c) {
            const long long k = (i + r) * a.w + j + c;
            const long long gx = a.gx[k], gy = a.gy[k];
            sxx += gx * gx;
            syy += gy * gy;
            sxy += gx * gy;
            sx += gx;
            sy += gy;
        }
    }
    const float n = (float)(a.patch * a.patch), fx = (float)sx, fy = (float)sy;
    float* o = a.tensor + 5 * p;
    o[0] = (float)sxx - mulf_rn(fx, fx) / n;
    o[1] = (float)syy - mulf_rn(fy, fy) / n;
    o[2] = (float)sxy - mulf_rn(fx, fy) / n;
    o[3] = fx;
    o[4] = fy;
}

// dis._weights: a clamped position's whole part and fraction.
SB_FN void dis_weights(float pos, float lo, float hi, long long& whole, float& frac) {
    const float p = pymin(pymax(pos, lo), hi);
    const float f = floorf(p);
    whole = (long long)f;
    frac = p - f;
}

// dis._bilinear: four taps of img (h, w), rows and columns past the edge replicated.
SB_FN float dis_bilinear(const unsigned char* img, long long h, long long w, long long y0,
                         long long x0, float w00, float w01, float w10, float w11) {
    const long long ya = clamp(y0, 0, h - 1), yb = clamp(y0 + 1, 0, h - 1);
    const long long xa = clamp(x0, 0, w - 1), xb = clamp(x0 + 1, 0, w - 1);
    return mulf_rn(w00, (float)img[ya * w + xa]) + mulf_rn(w01, (float)img[ya * w + xb])
           + mulf_rn(w10, (float)img[yb * w + xa]) + mulf_rn(w11, (float)img[yb * w + xb]);
}

// dis._patch: the mean-normalised SSD of i0's patch at (i, j) against i1's
// moved by (u, v), and the gradient's parts (du, dv).
SB_FN float dis_patch(const DisArgs& a, long long i, long long j, float u, float v, float sx,
                      float sy, float& du, float& dv) {
    long long y0, x0;
    float fy, fx;
    dis_weights((float)i + v, (float)(1 - a.patch), (float)(a.h - 1), y0, fy);
    dis_weights((float)j + u, (float)(1 - a.patch), (float)(a.w - 1), x0, fx);
    const float w11 = mulf_rn(fy, fx), w10 = mulf_rn(fy, 1.0f - fx);
    const float w01 = mulf_rn(1.0f - fy, fx), w00 = mulf_rn(1.0f - fy, 1.0f - fx);
    float sd = 0.0f, sdd = 0.0f, sgx = 0.0f, sgy = 0.0f;
    // every tap inside: the bilinear's arithmetic without its clamps
    const bool inside = y0 >= 0 && x0 >= 0 && y0 + a.patch < a.h && x0 + a.patch < a.w;
    for (int r = 0; r < a.patch; ++r) {
        const unsigned char* ra = a.i1 + (inside ? (y0 + r) * a.w : 0);  // (read only inside)
        const unsigned char* rb = ra + a.w;
        for (int c = 0; c < a.patch; ++c) {
            const long long k = (i + r) * a.w + j + c, x = x0 + c;
            const float b = inside
                ? mulf_rn(w00, (float)ra[x]) + mulf_rn(w01, (float)ra[x + 1])
                      + mulf_rn(w10, (float)rb[x]) + mulf_rn(w11, (float)rb[x + 1])
                : dis_bilinear(a.i1, a.h, a.w, y0 + r, x0 + c, w00, w01, w10, w11);
            const float d = b - (float)a.i0[k];
            sd = sd + d;
            sdd = sdd + mulf_rn(d, d);
            sgx = sgx + mulf_rn(d, (float)a.gx[k]);
            sgy = sgy + mulf_rn(d, (float)a.gy[k]);
        }
    }
    const float n = (float)(a.patch * a.patch);
    du = sgx - mulf_rn(sd, sx) / n;
    dv = sgy - mulf_rn(sd, sy) / n;
    return sdd - mulf_rn(sd, sd) / n;
}

// dis._neighbour: the k-th neighbour of patch (pa, pb): left, right, up, down.
SB_FN void dis_neighbour(long long pa, long long pb, int k, long long& na, long long& nb) {
    na = pa + (k == 2 ? -1 : (k == 3 ? 1 : 0));
    nb = pb + (k == 0 ? -1 : (k == 1 ? 1 : 0));
}

// One patch of a round of dis.patch_search: the best of its flow and (after
// the first round) its left, right, upper and lower neighbours' of s_in,
// then up to `steps` Gauss-Newton steps, into s_out (its shortcuts too: a
// flow tried already is not tried again; the first step reuses the chosen
// flow's SSD and gradient parts).
SB_FN void dis_search_patch(const DisArgs& a, long long p) {
    const long long pa = p / a.ws, pb = p % a.ws;
    const long long i = pa * a.stride, j = pb * a.stride, half = a.patch / 2;
    float u, v, du, dv;
    if (a.first) {
        const float* f = a.flow + 2 * ((i + half) * a.w + j + half);
        u = f[0];
        v = f[1];
    } else {
        u = a.s_in[2 * p];
        v = a.s_in[2 * p + 1];
    }
    const float* t = a.tensor + 5 * p;
    const float sx = t[3], sy = t[4];
    float cost = dis_patch(a, i, j, u, v, sx, sy, du, dv);
    if (!a.first) {
        for (int k = 0; k < 4; ++k) {
            long long na, nb;
            dis_neighbour(pa, pb, k, na, nb);
            if (na < 0 || na >= a.hs || nb < 0 || nb >= a.ws) continue;
            const float cu = a.s_in[2 * (na * a.ws + nb)], cv = a.s_in[2 * (na * a.ws + nb) + 1];
            bool tried = cu == a.s_in[2 * p] && cv == a.s_in[2 * p + 1];
            for (int m = 0; m < k; ++m) {
                long long ma, mb;
                dis_neighbour(pa, pb, m, ma, mb);
                if (ma >= 0 && ma < a.hs && mb >= 0 && mb < a.ws)
                    tried = tried || (cu == a.s_in[2 * (ma * a.ws + mb)]
                                      && cv == a.s_in[2 * (ma * a.ws + mb) + 1]);
            }
            if (tried) continue;
            float cdu, cdv;
            const float c = dis_patch(a, i, j, cu, cv, sx, sy, cdu, cdv);
            if (c < cost) {
                cost = c;
                du = cdu;
                dv = cdv;
                u = cu;
                v = cv;
            }
        }
    }
    float det = mulf_rn(t[0], t[1]) - mulf_rn(t[2], t[2]);
    if (fabsf(det) < 0.001f) det = 0.001f;
    const float h11 = t[1] / det, h12 = -t[2] / det, h22 = t[0] / det;
    float cu = u, cv = v, prev = 1e10f;
    for (int s = 0; s < a.steps; ++s) {
        if (s > 0) cost = dis_patch(a, i, j, cu, cv, sx, sy, du, dv);
        cu = cu - (mulf_rn(h11, du) + mulf_rn(h12, dv));
        cv = cv - (mulf_rn(h12, du) + mulf_rn(h22, dv));
        if (cost >= prev) break;
        prev = cost;
    }
    const float eu = cu - u, ev = cv - v;
    if (mulf_rn(eu, eu) + mulf_rn(ev, ev) <= (float)(a.patch * a.patch)) {
        u = cu;
        v = cv;
    }
    a.s_out[2 * p] = u;
    a.s_out[2 * p + 1] = v;
}

// dis._covering: the first and last patch (of n) over pixel i.
SB_FN void dis_covering(long long i, long long patch, long long stride, long long n,
                        long long& lo, long long& hi) {
    hi = imin(i / stride, n - 1);
    lo = imin(imax(floor_div(i - patch + stride, stride), 0), hi);
}

// One pixel of dis.densify: the patches' flows over it, weighted by
// 1 / max(1, |I1(x + u) - I0(x)|), into flow.
SB_FN void dis_densify_pixel(const DisArgs& a, long long x, long long y) {
    long long a0, a1, b0, b1;
    dis_covering(y, a.patch, a.stride, a.hs, a0, a1);
    dis_covering(x, a.patch, a.stride, a.ws, b0, b1);
    const float i0 = (float)a.i0[y * a.w + x];
    float su = 0.0f, sv = 0.0f, sc = 0.0f;
    for (long long pa = a0; pa <= a1; ++pa) {
        for (long long pb = b0; pb <= b1; ++pb) {
            const float u = a.s_in[2 * (pa * a.ws + pb)], v = a.s_in[2 * (pa * a.ws + pb) + 1];
            long long py, px;
            float fy, fx;
            dis_weights((float)y + v, 0.0f, (float)(a.h - 1), py, fy);
            dis_weights((float)x + u, 0.0f, (float)(a.w - 1), px, fx);
            const float val = dis_bilinear(a.i1, a.h, a.w, py, px, mulf_rn(1.0f - fy, 1.0f - fx),
                                           mulf_rn(1.0f - fy, fx), mulf_rn(fy, 1.0f - fx),
                                           mulf_rn(fy, fx));
            const float c = 1.0f / pymax(1.0f, fabsf(val - i0));
            su = su + mulf_rn(c, u);
            sv = sv + mulf_rn(c, v);
            sc = sc + c;
        }
    }
    a.flow[2 * (y * a.w + x)] = su / sc;
    a.flow[2 * (y * a.w + x) + 1] = sv / sc;
}

// dis._up_tap: output index i of a doubling -> first input and the next's weight.
SB_FN void dis_up_tap(long long i, long long n, long long& first, float& weight) {
    if (i % 2 == 0) {
        first = i / 2 - 1;
        weight = 0.75f;
    } else {
        first = i / 2;
        weight = 0.25f;
    }
    if (first < 0) {
        first = 0;
        weight = 0.0f;
    } else if (first >= n - 1) {
        first = n - 1;
        weight = 0.0f;
    }
}

// One pixel of dis.upsample_flow2: small (sh, sw, 2) enlarged twice into
// flow (h, w, 2), its displacements doubled.
SB_FN void dis_up_pixel(const DisArgs& a, long long x, long long y) {
    long long y0, x0;
    float wy, wx;
    dis_up_tap(y, a.sh, y0, wy);
    dis_up_tap(x, a.sw, x0, wx);
    const long long y1 = imin(y0 + 1, a.sh - 1), x1 = imin(x0 + 1, a.sw - 1);
    const float* r0 = a.small + 2 * y0 * a.sw;
    const float* r1 = a.small + 2 * y1 * a.sw;
    for (int k = 0; k < 2; ++k) {
        const float top = mulf_rn(1.0f - wx, r0[2 * x0 + k]) + mulf_rn(wx, r0[2 * x1 + k]);
        const float bottom = mulf_rn(1.0f - wx, r1[2 * x0 + k]) + mulf_rn(wx, r1[2 * x1 + k]);
        a.flow[2 * (y * a.w + x) + k] = mulf_rn(2.0f, mulf_rn(1.0f - wy, top) + mulf_rn(wy, bottom));
    }
}

}  // namespace sb
