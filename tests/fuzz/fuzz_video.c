/*
 * fuzz_video.c: the FFmpeg video reader (media/video.c: open, probe, decode
 * by frame number with seeks) and media_probe on arbitrary bytes, through a
 * temporary file because both open files by name. Reads frames 0, 2, 1 so
 * the seek path runs too. Seeds: tests/fuzz/corpus/video/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "probe.h"
#include "video.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/rs_fuzz_video.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        return 0;
    }
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            break;
        }
        off += (size_t)w;
    }
    close(fd);
    rs_error e;
    cJSON *o = NULL;
    if (media_probe(path, &o, &e) == RS_OK) {
        cJSON_Delete(o);
    }
    media_video *v = NULL;
    if (media_video_open(path, &v, &e) == RS_OK) {
        const media_video_info *in = media_video_get_info(v);
        /* keep the fuzzer off giant frames: decoding is fine, RGB copies are not */
        if ((uint64_t)in->width * in->height <= (1u << 22)) {
            static const int64_t order[3] = {0, 2, 1};
            for (int i = 0; i < 3; i++) {
                media_frame *f = NULL;
                if (media_video_read(v, order[i], MEDIA_SAMPLE_U16, &f, &e) == RS_OK) {
                    media_frame_destroy(f);
                }
            }
        }
        media_video_close(v);
    }
    unlink(path);
    return 0;
}
