// CUDA kernels of the StyleBlit lookup, blend and NNF mode filter, and of the stream's
// propagation of the sources, temporal filter, positional and appearance guides and composite (blit/gpu.py loads them with
// cupy.RawModule). One thread per seed, per target pixel or per output pixel;
// the per-thread logic lives in styleblit_kernels.cuh, shared with a host
// build that the tests check against the Numba kernels. Each thread writes
// only its own output: no races by construction (the appearance guide's
// counts are added to atomically: integers, the same in any order).
//
// Specialised by template parameter, instantiated by NVRTC name expression
// ("sb_lookup_kernel<7>", "sb_blend_kernel<1>", "sb_merge_kernel", ...):
//   LEVELS  the lookup's number of levels (1..12): the level loops unroll;
//   RADIUS  the blend's or the mode filter's radius (0, 1, 2; the filter 1, 2),
//           or -1 for any radius at run time;
//   FLOW    propagation along the flow (1) or the guide's motion (0);
//   CLAMP   the temporal filter's 3x3 clamp on (1) or off (0).
//
// blit/gpu.py inlines the header into this source before compiling, so that
// CuPy's kernel cache (keyed by the source text) sees edits to either file.
#include "styleblit_kernels.cuh"

// (x, y): this thread's pixel of a 2D launch over w x h pixels; false past the edge.
__device__ __forceinline__ bool sb_thread_pixel(int w, int h, long long& x, long long& y) {
    x = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    y = blockIdx.y * (long long)blockDim.y + threadIdx.y;
    return x < w && y < h;
}

// SeedPoint for every seed of every level; must run before sb_lookup_kernel.
template <int LEVELS>
__global__ void sb_seed_kernel(const sb::LookupArgs p) {
    const long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (k < p.nseeds) sb::seed_point(p, LEVELS, k);
}

// The lookup of every pixel of the region: nnf (h, w, 2).
template <int LEVELS>
__global__ void sb_lookup_kernel(const sb::LookupArgs p) {
    long long x, y;
    if (sb_thread_pixel(p.w, p.h, x, y)) sb::lookup_pixel(p, LEVELS, x, y);
}

// Voting over the (2 RADIUS + 1)^2 neighbourhood of every output pixel.
template <int RADIUS>
__global__ void sb_blend_kernel(const sb::BlendArgs b) {
    long long x, y;
    if (sb_thread_pixel(b.w, b.h, x, y)) sb::blend_pixel(b, RADIUS >= 0 ? RADIUS : b.radius, x, y);
}

// The NNF's mode filter over the (2 RADIUS + 1)^2 neighbourhood of every
// pixel, from nnf into out (h, w, 2).
template <int RADIUS>
__global__ void sb_denoise_kernel(const sb::DenoiseArgs d) {
    long long x, y;
    if (sb_thread_pixel(d.w, d.h, x, y)) sb::denoise_pixel(d, RADIUS >= 0 ? RADIUS : d.radius, x, y);
}

// Propagation of the previous frame's sources: src, nnf, need (h, w).
template <int FLOW>
__global__ void sb_propagate_kernel(const sb::PropagateArgs p) {
    long long x, y;
    if (sb_thread_pixel(p.w, p.h, x, y)) sb::propagate_pixel(p, FLOW != 0, x, y);
}

// The fresh lookup's entries where needed, into nnf and src (h, w).
__global__ void sb_merge_kernel(const sb::MergeArgs m) {
    long long x, y;
    if (sb_thread_pixel(m.w, m.h, x, y)) sb::merge_pixel(m, x, y);
}

// Temporal filter, first pass: the history. Reads the neighbours' current
// values, so the rounding into current is a second launch.
template <int CLAMP>
__global__ void sb_temporal_kernel(const sb::TemporalArgs a) {
    long long x, y;
    if (sb_thread_pixel(a.w, a.h, x, y)) sb::temporal_pixel(a, CLAMP != 0, x, y);
}

// Temporal filter, second pass (in place): the rounded history into current.
__global__ void sb_temporal_round_kernel(const sb::TemporalArgs a) {
    long long x, y;
    if (sb_thread_pixel(a.w, a.h, x, y)) sb::temporal_round_pixel(a, x, y);
}

// The MLS map at the (h, w) grid nodes of the positional guide.
__global__ void sb_mls_nodes_kernel(const sb::MlsArgs m) {
    long long x, y;
    if (sb_thread_pixel(m.w, m.h, x, y)) sb::mls_node(m, x, y);
}

