/*
 * loss_final.comp: second pass: one workgroup sums the partials in a fixed
 * order and writes out[0] = the loss, out[1] = its normaliser (count, or the
 * mask total Z for masked L1), which the backward kernel reads.
 */
#version 450
#include "reduce_head.glsl"
#include "reduce.glsl"
layout(constant_id = 0) const int LOSS = 0;
layout(push_constant) uniform P { int nparts, count, cnt_x, cnt_y; } p;
layout(std430, binding = 0) readonly buffer A0 { float part[]; };
layout(std430, binding = 1) writeonly buffer A1 { float outv[]; };
void main()
{
    float a = 0.0;
    float b = 0.0;
    for (int i = int(gl_LocalInvocationIndex); i < p.nparts; i += RS_WG) {
        a += part[2 * i];
        b += part[2 * i + 1];
    }
    a = wg_sum(a);
    b = wg_sum(b);
    if (gl_LocalInvocationIndex == 0) {
        if (LOSS == 2) {
            outv[0] = b > 0.0 ? a / b : 0.0;
            outv[1] = b;
        } else if (LOSS == 3) {
            outv[0] = a / float(p.cnt_x) + b / float(p.cnt_y);
            outv[1] = float(p.cnt_x);
        } else {
            outv[0] = a / float(p.count);
            outv[1] = float(p.count);
        }
    }
}
