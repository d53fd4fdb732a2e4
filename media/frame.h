/*
 * frame.h: the one in-memory picture type of Rushes and the still-image
 * reader/writer interface.
 *
 * A media_frame is width x height pixels of `channels` interleaved samples,
 * rows top to bottom with no padding, every sample of one type (u8, u16,
 * f16 stored as IEEE half bits in a uint16_t, f32). Each channel has a name
 * ("R", "G", "B", "A", or EXR names such as "Z" or "mask.Y"); the frame
 * carries its colour encoding and string metadata (PNG text chunks, EXR
 * string attributes, TIFF/DPX header text). The caller owns a frame it
 * created or was handed and frees it with media_frame_destroy.
 *
 * media_image_read picks the decoder from the file's bytes (magic.h), never
 * from its name; media_image_write writes one format chosen by the caller,
 * atomically (temporary file, fsync, rename). Errors name the file and the
 * problem: "shot.0001.dpx: dpx: truncated: 8192 bytes of image data, need
 * 8294400".
 */
#ifndef RS_MEDIA_FRAME_H
#define RS_MEDIA_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "magic.h"

#define MEDIA_MAX_CHANNELS 32
#define MEDIA_CHANNEL_NAME 64
/* Largest width or height any reader accepts. */
#define MEDIA_MAX_DIM 65536u
/* Default cap on one decoded frame's bytes (media_read_opts.max_bytes). */
#define MEDIA_DEFAULT_MAX_BYTES (2ull << 30)

typedef enum media_sample {
    MEDIA_SAMPLE_U8 = 0,
    MEDIA_SAMPLE_U16,
    MEDIA_SAMPLE_F16,
    MEDIA_SAMPLE_F32,
} media_sample;

typedef enum media_colour {
    MEDIA_COLOUR_UNKNOWN = 0,
    MEDIA_COLOUR_LINEAR,
    MEDIA_COLOUR_SRGB,
    MEDIA_COLOUR_REC709,
    MEDIA_COLOUR_PQ,
    MEDIA_COLOUR_CINEON, /* Cineon / DPX printing-density log */
} media_colour;

typedef struct media_meta {
    char *key;
    char *value;
} media_meta;

typedef struct media_frame {
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    media_sample sample;
    media_colour colour;
    uint32_t bit_depth; /* significant bits in the source (10 for 10-bit DPX held in u16) */
    char names[MEDIA_MAX_CHANNELS][MEDIA_CHANNEL_NAME];
    uint8_t *data; /* width * height * channels samples, interleaved */
    size_t nmeta;
    media_meta *meta;
} media_frame;

/* Bytes per sample: 1, 2, 2, 4. */
size_t media_sample_size(media_sample s);
const char *media_sample_name(media_sample s); /* "u8" "u16" "f16" "f32" */
const char *media_colour_name(media_colour c); /* "linear" "srgb" ... "unknown" */

/*
 * A zeroed frame. Channel names default to Y / Y,A / R,G,B / R,G,B,A and
 * "C<i>" beyond; bit_depth to the sample size in bits. RS_EINVAL for a zero
 * or over-MEDIA_MAX_DIM size or 0 / too many channels, RS_ETOOBIG if the
 * buffer would pass MEDIA_DEFAULT_MAX_BYTES.
 */
rs_err media_frame_create(uint32_t width, uint32_t height, uint32_t channels, media_sample s,
                          media_frame **out, rs_error *e);
void media_frame_destroy(media_frame *f);

size_t media_frame_row_bytes(const media_frame *f);
size_t media_frame_bytes(const media_frame *f);
/* Pointer to sample (x, y, channel c). */
void *media_frame_at(const media_frame *f, uint32_t x, uint32_t y, uint32_t c);

/* Sets (or replaces) metadata key; both strings are copied. */
rs_err media_frame_meta_set(media_frame *f, const char *key, const char *value, rs_error *e);
/* The value for key, or NULL. The pointer lives as long as the entry. */
const char *media_frame_meta_get(const media_frame *f, const char *key);
/* Copies every entry of src into dst (replacing equal keys). */
rs_err media_frame_meta_copy(media_frame *dst, const media_frame *src, rs_error *e);
/* Index of the channel called name, or -1. */
int media_frame_channel(const media_frame *f, const char *name);

/* Bit-exact equality of geometry, sample type, names and pixels. */
bool media_frame_equal(const media_frame *a, const media_frame *b);

/* IEEE half <-> float (round to nearest even; inf/NaN kept). */
float media_half_to_float(uint16_t h);
uint16_t media_float_to_half(float f);

/* Threads an EXR read uses when media_read_opts.threads is 0: OpenEXR's C
 * core decodes chunks independently, and two threads already take most of
 * the gain on a frame without swamping a worker that reads several. */
#define MEDIA_DEFAULT_THREADS 2

typedef struct media_read_opts {
    uint64_t max_bytes; /* cap on the decoded frame; 0 = MEDIA_DEFAULT_MAX_BYTES */
    uint32_t threads;   /* EXR chunk-decode threads; 0 = MEDIA_DEFAULT_THREADS, 1 = none */
} media_read_opts;

/* Reads path (at most 4 GiB) and decodes it by content. opts may be NULL. */
rs_err media_image_read(const char *path, const media_read_opts *opts, media_frame **out,
                        rs_error *e);

/* Decodes an image held in memory; name is only used in messages. */
rs_err media_image_decode(const char *name, const void *buf, size_t len,
                          const media_read_opts *opts, media_frame **out, rs_error *e);

typedef enum media_exr_compression {
    MEDIA_EXR_NONE = 0,
    MEDIA_EXR_RLE = 1,
    MEDIA_EXR_ZIPS = 2,
    MEDIA_EXR_ZIP = 3,
    MEDIA_EXR_PIZ = 4,
} media_exr_compression;

typedef struct media_write_opts {
    media_format format; /* PNG, EXR, DPX or TIFF */
    /* EXR */
    media_exr_compression exr_compression;
    uint32_t exr_tile; /* 0: scanline; else square tiles of this size */
    /* EXR chunk-compression threads; 0 = MEDIA_DEFAULT_THREADS, 1 = none.
     * The file's bytes do not depend on it: chunks are written in order. */
    uint32_t exr_threads;
    /* DPX */
    bool dpx_little_endian; /* default big-endian ("SDPX") */
    uint32_t dpx_bits;      /* 10 (packed, filled to 32 bits) or 16; 0 = from frame */
    /* TIFF */
    bool tiff_deflate; /* deflate compression (default none) */
} media_write_opts;

/*
 * Writes f to path atomically. PNG: u8/u16, 1-4 channels, metadata as text
 * chunks. TIFF: u8/u16/f32, 1-4 (or more, as extra samples) channels.
 * DPX: u16 RGB/RGBA/Y, 10-bit packed or 16-bit, colour -> transfer code,
 * "dpx:*" metadata to header text. EXR: f16/f32, any channels by name,
 * metadata as string attributes.
 */
rs_err media_image_write(const char *path, const media_frame *f, const media_write_opts *o,
                         rs_error *e);

#endif