// The positional guide (h, w, 2) from the MLS grid nodes.
__global__ void sb_upsample_kernel(const sb::UpsampleArgs u) {
    long long x, y;
    if (sb_thread_pixel(u.w, u.h, x, y)) sb::upsample_pixel(u, x, y);
}

// A stylized box blended into the frame with its soft mask (h, w: the box).
__global__ void sb_composite_kernel(const sb::CompositeArgs c) {
    long long x, y;
    if (sb_thread_pixel(c.w, c.h, x, y)) sb::composite_pixel(c, x, y);
}

// The appearance guide, one launch each: the luminance of the box (h, w);
// each level of the pyramid; the blur and the detail's counts (counts
// zeroed before); the matching table (one thread per bin, kBins threads);
// the guide.
__global__ void sb_gray_kernel(const sb::GrayArgs g) {
    long long x, y;
    if (sb_thread_pixel(g.w, g.h, x, y)) sb::gray_pixel(g, x, y);
}

__global__ void sb_pyrdown_kernel(const sb::PyrDownArgs p) {
    long long x, y;
    if (sb_thread_pixel(p.w, p.h, x, y)) sb::pyrdown_pixel(p, x, y);
}

__global__ void sb_detail_count_kernel(const sb::DetailArgs a) {
    long long x, y;
    if (sb_thread_pixel(a.w, a.h, x, y)) sb::detail_count_pixel(a, x, y);
}

__global__ void sb_detail_table_kernel(const sb::DetailArgs a) {
    const long long b = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (b < sb::kBins) sb::detail_table_bin(a, b);
}

__global__ void sb_detail_map_kernel(const sb::DetailArgs a) {
    long long x, y;
    if (sb_thread_pixel(a.w, a.h, x, y)) sb::detail_map_pixel(a, x, y);
}

// The flow (oh, ow, 2) of a box from DIS's half-size flow.
__global__ void sb_flow_up_kernel(const sb::FlowUpArgs f) {
    long long x, y;
    if (sb_thread_pixel(f.ow, f.oh, x, y)) sb::flow_up_pixel(f, x, y);
}

// The head mask from its outline: the polygon's coverage (one thread per
// sample row), its share of each block, the blur along x (ALONG_X 1) and y (0).
__global__ void sb_mask_cover_kernel(const sb::MaskArgs m) {
    const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (j < m.rows) sb::mask_cover_row(m, j);
}

__global__ void sb_mask_norm_kernel(const sb::MaskArgs m) {
    long long x, y;
    if (sb_thread_pixel(m.sw, m.sh, x, y)) sb::mask_norm_pixel(m, x, y);
}

template <int ALONG_X>
__global__ void sb_mask_blur_kernel(const sb::MaskArgs m) {
    long long x, y;
    if (sb_thread_pixel(m.sw, m.sh, x, y)) sb::mask_blur_pixel(m, ALONG_X != 0, x, y);
}

// The head mask (h, w) of a box from its blur's resolution.
__global__ void sb_mask_up_kernel(const sb::MaskUpArgs m) {
    long long x, y;
    if (sb_thread_pixel(m.w, m.h, x, y)) sb::mask_up_pixel(m, x, y);
}

// The DIS flow (gpu.dis_flow), per level: both images halved (one thread
// per pixel of the halves); i0's gradients; the structure tensor (one thread
// per patch); the rounds of the patch search (one thread per patch, each
// round reading the last one's flows); the dense flow; the flow enlarged
// twice onto the next finer level.
__global__ void sb_dis_halve_kernel(const sb::DisArgs a) {
    long long x, y;
    if (sb_thread_pixel(a.w / 2, a.h / 2, x, y)) sb::dis_halve_pixel(a, x, y);
}

__global__ void sb_dis_sobel_kernel(const sb::DisArgs a) {
    long long x, y;
    if (sb_thread_pixel(a.w, a.h, x, y)) sb::dis_sobel_pixel(a, x, y);
}

__global__ void sb_dis_tensor_kernel(const sb::DisArgs a) {
    const long long p = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (p < (long long)a.hs * a.ws) sb::dis_tensor_patch(a, p);
}

__global__ void sb_dis_search_kernel(const sb::DisArgs a) {
    const long long p = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (p < (long long)a.hs * a.ws) sb::dis_search_patch(a, p);
}

__global__ void sb_dis_densify_kernel(const sb::DisArgs a) {
    long long x, y;
    if (sb_thread_pixel(a.w, a.h, x, y)) sb::dis_densify_pixel(a, x, y);
}

__global__ void sb_dis_up_kernel(const sb::DisArgs a) {
    long long x, y;
    if (sb_thread_pixel(a.w, a.h, x, y)) sb::dis_up_pixel(a, x, y);
}
