/*
 * resample.comp: 2x down- and upsampling, NCHW; H, W are the SMALL side's
 * sizes for upsampling and the LARGE side's for pooling.
 *   OP 0 avgpool fwd: y[h/2,w/2] = mean of a 2x2 block (floor; odd edge unread)
 *   OP 1 avgpool bwd: dx = dy/4 in each block, 0 on an unread odd edge
 *   OP 2 nearest up fwd: y[2h,2w] = x[i/2, j/2]
 *   OP 3 nearest up bwd: dx = sum of its 4 children
 *   OP 4 bilinear up fwd (align_corners=False, PyTorch)
 *   OP 5 bilinear up bwd: gathered transpose of OP 4
 * Every output element is written by exactly one invocation (gathers, no
 * atomics), so results are deterministic. accum adds into the output.
 */
#version 450
layout(local_size_x = 256) in;
layout(constant_id = 0) const int OP = 0;
layout(push_constant) uniform P { int NC, H, W, accum; } p;
layout(std430, binding = 0) readonly buffer A0 { float src[]; };
layout(std430, binding = 1) buffer A1 { float dst[]; };

/* bilinear source index and weight of the upper neighbour for output i */
void bl(int i, int n, out int i0, out int i1, out float l1)
{
    float s = max(0.0, (float(i) + 0.5) * 0.5 - 0.5);
    i0 = int(floor(s));
    i1 = min(i0 + 1, n - 1);
    l1 = s - float(i0);
}

/* weight output row i gives to input row r (0 if none) */
float blw(int i, int r, int n)
{
    if (i < 0 || i >= 2 * n) {
        return 0.0;
    }
    int i0;
    int i1;
    float l1;
    bl(i, n, i0, i1, l1);
    float wgt = 0.0;
    if (i0 == r) {
        wgt += 1.0 - l1;
    }
    if (i1 == r) {
        wgt += l1;
    }
    return wgt;
}

void main()
{
    int H = p.H;
    int W = p.W;
    int count;
    if (OP == 0) {
        count = p.NC * (H / 2) * (W / 2);
    } else if (OP == 1) {
        count = p.NC * H * W;
    } else if (OP == 2 || OP == 4) {
        count = p.NC * 4 * H * W;
    } else {
        count = p.NC * H * W;
    }
    int stride = int(gl_NumWorkGroups.x) * 256;
    for (int i = int(gl_GlobalInvocationID.x); i < count; i += stride) {
        float v = 0.0;
        if (OP == 0) {
            int ho = H / 2;
            int wo = W / 2;
            int nc = i / (ho * wo);
            int r = i - nc * ho * wo;
            int y = r / wo;
            int x = r - y * wo;
            int b = nc * H * W + 2 * y * W + 2 * x;
            v = 0.25 * (src[b] + src[b + 1] + src[b + W] + src[b + W + 1]);
        } else if (OP == 1) {
            int ho = H / 2;
            int wo = W / 2;
            int nc = i / (H * W);
            int r = i - nc * H * W;
            int y = r / W;
            int x = r - y * W;
            if (y / 2 < ho && x / 2 < wo) {
                v = 0.25 * src[nc * ho * wo + (y / 2) * wo + x / 2];
            }
        } else if (OP == 2) {
            int nc = i / (4 * H * W);
            int r = i - nc * 4 * H * W;
            int y = r / (2 * W);
            int x = r - y * 2 * W;
            v = src[nc * H * W + (y / 2) * W + x / 2];
        } else if (OP == 3) {
            int nc = i / (H * W);
            int r = i - nc * H * W;
            int y = r / W;
            int x = r - y * W;
            int b = nc * 4 * H * W + 2 * y * 2 * W + 2 * x;
            v = src[b] + src[b + 1] + src[b + 2 * W] + src[b + 2 * W + 1];
        } else if (OP == 4) {
            int nc = i / (4 * H * W);
            int r = i - nc * 4 * H * W;
            int y = r / (2 * W);
            int x = r - y * 2 * W;
            int y0;
            int y1;
            int x0;
            int x1;
            float ly;
            float lx;
            bl(y, H, y0, y1, ly);
            bl(x, W, x0, x1, lx);
            int b = nc * H * W;
            float top = (1.0 - lx) * src[b + y0 * W + x0] + lx * src[b + y0 * W + x1];
            float bot = (1.0 - lx) * src[b + y1 * W + x0] + lx * src[b + y1 * W + x1];
            v = (1.0 - ly) * top + ly * bot;
        } else {
            int nc = i / (H * W);
            int r = i - nc * H * W;
            int y = r / W;
            int x = r - y * W;
            int b = nc * 4 * H * W;
            for (int oy = 2 * y - 1; oy <= 2 * y + 2; oy++) {
                float wy = blw(oy, y, H);
                if (wy == 0.0) {
                    continue;
                }
                for (int ox = 2 * x - 1; ox <= 2 * x + 2; ox++) {
                    float wx = blw(ox, x, W);
                    if (wx != 0.0) {
                        v += wy * wx * src[b + oy * 2 * W + ox];
                    }
                }
            }
        }
        dst[i] = p.accum != 0 ? dst[i] + v : v;
    }
}
