// Host build of the CUDA kernels' per-thread logic (blit/cuda/styleblit_kernels.cuh)
// for tests/test_gpu.py, which compiles it with g++ into a shared library,
// fills the argument structs exactly as blit/gpu.py does for a launch, and
// compares the results with the Numba kernels. Each function below is one
// __global__ kernel of blit/cuda/styleblit.cu with its grid of threads
// replaced by loops (the threads are independent, so order does not matter).
#include "styleblit_kernels.cuh"

#include <stddef.h>

extern "C" {

// sb_seed_kernel<levels>
void sb_host_seeds(const sb::LookupArgs* p, int levels) {
    for (long long k = 0; k < p->nseeds; ++k) sb::seed_point(*p, levels, k);
}

// sb_lookup_kernel<levels>
void sb_host_lookup(const sb::LookupArgs* p, int levels) {
    for (long long y = 0; y < p->h; ++y)
        for (long long x = 0; x < p->w; ++x) sb::lookup_pixel(*p, levels, x, y);
}

// sb_blend_kernel<radius>
void sb_host_blend(const sb::BlendArgs* b, int radius) {
    for (long long y = 0; y < b->h; ++y)
        for (long long x = 0; x < b->w; ++x) sb::blend_pixel(*b, radius, x, y);
}

// sb::guide_error for n exemplar pixels c (n, 2) against guides g (n, 2), a (n,).
void sb_host_guide_errors(const sb::LookupArgs* p, long long n, const long long* c,
                          const float* g, const float* a, double* out) {
    for (long long i = 0; i < n; ++i)
        out[i] = sb::guide_error(c[2 * i], c[2 * i + 1], g[2 * i], g[2 * i + 1], a[i], *p);
}

// sb::argmin_lookup for n guides g (n, 2), a (n,): out (n, 2).
void sb_host_argmin_lookups(const sb::LookupArgs* p, long long n, const float* g, const float* a,
                            long long* out) {
    for (long long i = 0; i < n; ++i)
        sb::argmin_lookup(g[2 * i], g[2 * i + 1], a[i], *p, out[2 * i], out[2 * i + 1]);
}

// sizeof and field offsets of the argument structs, in the order of
// blit.gpu.LOOKUP_ARGS / BLEND_ARGS; returns how many values it wrote.
int sb_layout(long long* v) {
    int n = 0;
#define SB_OFF(T, f) v[n++] = (long long)offsetof(T, f)
    v[n++] = (long long)sizeof(sb::LookupArgs);
    SB_OFF(sb::LookupArgs, tpos); SB_OFF(sb::LookupArgs, tapp); SB_OFF(sb::LookupArgs, active);
    SB_OFF(sb::LookupArgs, sapp); SB_OFF(sb::LookupArgs, table); SB_OFF(sb::LookupArgs, app_bin);
    SB_OFF(sb::LookupArgs, jitter); SB_OFF(sb::LookupArgs, labels); SB_OFF(sb::LookupArgs, seeds);
    SB_OFF(sb::LookupArgs, nnf); SB_OFF(sb::LookupArgs, h); SB_OFF(sb::LookupArgs, w);
    SB_OFF(sb::LookupArgs, ox); SB_OFF(sb::LookupArgs, oy); SB_OFF(sb::LookupArgs, hs);
    SB_OFF(sb::LookupArgs, ws); SB_OFF(sb::LookupArgs, hc); SB_OFF(sb::LookupArgs, wc);
    SB_OFF(sb::LookupArgs, nbins); SB_OFF(sb::LookupArgs, cell); SB_OFF(sb::LookupArgs, jsize);
    SB_OFF(sb::LookupArgs, hf); SB_OFF(sb::LookupArgs, wf); SB_OFF(sb::LookupArgs, levels);
    SB_OFF(sb::LookupArgs, nseeds); SB_OFF(sb::LookupArgs, lam_pos); SB_OFF(sb::LookupArgs, lam_app);
    SB_OFF(sb::LookupArgs, threshold); SB_OFF(sb::LookupArgs, grid);
    v[n++] = (long long)sizeof(sb::SeedGrid);
    SB_OFF(sb::SeedGrid, offset); SB_OFF(sb::SeedGrid, bx0); SB_OFF(sb::SeedGrid, by0);
    SB_OFF(sb::SeedGrid, ncx);
    v[n++] = (long long)sizeof(sb::BlendArgs);
    SB_OFF(sb::BlendArgs, style); SB_OFF(sb::BlendArgs, nnf); SB_OFF(sb::BlendArgs, out);
    SB_OFF(sb::BlendArgs, h); SB_OFF(sb::BlendArgs, w); SB_OFF(sb::BlendArgs, hs);
    SB_OFF(sb::BlendArgs, ws); SB_OFF(sb::BlendArgs, radius);
#undef SB_OFF
    return n;
}

}  // extern "C"
