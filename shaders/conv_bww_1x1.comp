/*
 * conv_bww_1x1.comp: 1x1 stride-1 weight gradient for CPU devices when the
 * pixel count is a multiple of 4: a plain GEMM dw[o][c] = sum over (n, p)
 * of dy[n][o][p] * x[n][c][p], read as vec4 along pixels. Each invocation
 * owns 4 output x 4 input channels (16 accumulators); per 4 pixels it makes
 * 4 vec4 loads of dy shared by its workgroup row and 4 of x, for 64
 * multiply-adds. K (n, p/4) is split over gl_WorkGroupID.z like the others.
 */
#version 450
layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 0) const int WGX = 16;
layout(constant_id = 1) const int WGY = 4;
const int TM = 4;
const int TC = 4;

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
