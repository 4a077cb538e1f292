// CUDA kernels of the StyleBlit lookup and blend (blit/gpu.py loads them with
// cupy.RawModule). One thread per seed, per target pixel or per output pixel;
// the per-thread logic lives in styleblit_kernels.cuh, shared with a host
// build that the tests check against the Numba kernels. Each thread writes
// only its own output: no races by construction.
//
// Specialised by template parameter, instantiated by NVRTC name expression
// ("sb_lookup_kernel<7>", "sb_blend_kernel<1>"):
//   LEVELS  the lookup's number of levels (1..12): the level loops unroll;
//   RADIUS  the blend radius (0, 1, 2), or -1 for any radius at run time.
//
// blit/gpu.py inlines the header into this source before compiling, so that
// CuPy's kernel cache (keyed by the source text) sees edits to either file.
#include "styleblit_kernels.cuh"

// SeedPoint for every seed of every level; must run before sb_lookup_kernel.
template <int LEVELS>
__global__ void sb_seed_kernel(const sb::LookupArgs p) {
    const long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (k < p.nseeds) sb::seed_point(p, LEVELS, k);
}

// The lookup of every pixel of the region: nnf (h, w, 2).
template <int LEVELS>
__global__ void sb_lookup_kernel(const sb::LookupArgs p) {
    const long long x = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const long long y = blockIdx.y * (long long)blockDim.y + threadIdx.y;
    if (x < p.w && y < p.h) sb::lookup_pixel(p, LEVELS, x, y);
}

// Voting over the (2 RADIUS + 1)^2 neighbourhood of every output pixel.
template <int RADIUS>
__global__ void sb_blend_kernel(const sb::BlendArgs b) {
    const long long x = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const long long y = blockIdx.y * (long long)blockDim.y + threadIdx.y;
    if (x < b.w && y < b.h) sb::blend_pixel(b, RADIUS >= 0 ? RADIUS : b.radius, x, y);
}
