/* gn_bwd_stats.comp: per (n, group) the two sums the group-norm input
 * gradient needs: sum(dy*gamma) and sum(dy*gamma*xhat) -> bst[2*(n*G+g)]. */
#version 450
#include "reduce_head.glsl"
#include "reduce.glsl"
layout(push_constant) uniform P { int N, C, HW, G; float eps; } p;
layout(std430, binding = 0) readonly buffer A0 { float x[]; };
layout(std430, binding = 1) readonly buffer A1 { float dy[]; };
layout(std430, binding = 2) readonly buffer A2 { float stats[]; };
layout(std430, binding = 3) readonly buffer A3 { float gamma[]; };
layout(std430, binding = 4) writeonly buffer A4 { float bst[]; };
void main()
{
    int ng = int(gl_WorkGroupID.x);
    int n = ng / p.G;
    int g = ng - n * p.G;
    int cg = p.C / p.G;
    int base = (n * p.C + g * cg) * p.HW;
    int cnt = cg * p.HW;
    float mean = stats[2 * ng];
    float rstd = stats[2 * ng + 1];
    float s1 = 0.0;
    float s2 = 0.0;
    for (int i = int(gl_LocalInvocationIndex); i < cnt; i += RS_WG) {
        int c = g * cg + i / p.HW;
        float d = dy[base + i] * gamma[c];
        s1 += d;
        s2 = fma(d, (x[base + i] - mean) * rstd, s2);
    }
    s1 = wg_sum(s1);
    s2 = wg_sum(s2);
    if (gl_LocalInvocationIndex == 0) {
        bst[2 * ng] = s1;
        bst[2 * ng + 1] = s2;
    }
}
