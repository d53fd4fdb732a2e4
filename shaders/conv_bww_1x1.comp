/*
 * conv_bww_1x1.comp: 1x1 stride-1 weight gradient for CPU devices when the
 * pixel count is a multiple of 4: a plain GEMM dw[o][c] = sum over (n, p)
 * of dy[n][o][p] * x[n][c][p], read as vec4 along pixels. Each invocation
 * owns TILE_M output x TILE_C input channels (TILE_M * TILE_C vec4
 * accumulators); per 4 pixels it makes TILE_M + TILE_C vec4 loads for
 * 4 * TILE_M * TILE_C multiply-adds. K (n, p/4) is split over
 * gl_WorkGroupID.z like the others.
 * Tile sizes measured on lavapipe (bench/engine, n4 64->64 64x64, against
 * the bench's SGEMM): 4x4 0.71x, 4x8 0.82x, 8x4 0.81-0.86x, 8x8 0.34x (64
 * vec4 accumulators spill). 8x4 is the default build; 4x4 serves layers of
 * fewer than 8 output channels (the U-Net's head), where 8 would waste rows.
 */
#version 450
layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 0) const int WGX = 16;
layout(constant_id = 1) const int WGY = 4;
#ifndef TILE_M
#define TILE_M 8
#endif
#ifndef TILE_C
#define TILE_C 4
#endif
const int TM = TILE_M;
const int TC = TILE_C;

/* ksplit: vec4 pixel groups per slice */
layout(push_constant) uniform P {
    int N, CI, H, W, CO, HO, WO, flags, ksplit;
} p;
layout(std430, binding = 0) readonly buffer A0 { vec4 dy[]; };
layout(std430, binding = 1) readonly buffer A1 { vec4 x[]; };
layout(std430, binding = 2) buffer A2 { float dw[]; };

void main()
{
    const int cg = int(gl_GlobalInvocationID.x);
    const int cb = int(gl_GlobalInvocationID.y);
    if (cg * TC >= p.CI || cb * TM >= p.CO) {
        return;
    }
    const int hw4 = p.H * p.W / 4;
    int dr[TM];
    for (int i = 0; i < TM; i++) {
        dr[i] = min(cb * TM + i, p.CO - 1) * hw4;
    }
    int xc[TC];
    for (int c = 0; c < TC; c++) {
        xc[c] = min(cg * TC + c, p.CI - 1) * hw4;
    }
    vec4 acc[TM * TC];
    for (int i = 0; i < TM * TC; i++) {
        acc[i] = vec4(0.0);
    }
    const int k0 = int(gl_WorkGroupID.z) * p.ksplit;
    const int k1 = min(k0 + p.ksplit, p.N * hw4);
    int n = k0 / hw4;
    int q = k0 - n * hw4;
    for (int k = k0; k < k1; k++) {
        int db = n * p.CO * hw4 + q;
        int xb = n * p.CI * hw4 + q;
        vec4 a[TM];
        for (int i = 0; i < TM; i++) {
            a[i] = dy[db + dr[i]];
        }
        vec4 b[TC];
        for (int c = 0; c < TC; c++) {
            b[c] = x[xb + xc[c]];
        }
        for (int i = 0; i < TM; i++) {
            for (int c = 0; c < TC; c++) {
                acc[i * TC + c] = fma(a[i], b[c], acc[i * TC + c]);
            }
        }
        q++;
        if (q == hw4) {
            q = 0;
            n++;
        }
    }
    const int zb = int(gl_WorkGroupID.z) * p.CO * p.CI;
    for (int i = 0; i < TM; i++) {
        int o = cb * TM + i;
        if (o >= p.CO) {
            break;
        }
        for (int c = 0; c < TC; c++) {
            int ci = cg * TC + c;
            if (ci >= p.CI) {
                break;
            }
            vec4 s4 = acc[i * TC + c];
            float v = (s4.x + s4.y) + (s4.z + s4.w);
            int idx = zb + o * p.CI + ci;
            dw[idx] = (p.flags & 2) != 0 ? dw[idx] + v : v;
        }
    }
}
