/*
 * act.comp: activations, elementwise. ACT: 0 ReLU, 1 LeakyReLU(slope),
 * 2 SiLU. MODE 0 forward y = act(x) (x and y may be one buffer); MODE 1
 * backward dx (+)= dy * act'(x), x the forward input. Derivatives at the
 * kink follow PyTorch: ReLU'(0) = 0, Leaky'(0) = slope.
 */
#version 450
layout(local_size_x = 256) in;
layout(constant_id = 0) const int ACT = 0;
layout(push_constant) uniform P { int count; float slope; int accum; } p;
#if MODE == 0
layout(std430, binding = 0) readonly buffer A0 { float x[]; };
layout(std430, binding = 1) writeonly buffer A1 { float y[]; };
#else
layout(std430, binding = 0) readonly buffer A0 { float x[]; };
layout(std430, binding = 1) readonly buffer A1 { float dy[]; };
layout(std430, binding = 2) buffer A2 { float dx[]; };
#endif
void main()
{
    int stride = int(gl_NumWorkGroups.x) * 256;
    for (int i = int(gl_GlobalInvocationID.x); i < p.count; i += stride) {
        float v = x[i];
#if MODE == 0
        float r;
        if (ACT == 0) {
            r = max(v, 0.0);
        } else if (ACT == 1) {
            r = v > 0.0 ? v : p.slope * v;
        } else {
            r = v / (1.0 + exp(-v));
        }
        y[i] = r;
#else
        float d;
        if (ACT == 0) {
            d = v > 0.0 ? 1.0 : 0.0;
        } else if (ACT == 1) {
            d = v > 0.0 ? 1.0 : p.slope;
        } else {
            float s = 1.0 / (1.0 + exp(-v));
            d = s * (1.0 + v * (1.0 - s));
        }
        float g = dy[i] * d;
        dx[i] = p.accum != 0 ? dx[i] + g : g;
#endif
    }
}
