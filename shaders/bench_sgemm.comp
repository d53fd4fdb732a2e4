/*
 * bench_sgemm.comp: the bench's own fp32 SGEMM, the practical-peak yardstick
 * of bench/engine: C = A B with A stored transposed (K x M), B (K x N) and
 * C (M x N) row-major, M and N multiples of 128. Register-tiled, no shared
 * memory: 16 x 16 invocations, each 8 x 8 consecutive outputs, operands read
 * as vec4. On lavapipe every load instruction is a per-lane scalar loop, so
 * vec4 loads of contiguous tiles are what reach the device's arithmetic
 * limit (measured ~3.8x the same tiling with scalar strided loads).
 */
#version 450
layout(local_size_x = 16, local_size_y = 16) in;
layout(push_constant) uniform P { int M, N, K; } p;
layout(std430, binding = 0) readonly buffer A0 { vec4 At[]; };
layout(std430, binding = 1) readonly buffer A1 { vec4 B[]; };
layout(std430, binding = 2) writeonly buffer A2 { vec4 C[]; };
void main()
{
    int c4 = int(gl_GlobalInvocationID.x) * 2;
    int r0 = int(gl_GlobalInvocationID.y) * 8;
    int m4 = p.M / 4;
    int n4 = p.N / 4;
    vec4 acc[16];
    for (int i = 0; i < 16; i++) {
        acc[i] = vec4(0.0);
    }
    for (int k = 0; k < p.K; k++) {
        vec4 a0 = At[k * m4 + r0 / 4];
        vec4 a1 = At[k * m4 + r0 / 4 + 1];
        vec4 b0 = B[k * n4 + c4];
        vec4 b1 = B[k * n4 + c4 + 1];
        float a[8] = float[8](a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w);
        for (int i = 0; i < 8; i++) {
            acc[2 * i] = fma(vec4(a[i]), b0, acc[2 * i]);
            acc[2 * i + 1] = fma(vec4(a[i]), b1, acc[2 * i + 1]);
        }
    }
    for (int i = 0; i < 8; i++) {
        C[(r0 + i) * n4 + c4] = acc[2 * i];
        C[(r0 + i) * n4 + c4 + 1] = acc[2 * i + 1];
    }
}
