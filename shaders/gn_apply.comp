/*
 * gn_apply.comp: the elementwise halves of group norm.
 *   MODE 0 forward:  y = (x - mean) * rstd * gamma[c] + beta[c]
 *   MODE 1 backward: dx (+)= rstd * (dy*gamma - s1/cnt - xhat * s2/cnt)
 * with s1, s2 from gn_bwd_stats and cnt = (C/G) * HW.
 */
#version 450
layout(local_size_x = 256) in;
layout(push_constant) uniform P { int N, C, HW, G, accum; } p;
layout(std430, binding = 0) readonly buffer A0 { float x[]; };
layout(std430, binding = 1) readonly buffer A1 { float stats[]; };
layout(std430, binding = 2) readonly buffer A2 { float gamma[]; };
#if MODE == 0
layout(std430, binding = 3) readonly buffer A3 { float beta[]; };
layout(std430, binding = 4) writeonly buffer A4 { float y[]; };
#else
layout(std430, binding = 3) readonly buffer A3 { float dy[]; };
layout(std430, binding = 4) readonly buffer A4 { float bst[]; };
layout(std430, binding = 5) buffer A5 { float dx[]; };
#endif
void main()
{
    int count = p.N * p.C * p.HW;
    int cg = p.C / p.G;
    float inv = 1.0 / float(cg * p.HW);
    int stride = int(gl_NumWorkGroups.x) * 256;
    for (int i = int(gl_GlobalInvocationID.x); i < count; i += stride) {
        int nc = i / p.HW;
        int n = nc / p.C;
        int c = nc - n * p.C;
        int ng = n * p.G + c / cg;
        float xhat = (x[i] - stats[2 * ng]) * stats[2 * ng + 1];
#if MODE == 0
        y[i] = fma(xhat, gamma[c], beta[c]);
#else
        float g = stats[2 * ng + 1] * (dy[i] * gamma[c] - bst[2 * ng] * inv - xhat * bst[2 * ng + 1] * inv);
        dx[i] = p.accum != 0 ? dx[i] + g : g;
#endif
    }
}
