/*
 * conv_reg.comp: 2-D convolution as an implicit GEMM, register-tiled, no
 * shared memory and no barriers: the CPU-device variant (on lavapipe every
 * shared-memory access is a per-lane scalar loop and barrier() a coroutine
 * switch, so keeping the tile in registers is twice as fast).
 *
 * One source, three kernels chosen by MODE (compiled separately):
 *   MODE 0 forward:     y[n,o,p]      rows o (c_out),   cols (n,oy,ox),  K = (ci,ky,kx)
 *   MODE 1 bwd data:    dx[n,ci,p]    rows ci (c_in),   cols (n,y,x),    K = (o,ky,kx)
 *   MODE 2 bwd weights: dw[o,ci,ky,kx] rows o (c_out),  cols (ci,ky,kx), K = (n,oy,ox), split over z
 * Each invocation owns TM rows x TN columns, strided by the workgroup size so
 * neighbouring lanes touch neighbouring pixels.
 * With F16 defined (the fp16-storage variant) the two GEMM operands are
 * float16_t buffers (ops.c converts them), widened to fp32 on load; the
 * accumulation and the output stay fp32.
 */
#version 450
#ifdef F16
#extension GL_EXT_shader_16bit_storage : require
#define OPND float16_t
#define LD(v) float(v)
#else
#define OPND float
#define LD(v) (v)
#endif

layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 0) const int WGX = 16;
layout(constant_id = 1) const int WGY = 4;
layout(constant_id = 2) const int TM = 4;
layout(constant_id = 3) const int TN = 4;
layout(constant_id = 4) const int KS = 3;
layout(constant_id = 5) const int STRIDE = 1;
layout(constant_id = 6) const int PAD = 1;

/* flags: bit 0 add bias (forward), bit 1 accumulate into the output */
layout(push_constant) uniform P {
    int N, CI, H, W, CO, HO, WO, flags, ksplit;
} p;

#if MODE == 0
layout(std430, binding = 0) readonly buffer A0 { OPND x[]; };
layout(std430, binding = 1) readonly buffer A1 { OPND w[]; };
layout(std430, binding = 2) readonly buffer A2 { float bias[]; };
layout(std430, binding = 3) buffer A3 { float y[]; };
#elif MODE == 1
layout(std430, binding = 0) readonly buffer A0 { OPND dy[]; };
layout(std430, binding = 1) readonly buffer A1 { OPND w[]; };
layout(std430, binding = 2) buffer A2 { float dx[]; };
#else
layout(std430, binding = 0) readonly buffer A0 { OPND dy[]; };
layout(std430, binding = 1) readonly buffer A1 { OPND x[]; };
layout(std430, binding = 2) buffer A2 { float dw[]; };
#endif

void main()
{
    const int HW = p.H * p.W;
    const int HWO = p.HO * p.WO;
    const int KK = KS * KS;
    const int lx = int(gl_LocalInvocationID.x);
    const int ly = int(gl_LocalInvocationID.y);
    const int col0 = int(gl_WorkGroupID.x) * WGX * TN + lx;
    const int row0 = int(gl_WorkGroupID.y) * WGY * TM + ly;

    float acc[TM * TN];
    for (int i = 0; i < TM * TN; i++) {
        acc[i] = 0.0;
    }

#if MODE == 0
    /* columns: output pixels */
    const int NCOL = p.N * HWO;
    int xb[TN];  /* offset of sample n in x, -1 if the column is past the end */
    int iy0[TN];
    int ix0[TN];
    int yo[TN];
    for (int j = 0; j < TN; j++) {
        int col = col0 + j * WGX;
        int n = col / HWO;
        int r = col - n * HWO;
        int oy = r / p.WO;
        int ox = r - oy * p.WO;
        xb[j] = col < NCOL ? n * p.CI * HW : -1;
        iy0[j] = oy * STRIDE - PAD;
        ix0[j] = ox * STRIDE - PAD;
        yo[j] = n * p.CO * HWO + r;
    }
    int wr[TM];
    for (int i = 0; i < TM; i++) {
        wr[i] = min(row0 + i * WGY, p.CO - 1) * p.CI * KK;
    }
    for (int ci = 0; ci < p.CI; ci++) {
        for (int ky = 0; ky < KS; ky++) {
            for (int kx = 0; kx < KS; kx++) {
                float a[TM];
                for (int i = 0; i < TM; i++) {
                    a[i] = LD(w[wr[i] + ci * KK + ky * KS + kx]);
                }
                float b[TN];
                for (int j = 0; j < TN; j++) {
                    int iy = iy0[j] + ky;
                    int ix = ix0[j] + kx;
                    bool ok = xb[j] >= 0 && iy >= 0 && iy < p.H && ix >= 0 && ix < p.W;
                    int idx = ok ? xb[j] + ci * HW + iy * p.W + ix : 0;
                    float v = LD(x[idx]);
                    b[j] = ok ? v : 0.0;
                }
                for (int i = 0; i < TM; i++) {
                    for (int j = 0; j < TN; j++) {
                        acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]);
                    }
                }
            }
        }
    }
    for (int i = 0; i < TM; i++) {
        int o = row0 + i * WGY;
        if (o >= p.CO) {
            continue;
        }
        float bo = (p.flags & 1) != 0 ? bias[o] : 0.0;
        for (int j = 0; j < TN; j++) {
            if (xb[j] < 0) {
                continue;
            }
            int idx = yo[j] + o * HWO;
            float v = acc[i * TN + j] + bo;
            y[idx] = (p.flags & 2) != 0 ? y[idx] + v : v;
        }
    }
