/* gn_bwd_params.comp: dgamma[c] = sum dy*xhat, dbeta[c] = sum dy over the
 * batch and pixels; one workgroup per channel. */
#version 450
#include "reduce_head.glsl"
#include "reduce.glsl"
layout(push_constant) uniform P { int N, C, HW, G; float eps; } p;
layout(std430, binding = 0) readonly buffer A0 { float x[]; };
layout(std430, binding = 1) readonly buffer A1 { float dy[]; };
layout(std430, binding = 2) readonly buffer A2 { float stats[]; };
layout(std430, binding = 3) writeonly buffer A3 { float dgamma[]; };
layout(std430, binding = 4) writeonly buffer A4 { float dbeta[]; };
void main()
{
    int c = int(gl_WorkGroupID.x);
    int g = c / (p.C / p.G);
    float sg = 0.0;
    float sb = 0.0;
    for (int n = 0; n < p.N; n++) {
        int base = (n * p.C + c) * p.HW;
        float mean = stats[2 * (n * p.G + g)];
        float rstd = stats[2 * (n * p.G + g) + 1];
        for (int i = int(gl_LocalInvocationIndex); i < p.HW; i += RS_WG) {
            float d = dy[base + i];
            sb += d;
            sg = fma(d, (x[base + i] - mean) * rstd, sg);
        }
    }
    sg = wg_sum(sg);
    sb = wg_sum(sb);
    if (gl_LocalInvocationIndex == 0) {
        dgamma[c] = sg;
        dbeta[c] = sb;
    }
}
