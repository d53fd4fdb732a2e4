/*
 * conv_bww_rt.comp: stride-1 weight gradient for CPU devices. Each
 * invocation owns TM output channels x TC input channels x all KS*KS taps
 * and walks the output rows of its K-slice (gl_WorkGroupID.z) pixel by
 * pixel, keeping a KS x KS window of each input channel in registers and
 * loading only its new column per pixel: TM + TC*KS loads for
 * TM*TC*KS*KS multiply-adds, no shared memory, no barriers.
 *   dw[z][o][c][ky][kx] (+)= sum over this slice's (n, oy, ox) of
 *                            dy[n][o][oy][ox] * x[n][c][oy+ky-PAD][ox+kx-PAD]
 * (1x1 over a multiple of 4 pixels goes to conv_bww_1x1.comp instead.)
 * Tile sizes were measured on lavapipe (LLVM 15, AVX2): the accumulators
 * must stay in registers; 3x3 with TM 4 (36 accumulators) spilled and ran
 * at half the speed of TM 3 (27).
 */
#version 450
layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 0) const int WGX = 16;
layout(constant_id = 1) const int WGY = 4;
layout(constant_id = 2) const int PAD = 1;
/* compile-time kernel size and tiles (one SPIR-V per size); ops.c mirrors TM */
const int KS = KSIZE;
const int TC = KSIZE == 1 ? 4 : 1;
const int TM = KSIZE == 1 ? 8 : 3;
const int KK = KS * KS;

/* ksplit: output rows (n, oy) per slice */
layout(push_constant) uniform P {
    int N, CI, H, W, CO, HO, WO, flags, ksplit;
} p;
layout(std430, binding = 0) readonly buffer A0 { float dy[]; };
layout(std430, binding = 1) readonly buffer A1 { float x[]; };
layout(std430, binding = 2) buffer A2 { float dw[]; };

void main()
{
    const int cg = int(gl_GlobalInvocationID.x);
    const int cb = int(gl_GlobalInvocationID.y);
    if (cg * TC >= p.CI || cb * TM >= p.CO) {
        return;
    }
    const int HW = p.H * p.W;
    const int HWO = p.HO * p.WO;
    int dr[TM];
    for (int i = 0; i < TM; i++) {
        dr[i] = min(cb * TM + i, p.CO - 1) * HWO;
    }
    int xc[TC];
    for (int c = 0; c < TC; c++) {
        xc[c] = min(cg * TC + c, p.CI - 1) * HW;
    }
    float acc[TM * TC * KK];
    for (int i = 0; i < TM * TC * KK; i++) {
        acc[i] = 0.0;
    }
    const int r0 = int(gl_WorkGroupID.z) * p.ksplit;
    const int r1 = min(r0 + p.ksplit, p.N * p.HO);
    for (int row = r0; row < r1; row++) {
        int n = row / p.HO;
        int oy = row - n * p.HO;
        int db = n * p.CO * HWO + oy * p.WO;
        int xb = n * p.CI * HW;
        float win[TC * KK];
        for (int c = 0; c < TC; c++) {
            for (int ky = 0; ky < KS; ky++) {
                int iy = oy + ky - PAD;
                bool rowok = iy >= 0 && iy < p.H;
                for (int kx = 0; kx < KS - 1; kx++) {
                    int ix = kx - PAD;
                    bool ok = rowok && ix >= 0 && ix < p.W;
                    float v = x[ok ? xb + xc[c] + iy * p.W + ix : 0];
                    win[(c * KS + ky) * KS + kx + 1] = ok ? v : 0.0;
                }
            }
        }
        for (int ox = 0; ox < p.WO; ox++) {
            /* shift the window left by one and load its new right column */
            for (int c = 0; c < TC; c++) {
                for (int ky = 0; ky < KS; ky++) {
                    for (int kx = 0; kx < KS - 1; kx++) {
                        win[(c * KS + ky) * KS + kx] = win[(c * KS + ky) * KS + kx + 1];
                    }
                    int iy = oy + ky - PAD;
                    int ix = ox + KS - 1 - PAD;
                    bool ok = iy >= 0 && iy < p.H && ix >= 0 && ix < p.W;
                    float v = x[ok ? xb + xc[c] + iy * p.W + ix : 0];
                    win[(c * KS + ky) * KS + KS - 1] = ok ? v : 0.0;
                }
            }
            float a[TM];
            for (int i = 0; i < TM; i++) {
                a[i] = dy[db + dr[i] + ox];
            }
            for (int i = 0; i < TM; i++) {
                for (int t = 0; t < TC * KK; t++) {
                    acc[i * TC * KK + t] = fma(a[i], win[t], acc[i * TC * KK + t]);
                }
            }
        }
    }
    const int ncol = p.CI * KK;
    const int zb = int(gl_WorkGroupID.z) * p.CO * ncol;
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
            for (int t = 0; t < KK; t++) {
                int idx = zb + o * ncol + ci * KK + t;
                float v = acc[(i * TC + c) * KK + t];
                dw[idx] = (p.flags & 2) != 0 ? dw[idx] + v : v;
            }
        }
    }
}
