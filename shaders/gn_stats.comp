/* gn_stats.comp: group-norm mean and rstd per (n, group), two passes over
 * the group (mean first, then the biased variance about it, which keeps
 * precision when the mean is large). stats[2*(n*G+g)] = {mean, rstd}. */
#version 450
#include "reduce_head.glsl"
#include "reduce.glsl"
layout(push_constant) uniform P { int N, C, HW, G; float eps; } p;
layout(std430, binding = 0) readonly buffer A0 { float x[]; };
layout(std430, binding = 1) writeonly buffer A1 { float stats[]; };
void main()
{
    int ng = int(gl_WorkGroupID.x);
    int n = ng / p.G;
    int g = ng - n * p.G;
    int cg = p.C / p.G;
    int base = (n * p.C + g * cg) * p.HW;
    int cnt = cg * p.HW;
    float s = 0.0;
    for (int i = int(gl_LocalInvocationIndex); i < cnt; i += RS_WG) {
        s += x[base + i];
    }
    float mean = wg_sum(s) / float(cnt);
    float q = 0.0;
    for (int i = int(gl_LocalInvocationIndex); i < cnt; i += RS_WG) {
        float d = x[base + i] - mean;
        q = fma(d, d, q);
    }
    float var = wg_sum(q) / float(cnt);
    if (gl_LocalInvocationIndex == 0) {
        stats[2 * ng] = mean;
        stats[2 * ng + 1] = inversesqrt(var + p.eps);
    }
}
