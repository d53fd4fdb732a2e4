/*
 * reduce.glsl: workgroup sum for the reduction kernels (64 invocations).
 * RS_SUBGROUP (GPU variant): subgroupAdd, then one shared slot per subgroup.
 * Otherwise (CPU variant): a shared-memory tree; barriers only here, after
 * each invocation has folded its strided share, never in an inner loop.
 * Every invocation gets the total; the order of additions is fixed, so the
 * result is the same on every run.
 */
#define RS_WG 64
layout(local_size_x = RS_WG) in;
shared float rs_red[RS_WG];

float wg_sum(float v)
{
    uint t = gl_LocalInvocationIndex;
#ifdef RS_SUBGROUP
    v = subgroupAdd(v);
    if (subgroupElect()) {
        rs_red[gl_SubgroupID] = v;
    }
    barrier();
    float s = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++) {
        s += rs_red[i];
    }
    barrier();
    return s;
#else
    rs_red[t] = v;
    barrier();
    for (uint s = RS_WG / 2; s > 0; s >>= 1) {
        if (t < s) {
            rs_red[t] += rs_red[t + s];
        }
        barrier();
    }
    float r = rs_red[0];
    barrier();
    return r;
#endif
}