#elif MODE == 1
    /* columns: input pixels; a tap (o,ky,kx) reads dy at ((y+PAD-ky)/S, (x+PAD-kx)/S) */
    const int NCOL = p.N * HW;
    int db[TN];
    int ty0[TN];
    int tx0[TN];
    int xo[TN];
    for (int j = 0; j < TN; j++) {
        int col = col0 + j * WGX;
        int n = col / HW;
        int r = col - n * HW;
        int yy = r / p.W;
        int xx = r - yy * p.W;
        db[j] = col < NCOL ? n * p.CO * HWO : -1;
        ty0[j] = yy + PAD;
        tx0[j] = xx + PAD;
        xo[j] = n * p.CI * HW + r;
    }
    int wr[TM];
    for (int i = 0; i < TM; i++) {
        wr[i] = min(row0 + i * WGY, p.CI - 1) * KK;
    }
    for (int o = 0; o < p.CO; o++) {
        for (int ky = 0; ky < KS; ky++) {
            for (int kx = 0; kx < KS; kx++) {
                float a[TM];
                for (int i = 0; i < TM; i++) {
                    a[i] = LD(w[o * p.CI * KK + wr[i] + ky * KS + kx]);
                }
                float b[TN];
                for (int j = 0; j < TN; j++) {
                    int ty = ty0[j] - ky;
                    int tx = tx0[j] - kx;
                    int oy = ty / STRIDE;
                    int ox = tx / STRIDE;
                    bool ok = db[j] >= 0 && ty >= 0 && tx >= 0 && oy < p.HO && ox < p.WO;
                    if (STRIDE > 1) {
                        ok = ok && oy * STRIDE == ty && ox * STRIDE == tx;
                    }
                    int idx = ok ? db[j] + o * HWO + oy * p.WO + ox : 0;
                    float v = LD(dy[idx]);
                    b[j] = ok ? v : 0.0;
                }
                for (int i = 0; i < TM; i++) {
                    for (int j = 0; j < TN; j++) {
                        acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]);
                    }
                }
            }
        }
    }
    for (int i = 0; i < TM; i++) {
        int ci = row0 + i * WGY;
        if (ci >= p.CI) {
            continue;
        }
        for (int j = 0; j < TN; j++) {
            if (db[j] < 0) {
                continue;
            }
            int idx = xo[j] + ci * HW;
            float v = acc[i * TN + j];
            dx[idx] = (p.flags & 2) != 0 ? dx[idx] + v : v;
        }
    }
#else
    /* columns: weight taps (ci,ky,kx); K runs over (n,oy,ox), this z-slice's share */
    const int NCOL = p.CI * KK;
    int xc[TN];
    int ky0[TN];
    int kx0[TN];
    for (int j = 0; j < TN; j++) {
        int col = min(col0 + j * WGX, NCOL - 1);
        int ci = col / KK;
        int t = col - ci * KK;
        int ky = t / KS;
        xc[j] = ci * HW;
        ky0[j] = ky - PAD;
        kx0[j] = t - ky * KS - PAD;
    }
    int dr[TM];
    for (int i = 0; i < TM; i++) {
        dr[i] = min(row0 + i * WGY, p.CO - 1) * HWO;
    }
    const int KTOT = p.N * HWO;
    const int k0 = int(gl_WorkGroupID.z) * p.ksplit;
    const int k1 = min(k0 + p.ksplit, KTOT);
    int n = k0 / HWO;
    int r = k0 - n * HWO;
    int oy = r / p.WO;
    int ox = r - oy * p.WO;
    for (int k = k0; k < k1; k++) {
        int dyb = n * p.CO * HWO + oy * p.WO + ox;
        int xb = n * p.CI * HW;
        float a[TM];
        for (int i = 0; i < TM; i++) {
            a[i] = LD(dy[dyb + dr[i]]);
        }
        float b[TN];
        for (int j = 0; j < TN; j++) {
            int iy = oy * STRIDE + ky0[j];
            int ix = ox * STRIDE + kx0[j];
            bool ok = iy >= 0 && iy < p.H && ix >= 0 && ix < p.W;
            int idx = ok ? xb + xc[j] + iy * p.W + ix : 0;
            float v = LD(x[idx]);
            b[j] = ok ? v : 0.0;
        }
        for (int i = 0; i < TM; i++) {
            for (int j = 0; j < TN; j++) {
                acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]);
            }
        }
        ox++;
        if (ox == p.WO) {
            ox = 0;
            oy++;
            if (oy == p.HO) {
                oy = 0;
                n++;
            }
        }
    }
    /* slice z writes its partial sums at z * c_out * NCOL (z = 0 is dw itself
     * when there is one slice; ops.c sums the slices otherwise) */
    const int zb = int(gl_WorkGroupID.z) * p.CO * NCOL;
    for (int i = 0; i < TM; i++) {
        int o = row0 + i * WGY;
        if (o >= p.CO) {
            continue;
        }
        for (int j = 0; j < TN; j++) {
            int col = col0 + j * WGX;
            if (col >= NCOL) {
                continue;
            }
            int idx = zb + o * NCOL + col;
            float v = acc[i * TN + j];
            dw[idx] = (p.flags & 2) != 0 ? dw[idx] + v : v;
        }
    }
#endif
}
