/*
 * conv_wt.comp: weight relayout for the row-tiled register kernels, so an
 * invocation reads its 8 output channels as two vec4 loads (on lavapipe
 * every load instruction is a per-lane scalar loop: fewer, wider loads are
 * what make a CPU device fast).
 *   MODE 0 (forward):   wt[(ci*KK + t) * MP + co] = w[co][ci][t]
 *   MODE 1 (bwd data):  wt[(co*KK + t) * MP + ci] = w[co][ci][KK-1-t]
 *                        (flipped taps: dx is a stride-1 conv of dy)
 * MP is the output-channel count rounded up to 8; padding rows are zero.
 */
#version 450
layout(local_size_x = 256) in;
layout(push_constant) uniform P { int CO, CI, KK, MP; } p;
layout(std430, binding = 0) readonly buffer A0 { float w[]; };
layout(std430, binding = 1) writeonly buffer A1 { float wt[]; };
void main()
{
#if MODE == 0
    int rows = p.CI * p.KK;
#else
    int rows = p.CO * p.KK;
#endif
    int count = rows * p.MP;
    int stride = int(gl_NumWorkGroups.x) * 256;
    for (int i = int(gl_GlobalInvocationID.x); i < count; i += stride) {
        int r = i / p.MP;
        int m = i - r * p.MP;
#if MODE == 0
        int ci = r / p.KK;
        int t = r - ci * p.KK;
        wt[i] = m < p.CO ? w[(m * p.CI + ci) * p.KK + t] : 0.0;
#else
        int co = r / p.KK;
        int t = r - co * p.KK;
        wt[i] = m < p.CI ? w[(co * p.CI + m) * p.KK + (p.KK - 1 - t)] : 0.0;
#endif
    }
}
