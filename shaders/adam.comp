/*
 * adam.comp: one Adam / AdamW step, as torch.optim (amsgrad off). The
 * hyper-parameters and bias corrections live in a buffer the host rewrites
 * before each submit, so a recorded training step can be replayed:
 *   hp = {lr, beta1, beta2, eps, weight_decay, decoupled, bc1, sqrt(bc2),
 *         1 - beta1, 1 - beta2}
 * with bc1 = 1 - beta1^t, bc2 = 1 - beta2^t for 1-based step t, all formed
 * in double on the host (1 - 0.999f in fp32 is off by 1.3e-5 relative).
 */
#version 450
layout(local_size_x = 256) in;
layout(push_constant) uniform P { int count; } p;
layout(std430, binding = 0) buffer A0 { float w[]; };
layout(std430, binding = 1) readonly buffer A1 { float g[]; };
layout(std430, binding = 2) buffer A2 { float m[]; };
layout(std430, binding = 3) buffer A3 { float v[]; };
layout(std430, binding = 4) readonly buffer A4 { float hp[]; };
void main()
{
    float lr = hp[0];
    float b1 = hp[1];
    float b2 = hp[2];
    float eps = hp[3];
    float wd = hp[4];
    bool decoupled = hp[5] != 0.0;
    float bc1 = hp[6];
    float sbc2 = hp[7];
    float omb1 = hp[8];
    float omb2 = hp[9];
    int stride = int(gl_NumWorkGroups.x) * 256;
    for (int i = int(gl_GlobalInvocationID.x); i < p.count; i += stride) {
        float pw = w[i];
        float gr = g[i];
        if (decoupled) {
            pw *= 1.0 - lr * wd;
        } else {
            gr = fma(wd, pw, gr);
        }
        float mi = fma(b1, m[i], omb1 * gr);
        float vi = fma(b2, v[i], omb2 * gr * gr);
        m[i] = mi;
        v[i] = vi;
        w[i] = pw - (lr / bc1) * mi / (sqrt(vi) / sbc2 + eps);
    }
}
