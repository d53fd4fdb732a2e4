/*
 * loss_bwd.comp: dL/dpred for the losses of loss_partial.comp, times
 * scale (the upstream gradient of the loss, usually 1). Masked L1 divides
 * by Z read from lossv[1], written by loss_final; sign(0) = 0 as PyTorch.
 */
#version 450
layout(local_size_x = 256) in;
layout(constant_id = 0) const int LOSS = 0;
layout(push_constant) uniform P { int count, N, C, H, W, mask_c, accum; float scale; } p;
layout(std430, binding = 0) readonly buffer A0 { float pred[]; };
layout(std430, binding = 1) readonly buffer A1 { float targ[]; };
layout(std430, binding = 2) readonly buffer A2 { float mask[]; };
layout(std430, binding = 3) readonly buffer A3 { float lossv[]; };
layout(std430, binding = 4) buffer A4 { float grad[]; };

float dgx(int i)
{
    return sign((pred[i + 1] - pred[i]) - (targ[i + 1] - targ[i]));
}

float dgy(int i)
{
    return sign((pred[i + p.W] - pred[i]) - (targ[i + p.W] - targ[i]));
}

void main()
{
    int HW = p.H * p.W;
    int stride = int(gl_NumWorkGroups.x) * 256;
    for (int i = int(gl_GlobalInvocationID.x); i < p.count; i += stride) {
        float d = pred[i] - targ[i];
        float g;
        if (LOSS == 0) {
            g = sign(d) / float(p.count);
        } else if (LOSS == 1) {
            g = 2.0 * d / float(p.count);
        } else if (LOSS == 2) {
            int nc = i / HW;
            int n = nc / p.C;
            int mi = p.mask_c == 1 ? n * HW + (i - nc * HW) : i;
            float m = max(mask[mi], 0.0);
            float z = lossv[1];
            g = z > 0.0 ? m * sign(d) / z : 0.0;
        } else {
            int r = i - (i / HW) * HW;
            int yy = r / p.W;
            int xx = r - yy * p.W;
            float cx = float(p.N * p.C * p.H * (p.W - 1));
            float cy = float(p.N * p.C * (p.H - 1) * p.W);
            float sx = 0.0;
            float sy = 0.0;
            if (xx + 1 < p.W) {
                sx -= dgx(i);
            }
            if (xx > 0) {
                sx += dgx(i - 1);
            }
            if (yy + 1 < p.H) {
                sy -= dgy(i);
            }
            if (yy > 0) {
                sy += dgy(i - p.W);
            }
            g = sx / cx + sy / cy;
        }
        g *= p.scale;
        grad[i] = p.accum != 0 ? grad[i] + g : g;
    }
}
