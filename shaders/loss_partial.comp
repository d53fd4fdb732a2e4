/*
 * loss_partial.comp: first pass of a loss: each workgroup folds a strided
 * share of the elements into two partial sums part[2*wg] (numerator) and
 * part[2*wg+1] (mask total, or the y-gradient sum for the edge loss).
 * LOSS: 0 L1, 1 MSE, 2 masked L1, 3 gradient (edge) L1.
 */
#version 450
#include "reduce_head.glsl"
#include "reduce.glsl"
layout(constant_id = 0) const int LOSS = 0;
layout(push_constant) uniform P { int count, N, C, H, W, mask_c; } p;
layout(std430, binding = 0) readonly buffer A0 { float pred[]; };
layout(std430, binding = 1) readonly buffer A1 { float targ[]; };
layout(std430, binding = 2) readonly buffer A2 { float mask[]; };
layout(std430, binding = 3) writeonly buffer A3 { float part[]; };
void main()
{
    float a = 0.0;
    float b = 0.0;
    int stride = int(gl_NumWorkGroups.x) * RS_WG;
    int HW = p.H * p.W;
    for (int i = int(gl_GlobalInvocationID.x); i < p.count; i += stride) {
        float d = pred[i] - targ[i];
        if (LOSS == 0) {
            a += abs(d);
        } else if (LOSS == 1) {
            a = fma(d, d, a);
        } else if (LOSS == 2) {
            int nc = i / HW;
            int n = nc / p.C;
            int mi = p.mask_c == 1 ? n * HW + (i - nc * HW) : i;
            float m = max(mask[mi], 0.0);
            a = fma(m, abs(d), a);
            b += m;
        } else {
            int r = i - (i / HW) * HW;
            int yy = r / p.W;
            int xx = r - yy * p.W;
            if (xx + 1 < p.W) {
                a += abs((pred[i + 1] - pred[i]) - (targ[i + 1] - targ[i]));
            }
            if (yy + 1 < p.H) {
                b += abs((pred[i + p.W] - pred[i]) - (targ[i + p.W] - targ[i]));
            }
        }
    }
    a = wg_sum(a);
    b = wg_sum(b);
    if (gl_LocalInvocationIndex == 0) {
        part[2 * gl_WorkGroupID.x] = a;
        part[2 * gl_WorkGroupID.x + 1] = b;
    }
}
