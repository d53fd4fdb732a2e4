/* bias_fwd.comp: y[n,c,:] += b[c], in place. */
#version 450
layout(local_size_x = 256) in;
layout(push_constant) uniform P { int count, C, HW; } p;
layout(std430, binding = 0) buffer A0 { float y[]; };
layout(std430, binding = 1) readonly buffer A1 { float b[]; };
void main()
{
    int stride = int(gl_NumWorkGroups.x) * 256;
    for (int i = int(gl_GlobalInvocationID.x); i < p.count; i += stride) {
        int c = (i / p.HW) % p.C;
        y[i] += b[c];
    }
}
