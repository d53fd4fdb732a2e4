/* chan_copy.comp: copies C channels of every sample between tensors with
 * different channel counts (concat forward, its split backward):
 * dst[n, dst_off + c, :] (+)= src[n, src_off + c, :]. */
#version 450
layout(local_size_x = 256) in;
layout(push_constant) uniform P { int N, C, HW, src_ct, src_off, dst_ct, dst_off, accum; } p;
layout(std430, binding = 0) readonly buffer A0 { float src[]; };
layout(std430, binding = 1) buffer A1 { float dst[]; };
void main()
{
    int count = p.N * p.C * p.HW;
    int stride = int(gl_NumWorkGroups.x) * 256;
    for (int i = int(gl_GlobalInvocationID.x); i < count; i += stride) {
        int nc = i / p.HW;
        int r = i - nc * p.HW;
        int n = nc / p.C;
        int c = nc - n * p.C;
        float v = src[(n * p.src_ct + p.src_off + c) * p.HW + r];
        int o = (n * p.dst_ct + p.dst_off + c) * p.HW + r;
        dst[o] = p.accum != 0 ? dst[o] + v : v;
    }
}
