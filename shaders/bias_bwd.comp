/* bias_bwd.comp: db[c] = sum over n and pixels of dy[n,c,:]; one workgroup per channel. */
#version 450
#include "reduce_head.glsl"
#include "reduce.glsl"
layout(push_constant) uniform P { int N, C, HW, accum; } p;
layout(std430, binding = 0) readonly buffer A0 { float dy[]; };
layout(std430, binding = 1) buffer A1 { float db[]; };
void main()
{
    int c = int(gl_WorkGroupID.x);
    float s = 0.0;
    for (int n = 0; n < p.N; n++) {
        int base = (n * p.C + c) * p.HW;
        for (int i = int(gl_LocalInvocationIndex); i < p.HW; i += RS_WG) {
            s += dy[base + i];
        }
    }
    s = wg_sum(s);
    if (gl_LocalInvocationIndex == 0) {
        db[c] = p.accum != 0 ? db[c] + s : s;
    }
}
