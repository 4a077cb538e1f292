// Host build of the CUDA kernels' per-thread logic (blit/cuda/styleblit_kernels.cuh)
// for tests/test_gpu.py, which compiles it with g++ into a shared library,
// fills the argument structs exactly as blit/gpu.py does for a launch, and
// compares the results with the Numba kernels. Each function below is one
// __global__ kernel of blit/cuda/styleblit.cu with its grid of threads
// replaced by loops (the threads are independent, so order does not matter).
#include "styleblit_kernels.cuh"

#include <stddef.h>

// f(x, y) for every pixel of an h x w launch, row by row.
template <class F>
static void each_pixel(long long h, long long w, F f) {
    for (long long y = 0; y < h; ++y)
        for (long long x = 0; x < w; ++x) f(x, y);
}

extern "C" {

// sb_seed_kernel<levels>
void sb_host_seeds(const sb::LookupArgs* p, int levels) {
    for (long long k = 0; k < p->nseeds; ++k) sb::seed_point(*p, levels, k);
}

// sb_lookup_kernel<levels>
void sb_host_lookup(const sb::LookupArgs* p, int levels) {
    each_pixel(p->h, p->w, [&](long long x, long long y) { sb::lookup_pixel(*p, levels, x, y); });
}

// sb_blend_kernel<radius>
void sb_host_blend(const sb::BlendArgs* b, int radius) {
    each_pixel(b->h, b->w, [&](long long x, long long y) { sb::blend_pixel(*b, radius, x, y); });
}

// sb_denoise_kernel<radius>
void sb_host_denoise(const sb::DenoiseArgs* d, int radius) {
    each_pixel(d->h, d->w, [&](long long x, long long y) { sb::denoise_pixel(*d, radius, x, y); });
}

// sb_propagate_kernel<use_flow>
void sb_host_propagate(const sb::PropagateArgs* p, int use_flow) {
    each_pixel(p->h, p->w,
               [&](long long x, long long y) { sb::propagate_pixel(*p, use_flow != 0, x, y); });
}

// sb_merge_kernel
void sb_host_merge(const sb::MergeArgs* m, int) {
    each_pixel(m->h, m->w, [&](long long x, long long y) { sb::merge_pixel(*m, x, y); });
}

// sb_temporal_kernel<clamp>: every pixel's first pass, before any second
// pass (a launch completes before the next one starts)
void sb_host_temporal(const sb::TemporalArgs* a, int clamp) {
    each_pixel(a->h, a->w,
               [&](long long x, long long y) { sb::temporal_pixel(*a, clamp != 0, x, y); });
}

// sb_temporal_round_kernel
void sb_host_temporal_round(const sb::TemporalArgs* a, int) {
    each_pixel(a->h, a->w, [&](long long x, long long y) { sb::temporal_round_pixel(*a, x, y); });
}

// sb_upsample_kernel
void sb_host_upsample(const sb::UpsampleArgs* u, int) {
    each_pixel(u->h, u->w, [&](long long x, long long y) { sb::upsample_pixel(*u, x, y); });
}

// sb_composite_kernel
void sb_host_composite(const sb::CompositeArgs* c, int) {
    each_pixel(c->h, c->w, [&](long long x, long long y) { sb::composite_pixel(*c, x, y); });
}

// sb_gray_kernel, sb_pyrdown_kernel, sb_detail_count_kernel (its atomic
// additions one after another), sb_detail_table_kernel (one thread per bin),
// sb_detail_map_kernel
void sb_host_gray(const sb::GrayArgs* g, int) {
    each_pixel(g->h, g->w, [&](long long x, long long y) { sb::gray_pixel(*g, x, y); });
}

void sb_host_pyrdown(const sb::PyrDownArgs* p, int) {
    each_pixel(p->h, p->w, [&](long long x, long long y) { sb::pyrdown_pixel(*p, x, y); });
}

void sb_host_detail_count(const sb::DetailArgs* a, int) {
    each_pixel(a->h, a->w, [&](long long x, long long y) { sb::detail_count_pixel(*a, x, y); });
}

void sb_host_detail_table(const sb::DetailArgs* a, int) {
    for (long long b = 0; b < sb::kBins; ++b) sb::detail_table_bin(*a, b);
}

void sb_host_detail_map(const sb::DetailArgs* a, int) {
    each_pixel(a->h, a->w, [&](long long x, long long y) { sb::detail_map_pixel(*a, x, y); });
}

// sb_flow_up_kernel
void sb_host_flow_up(const sb::FlowUpArgs* f, int) {
    each_pixel(f->oh, f->ow, [&](long long x, long long y) { sb::flow_up_pixel(*f, x, y); });
}

// sb_mls_nodes_kernel
void sb_host_mls_nodes(const sb::MlsArgs* m, int) {
    each_pixel(m->h, m->w, [&](long long x, long long y) { sb::mls_node(*m, x, y); });
}

// sb_mask_cover_kernel: every sample row
void sb_host_mask_cover(const sb::MaskArgs* m, int) {
    for (long long j = 0; j < m->rows; ++j) sb::mask_cover_row(*m, j);
}

// sb_mask_norm_kernel
void sb_host_mask_norm(const sb::MaskArgs* m, int) {
    each_pixel(m->sh, m->sw, [&](long long x, long long y) { sb::mask_norm_pixel(*m, x, y); });
}

// sb_mask_blur_kernel<along_x>
void sb_host_mask_blur(const sb::MaskArgs* m, int along_x) {
    each_pixel(m->sh, m->sw, [&](long long x, long long y) { sb::mask_blur_pixel(*m, along_x != 0, x, y); });
}

// sb_mask_up_kernel
void sb_host_mask_up(const sb::MaskUpArgs* m, int) {
    each_pixel(m->h, m->w, [&](long long x, long long y) { sb::mask_up_pixel(*m, x, y); });
}

// sb_dis_halve_kernel (over the halves), sb_dis_sobel_kernel,
// sb_dis_tensor_kernel and sb_dis_search_kernel (one thread per patch),
// sb_dis_densify_kernel, sb_dis_up_kernel
void sb_host_dis_halve(const sb::DisArgs* a, int) {
    each_pixel(a->h / 2, a->w / 2, [&](long long x, long long y) { sb::dis_halve_pixel(*a, x, y); });
}

void sb_host_dis_sobel(const sb::DisArgs* a, int) {
    each_pixel(a->h, a->w, [&](long long x, long long y) { sb::dis_sobel_pixel(*a, x, y); });
}

void sb_host_dis_tensor(const sb::DisArgs* a, int) {
    for (long long p = 0; p < (long long)a->hs * a->ws; ++p) sb::dis_tensor_patch(*a, p);
}

void sb_host_dis_search(const sb::DisArgs* a, int) {
    for (long long p = 0; p < (long long)a->hs * a->ws; ++p) sb::dis_search_patch(*a, p);
}

void sb_host_dis_densify(const sb::DisArgs* a, int) {
    each_pixel(a->h, a->w, [&](long long x, long long y) { sb::dis_densify_pixel(*a, x, y); });
}

void sb_host_dis_up(const sb::DisArgs* a, int) {
    each_pixel(a->h, a->w, [&](long long x, long long y) { sb::dis_up_pixel(*a, x, y); });
}

// sb::level_bin of every detail level, into out (kLevels,).
void sb_host_level_bins(long long* out) {
    for (long long l = 0; l < sb::kLevels; ++l) out[l] = sb::level_bin(l);
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
// blit.gpu.LOOKUP_ARGS / BLEND_ARGS / DENOISE_ARGS / PROPAGATE_ARGS / MERGE_ARGS /
// TEMPORAL_ARGS / UPSAMPLE_ARGS / COMPOSITE_ARGS / GRAY_ARGS / PYRDOWN_ARGS / DETAIL_ARGS /
// FLOW_UP_ARGS / MASK_UP_ARGS / MASK_ARGS / MLS_ARGS / DIS_ARGS;
// returns how many values it wrote.
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
    v[n++] = (long long)sizeof(sb::DenoiseArgs);
    SB_OFF(sb::DenoiseArgs, nnf); SB_OFF(sb::DenoiseArgs, out); SB_OFF(sb::DenoiseArgs, h);
    SB_OFF(sb::DenoiseArgs, w); SB_OFF(sb::DenoiseArgs, hs); SB_OFF(sb::DenoiseArgs, ws);
    SB_OFF(sb::DenoiseArgs, radius);
    v[n++] = (long long)sizeof(sb::PropagateArgs);
    SB_OFF(sb::PropagateArgs, prev_src); SB_OFF(sb::PropagateArgs, prev_pos);
    SB_OFF(sb::PropagateArgs, flow); SB_OFF(sb::PropagateArgs, tpos); SB_OFF(sb::PropagateArgs, tapp);
    SB_OFF(sb::PropagateArgs, active); SB_OFF(sb::PropagateArgs, sapp); SB_OFF(sb::PropagateArgs, src);
    SB_OFF(sb::PropagateArgs, nnf); SB_OFF(sb::PropagateArgs, need); SB_OFF(sb::PropagateArgs, jxx);
    SB_OFF(sb::PropagateArgs, jxy); SB_OFF(sb::PropagateArgs, jyx); SB_OFF(sb::PropagateArgs, jyy);
    SB_OFF(sb::PropagateArgs, h); SB_OFF(sb::PropagateArgs, w); SB_OFF(sb::PropagateArgs, ox);
    SB_OFF(sb::PropagateArgs, oy); SB_OFF(sb::PropagateArgs, ph); SB_OFF(sb::PropagateArgs, pw);
    SB_OFF(sb::PropagateArgs, pox); SB_OFF(sb::PropagateArgs, poy); SB_OFF(sb::PropagateArgs, fw);
    SB_OFF(sb::PropagateArgs, fox); SB_OFF(sb::PropagateArgs, foy); SB_OFF(sb::PropagateArgs, hs);
    SB_OFF(sb::PropagateArgs, ws); SB_OFF(sb::PropagateArgs, iterations);
    SB_OFF(sb::PropagateArgs, lam_pos); SB_OFF(sb::PropagateArgs, lam_app);
    SB_OFF(sb::PropagateArgs, threshold);
    v[n++] = (long long)sizeof(sb::MergeArgs);
    SB_OFF(sb::MergeArgs, fresh); SB_OFF(sb::MergeArgs, need); SB_OFF(sb::MergeArgs, nnf);
    SB_OFF(sb::MergeArgs, src); SB_OFF(sb::MergeArgs, h); SB_OFF(sb::MergeArgs, w);
    v[n++] = (long long)sizeof(sb::TemporalArgs);
    SB_OFF(sb::TemporalArgs, current); SB_OFF(sb::TemporalArgs, active); SB_OFF(sb::TemporalArgs, prev);
    SB_OFF(sb::TemporalArgs, flow); SB_OFF(sb::TemporalArgs, hist);
    SB_OFF(sb::TemporalArgs, h); SB_OFF(sb::TemporalArgs, w); SB_OFF(sb::TemporalArgs, ph);
    SB_OFF(sb::TemporalArgs, pw); SB_OFF(sb::TemporalArgs, pox); SB_OFF(sb::TemporalArgs, poy);
    SB_OFF(sb::TemporalArgs, fw); SB_OFF(sb::TemporalArgs, fox); SB_OFF(sb::TemporalArgs, foy);
    SB_OFF(sb::TemporalArgs, ox); SB_OFF(sb::TemporalArgs, oy); SB_OFF(sb::TemporalArgs, alpha);
    v[n++] = (long long)sizeof(sb::UpsampleArgs);
    SB_OFF(sb::UpsampleArgs, nodes); SB_OFF(sb::UpsampleArgs, out); SB_OFF(sb::UpsampleArgs, sx);
    SB_OFF(sb::UpsampleArgs, sy); SB_OFF(sb::UpsampleArgs, h); SB_OFF(sb::UpsampleArgs, w);
    SB_OFF(sb::UpsampleArgs, gh); SB_OFF(sb::UpsampleArgs, gw);
    v[n++] = (long long)sizeof(sb::CompositeArgs);
    SB_OFF(sb::CompositeArgs, out); SB_OFF(sb::CompositeArgs, fg); SB_OFF(sb::CompositeArgs, mask);
    SB_OFF(sb::CompositeArgs, h); SB_OFF(sb::CompositeArgs, w); SB_OFF(sb::CompositeArgs, x0);
    SB_OFF(sb::CompositeArgs, y0); SB_OFF(sb::CompositeArgs, fw);
    SB_OFF(sb::CompositeArgs, min_weight);
    v[n++] = (long long)sizeof(sb::GrayArgs);
    SB_OFF(sb::GrayArgs, image); SB_OFF(sb::GrayArgs, out); SB_OFF(sb::GrayArgs, stride);
    SB_OFF(sb::GrayArgs, h); SB_OFF(sb::GrayArgs, w);
    v[n++] = (long long)sizeof(sb::PyrDownArgs);
    SB_OFF(sb::PyrDownArgs, src); SB_OFF(sb::PyrDownArgs, out); SB_OFF(sb::PyrDownArgs, stride);
    SB_OFF(sb::PyrDownArgs, h);
    SB_OFF(sb::PyrDownArgs, w); SB_OFF(sb::PyrDownArgs, sh); SB_OFF(sb::PyrDownArgs, sw);
    v[n++] = (long long)sizeof(sb::DetailArgs);
    SB_OFF(sb::DetailArgs, gray); SB_OFF(sb::DetailArgs, small); SB_OFF(sb::DetailArgs, mask);
    SB_OFF(sb::DetailArgs, blur); SB_OFF(sb::DetailArgs, counts); SB_OFF(sb::DetailArgs, quantiles);
    SB_OFF(sb::DetailArgs, table); SB_OFF(sb::DetailArgs, out); SB_OFF(sb::DetailArgs, h);
    SB_OFF(sb::DetailArgs, w); SB_OFF(sb::DetailArgs, sh); SB_OFF(sb::DetailArgs, sw);
    SB_OFF(sb::DetailArgs, nq);
    v[n++] = (long long)sizeof(sb::FlowUpArgs);
    SB_OFF(sb::FlowUpArgs, half); SB_OFF(sb::FlowUpArgs, out); SB_OFF(sb::FlowUpArgs, h);
    SB_OFF(sb::FlowUpArgs, w); SB_OFF(sb::FlowUpArgs, hh); SB_OFF(sb::FlowUpArgs, hw);
    SB_OFF(sb::FlowUpArgs, top); SB_OFF(sb::FlowUpArgs, left); SB_OFF(sb::FlowUpArgs, oh);
    SB_OFF(sb::FlowUpArgs, ow);
    v[n++] = (long long)sizeof(sb::MaskUpArgs);
    SB_OFF(sb::MaskUpArgs, small); SB_OFF(sb::MaskUpArgs, out); SB_OFF(sb::MaskUpArgs, h);
    SB_OFF(sb::MaskUpArgs, w); SB_OFF(sb::MaskUpArgs, sh); SB_OFF(sb::MaskUpArgs, sw);
    SB_OFF(sb::MaskUpArgs, gh); SB_OFF(sb::MaskUpArgs, gw); SB_OFF(sb::MaskUpArgs, ox);
    SB_OFF(sb::MaskUpArgs, oy);
    v[n++] = (long long)sizeof(sb::MaskArgs);
    SB_OFF(sb::MaskArgs, counts); SB_OFF(sb::MaskArgs, small); SB_OFF(sb::MaskArgs, row);
    SB_OFF(sb::MaskArgs, blur); SB_OFF(sb::MaskArgs, sh); SB_OFF(sb::MaskArgs, sw);
    SB_OFF(sb::MaskArgs, f); SB_OFF(sb::MaskArgs, n); SB_OFF(sb::MaskArgs, radius);
    SB_OFF(sb::MaskArgs, delta); SB_OFF(sb::MaskArgs, rows); SB_OFF(sb::MaskArgs, polygon);
    SB_OFF(sb::MaskArgs, taps);
    v[n++] = (long long)sizeof(sb::MlsArgs);
    SB_OFF(sb::MlsArgs, nodes); SB_OFF(sb::MlsArgs, step_x); SB_OFF(sb::MlsArgs, step_y);
    SB_OFF(sb::MlsArgs, n); SB_OFF(sb::MlsArgs, h); SB_OFF(sb::MlsArgs, w);
    SB_OFF(sb::MlsArgs, points);
    v[n++] = (long long)sizeof(sb::DisArgs);
    SB_OFF(sb::DisArgs, i0); SB_OFF(sb::DisArgs, i1); SB_OFF(sb::DisArgs, half0);
    SB_OFF(sb::DisArgs, half1); SB_OFF(sb::DisArgs, gx); SB_OFF(sb::DisArgs, gy);
    SB_OFF(sb::DisArgs, tensor); SB_OFF(sb::DisArgs, flow); SB_OFF(sb::DisArgs, s_in);
    SB_OFF(sb::DisArgs, s_out); SB_OFF(sb::DisArgs, small); SB_OFF(sb::DisArgs, h);
    SB_OFF(sb::DisArgs, w); SB_OFF(sb::DisArgs, sh); SB_OFF(sb::DisArgs, sw);
    SB_OFF(sb::DisArgs, hs); SB_OFF(sb::DisArgs, ws); SB_OFF(sb::DisArgs, patch);
    SB_OFF(sb::DisArgs, stride); SB_OFF(sb::DisArgs, steps); SB_OFF(sb::DisArgs, first);
#undef SB_OFF
    return n;
}

}  // extern "C"
