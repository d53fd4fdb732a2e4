/*
 * conv_rt.comp: stride-1 convolution, row-tiled for CPU devices: each
 * invocation owns 8 output channels x TN = 4 consecutive pixels of one
 * output row (32 accumulators: with TN 8 they spilled on lavapipe, LLVM 15
 * AVX2, and the kernel ran 4x slower). Per input channel and kernel row it
 * loads the TN + KS - 1 input values its pixels need once (as vec4 when
 * rows are a multiple of 4 wide) and reuses them for every kx, and reads its
 * 8 weights as two vec4 from the relayout of conv_wt.comp: about a third of
 * the load instructions of the plain implicit GEMM, no shared memory, no
 * barriers. Serves the forward pass and, with flipped weights and pad
 * KS-1-PAD, the stride-1 data gradient.
 *   y[n][o][oy][ox] (+)= sum_{c,ky,kx} wt[(c*KS*KS + ky*KS + kx)][o] *
 *                        x[n][c][oy+ky-PAD][ox+kx-PAD]   (+ bias[o])
 */
#version 450
layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 0) const int WGX = 16;
layout(constant_id = 1) const int WGY = 4;
const int TN = 4; /* ops.c mirrors it */
layout(constant_id = 2) const int PAD = 1;
/* compile-time kernel size (one SPIR-V per size): literal array sizes */
const int KS = KSIZE;
const int TM = 8;

/* flags: bit 0 add bias, bit 1 accumulate; MP: output channels rounded up to 8 */
layout(push_constant) uniform P {
    int N, CI, H, W, CO, HO, WO, flags, MP;
} p;
#ifdef XVEC4
/* rows start and end on vec4 boundaries (W % 4 == 0): whole vec4 loads,
 * each entirely inside or outside the row */
layout(std430, binding = 0) readonly buffer A0 { vec4 x4[]; };
#else
layout(std430, binding = 0) readonly buffer A0 { float x[]; };
#endif
layout(std430, binding = 1) readonly buffer A1 { vec4 wt[]; };
layout(std430, binding = 2) readonly buffer A2 { float bias[]; };
layout(std430, binding = 3) buffer A3 { float y[]; };

void main()
{
    const int HW = p.H * p.W;
    const int chunks = (p.WO + TN - 1) / TN;
    const int col = int(gl_GlobalInvocationID.x);
    const int cb = int(gl_GlobalInvocationID.y);
    const int n = col / (p.HO * chunks);
    const int r = col - n * p.HO * chunks;
    const int oy = r / chunks;
    const int ox0 = (r - oy * chunks) * TN;
    if (n >= p.N || cb * TM >= p.CO) {
        return;
    }
    float acc[TM * TN];
    for (int i = 0; i < TM * TN; i++) {
        acc[i] = 0.0;
    }
    const int mp4 = p.MP / 4;
    int xb = n * p.CI * HW;
    for (int ci = 0; ci < p.CI; ci++) {
        for (int ky = 0; ky < KS; ky++) {
            int iy = oy + ky - PAD;
            bool rowok = iy >= 0 && iy < p.H;
            int rb = xb + ci * HW + iy * p.W;
            float seg[TN + KS - 1];
#ifdef XVEC4
            /* vec4 q covers columns ox0 - 4 + 4q .. +3; seg[j] is column ox0 + j - PAD.
             * A 1x1 kernel (PAD 0) needs only the middle ones. */
            float row[TN + 8];
            for (int q = 0; q < TN / 4 + 2; q++) {
                if (KS == 1 && (q == 0 || q == TN / 4 + 1)) {
                    row[4 * q] = 0.0;
                    row[4 * q + 1] = 0.0;
                    row[4 * q + 2] = 0.0;
                    row[4 * q + 3] = 0.0;
                    continue;
                }
                int c0 = ox0 - 4 + 4 * q;
                bool ok = rowok && c0 >= 0 && c0 < p.W;
                vec4 v = x4[ok ? (rb + c0) / 4 : 0];
                v = ok ? v : vec4(0.0);
                row[4 * q] = v.x;
                row[4 * q + 1] = v.y;
                row[4 * q + 2] = v.z;
                row[4 * q + 3] = v.w;
            }
            for (int j = 0; j < TN + KS - 1; j++) {
                seg[j] = row[4 + j - PAD];
            }
#else
            for (int j = 0; j < TN + KS - 1; j++) {
                int ix = ox0 + j - PAD;
                bool ok = rowok && ix >= 0 && ix < p.W;
                float v = x[ok ? rb + ix : 0];
                seg[j] = ok ? v : 0.0;
            }
#endif
            for (int kx = 0; kx < KS; kx++) {
                int k = (ci * KS + ky) * KS + kx;
                vec4 a0 = wt[k * mp4 + cb * 2];
                vec4 a1 = wt[k * mp4 + cb * 2 + 1];
                float a[TM] = float[TM](a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w);
                for (int i = 0; i < TM; i++) {
                    for (int j = 0; j < TN; j++) {
                        acc[i * TN + j] = fma(a[i], seg[j + kx], acc[i * TN + j]);
                    }
                }
            }
        }
    }
    for (int i = 0; i < TM; i++) {
        int o = cb * TM + i;
        if (o >= p.CO) {
            break;
        }
        float bo = (p.flags & 1) != 0 ? bias[o] : 0.0;
        int yb = ((n * p.CO + o) * p.HO + oy) * p.WO;
        for (int j = 0; j < TN; j++) {
            int ox = ox0 + j;
            if (ox < p.WO) {
                float v = acc[i * TN + j] + bo;
                y[yb + ox] = (p.flags & 2) != 0 ? y[yb + ox] + v : v;
            }
        }
    }
}
