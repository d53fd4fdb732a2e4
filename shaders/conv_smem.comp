/*
 * conv_smem.comp: 2-D convolution as an implicit GEMM with shared-memory
 * tiling, the GPU variant: a 256-invocation workgroup stages a BM x BK tile
 * of the "A" operand and a BK x BN tile of the gathered "B" operand (im2col
 * done on the fly, never materialised), then each invocation accumulates a
 * 4 x 4 block from shared memory. Same three MODEs and push constants as
 * conv_reg.comp, so ops.c drives both alike:
 *   MODE 0 forward      M = c_out, cols = (n,oy,ox), K = (ci,ky,kx)
 *   MODE 1 bwd data     M = c_in,  cols = (n,y,x),   K = (o,ky,kx)
 *   MODE 2 bwd weights  M = c_out, cols = (ci,ky,kx), K = (n,oy,ox), split over z
 */
#version 450

#define BM 64
#define BN 64
#define BK 16
layout(local_size_x = 256) in;
layout(constant_id = 0) const int KS = 3;
layout(constant_id = 1) const int STRIDE = 1;
layout(constant_id = 2) const int PAD = 1;

layout(push_constant) uniform P {
    int N, CI, H, W, CO, HO, WO, flags, ksplit;
} p;

#if MODE == 0
layout(std430, binding = 0) readonly buffer A0 { float x[]; };
layout(std430, binding = 1) readonly buffer A1 { float w[]; };
layout(std430, binding = 2) readonly buffer A2 { float bias[]; };
layout(std430, binding = 3) buffer A3 { float y[]; };
#elif MODE == 1
layout(std430, binding = 0) readonly buffer A0 { float dy[]; };
layout(std430, binding = 1) readonly buffer A1 { float w[]; };
layout(std430, binding = 2) buffer A2 { float dx[]; };
#else
layout(std430, binding = 0) readonly buffer A0 { float dy[]; };
layout(std430, binding = 1) readonly buffer A1 { float x[]; };
layout(std430, binding = 2) buffer A2 { float dw[]; };
#endif

shared float As[BK][BM];
shared float Bs[BK][BN];

const int KK = KS * KS;

float load_a(int m, int k, int M, int K)
{
    if (m >= M || k >= K) {
        return 0.0;
    }
#if MODE == 0
    return w[m * K + k];
#elif MODE == 1
    int o = k / KK;
    return w[(o * p.CI + m) * KK + (k - o * KK)];
#else
    int hwo = p.HO * p.WO;
    int n = k / hwo;
    return dy[(n * p.CO + m) * hwo + (k - n * hwo)];
#endif
}

float load_b(int k, int c, int K, int NC)
{
    if (k >= K || c >= NC) {
        return 0.0;
    }
#if MODE == 0
    int hwo = p.HO * p.WO;
    int n = c / hwo;
    int r = c - n * hwo;
    int oy = r / p.WO;
    int ox = r - oy * p.WO;
    int ci = k / KK;
    int t = k - ci * KK;
    int ky = t / KS;
    int kx = t - ky * KS;
    int iy = oy * STRIDE + ky - PAD;
    int ix = ox * STRIDE + kx - PAD;
    bool ok = iy >= 0 && iy < p.H && ix >= 0 && ix < p.W;
    int idx = ok ? ((n * p.CI + ci) * p.H + iy) * p.W + ix : 0;
    float v = x[idx];
    return ok ? v : 0.0;
#elif MODE == 1
    int hw = p.H * p.W;
    int n = c / hw;
    int r = c - n * hw;
    int yy = r / p.W;
    int xx = r - yy * p.W;
    int o = k / KK;
    int t = k - o * KK;
    int ky = t / KS;
    int kx = t - ky * KS;
    int ty = yy + PAD - ky;
    int tx = xx + PAD - kx;
    int oy = ty / STRIDE;
    int ox = tx / STRIDE;
    bool ok = ty >= 0 && tx >= 0 && oy < p.HO && ox < p.WO && oy * STRIDE == ty && ox * STRIDE == tx;
    int idx = ok ? ((n * p.CO + o) * p.HO + oy) * p.WO + ox : 0;
    float v = dy[idx];
    return ok ? v : 0.0;
#else
    int hwo = p.HO * p.WO;
    int n = k / hwo;
    int r = k - n * hwo;
    int oy = r / p.WO;
    int ox = r - oy * p.WO;
    int ci = c / KK;
    int t = c - ci * KK;
    int ky = t / KS;
    int kx = t - ky * KS;
    int iy = oy * STRIDE + ky - PAD;
    int ix = ox * STRIDE + kx - PAD;
    bool ok = iy >= 0 && iy < p.H && ix >= 0 && ix < p.W;
    int idx = ok ? ((n * p.CI + ci) * p.H + iy) * p.W + ix : 0;
    float v = x[idx];
    return ok ? v : 0.0;
#endif
}

