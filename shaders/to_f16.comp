/* to_f16.comp: dst[i] = float16_t(src[i]) (round to nearest even), the
 * fp16-storage variant's conversion of a convolution operand. */
#version 450
#extension GL_EXT_shader_16bit_storage : require
layout(local_size_x = 256) in;
layout(push_constant) uniform P { int len; } p;
layout(std430, binding = 0) readonly buffer A0 { float src[]; };
layout(std430, binding = 1) writeonly buffer A1 { float16_t dst[]; };
void main()
{
    int stride = int(gl_NumWorkGroups.x) * 256;
    for (int i = int(gl_GlobalInvocationID.x); i < p.len; i += stride) {
        dst[i] = float16_t(src[i]);
    }
}
