/* sum_splits.comp: dst[i] (+)= sum over z of part[z*len + i], z in a fixed
 * order, closing a split-K reduction deterministically. */
#version 450
layout(local_size_x = 256) in;
layout(push_constant) uniform P { int len, nsplit, accum; } p;
layout(std430, binding = 0) readonly buffer A0 { float part[]; };
layout(std430, binding = 1) buffer A1 { float dst[]; };
void main()
{
    int stride = int(gl_NumWorkGroups.x) * 256;
    for (int i = int(gl_GlobalInvocationID.x); i < p.len; i += stride) {
        float s = 0.0;
        for (int z = 0; z < p.nsplit; z++) {
            s += part[z * p.len + i];
        }
        dst[i] = p.accum != 0 ? dst[i] + s : s;
    }
}