void main()
{
#if MODE == 0
    const int M = p.CO;
    const int NC = p.N * p.HO * p.WO;
    const int K = p.CI * KK;
    const int kbeg = 0;
    const int kend = K;
#elif MODE == 1
    const int M = p.CI;
    const int NC = p.N * p.H * p.W;
    const int K = p.CO * KK;
    const int kbeg = 0;
    const int kend = K;
#else
    const int M = p.CO;
    const int NC = p.CI * KK;
    const int K = p.N * p.HO * p.WO;
    const int kbeg = int(gl_WorkGroupID.z) * p.ksplit;
    const int kend = min(kbeg + p.ksplit, K);
#endif
    const int t = int(gl_LocalInvocationID.x);
    const int tx = t % 16;
    const int ty = t / 16;
    const int m0 = int(gl_WorkGroupID.y) * BM;
    const int c0 = int(gl_WorkGroupID.x) * BN;

    float acc[16];
    for (int i = 0; i < 16; i++) {
        acc[i] = 0.0;
    }
    for (int k0 = kbeg; k0 < kend; k0 += BK) {
        for (int q = 0; q < 4; q++) {
            int e = t + 256 * q;
            int am = e / BK;
            int ak = e - am * BK;
            As[ak][am] = load_a(m0 + am, k0 + ak, M, kend);
            int bk = e / BN;
            int bc = e - bk * BN;
            Bs[bk][bc] = load_b(k0 + bk, c0 + bc, kend, NC);
        }
        barrier();
        for (int kk = 0; kk < BK; kk++) {
            float a[4];
            float b[4];
            for (int i = 0; i < 4; i++) {
                a[i] = As[kk][ty + 16 * i];
                b[i] = Bs[kk][tx + 16 * i];
            }
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 4; j++) {
                    acc[i * 4 + j] = fma(a[i], b[j], acc[i * 4 + j]);
                }
            }
        }
        barrier();
    }
    for (int i = 0; i < 4; i++) {
        int m = m0 + ty + 16 * i;
        if (m >= M) {
            continue;
        }
        for (int j = 0; j < 4; j++) {
            int c = c0 + tx + 16 * j;
            if (c >= NC) {
                continue;
            }
            float v = acc[i * 4 + j];
#if MODE == 0
            int hwo = p.HO * p.WO;
            int n = c / hwo;
            int idx = (n * p.CO + m) * hwo + (c - n * hwo);
            if ((p.flags & 1) != 0) {
                v += bias[m];
            }
            y[idx] = (p.flags & 2) != 0 ? y[idx] + v : v;
#elif MODE == 1
            int hw = p.H * p.W;
            int n = c / hw;
            int idx = (n * p.CI + m) * hw + (c - n * hw);
            dx[idx] = (p.flags & 2) != 0 ? dx[idx] + v : v;
#else
            int idx = int(gl_WorkGroupID.z) * M * NC + m * NC + c;
            dw[idx] = (p.flags & 2) != 0 ? dw[idx] + v : v;
#endif
        }
    }
}
