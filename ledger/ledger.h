/*
 * ledger.h: the compliance ledger (docs/COMPLIANCE.md).
 *
 * Three parts:
 *  - events: an append-only, hash-chained log per project in the store's
 *    SQLite database (table ledger_event). Each event's payload is canonical
 *    JSON (keys sorted, no spaces); its hash is BLAKE2b-256 over a domain
 *    tag, the project, the seq, the previous event's hash and the payload;
 *    (files and masks are named by SHA-256, see ledger_hash_file);
 *    the hash is signed with the project's Ed25519 key (libsodium). The key
 *    lives in <data_dir>/ledger/keys/<project>.key, mode 0600, and is never
 *    logged. An export (JSON lines, with a signed end record) is verified
 *    offline with the public key alone.
 *  - masks: what an alteration actually changed, per frame, as a lossless
 *    1-bit run-length mask stored by its content hash under
 *    <data_dir>/ledger/masks/; audio alterations record sample ranges.
 *  - audit: recomputes output - source for every recorded frame and fails on
 *    any changed pixel outside the recorded mask, any file whose hash is not
 *    the recorded one, any mask whose content is not its hash, any broken
 *    link or signature.
 * The consent registry (performers, consents, revocation, the likeness gate)
 * is in consent.c, declared here too.
 *
 * Threading: a ledger handle is used by one thread (it borrows the store's
 * connection). Mask and audit functions touch no database and are
 * thread-safe on distinct objects. Ownership: cJSON trees and buffers
 * returned through out-pointers belong to the caller.
 */
#ifndef RS_LEDGER_H
#define RS_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "frame.h"

struct sqlite3;

#define LEDGER_HEX 65 /* 64 hex digits + NUL: hashes and public keys */

/* ---- keys and hashes ---------------------------------------------------- */

typedef struct ledger_key {
    unsigned char pk[32];
    unsigned char sk[64];
} ledger_key;

/* Loads the project's signing key from <data_dir>/ledger/keys/<project>.key,
 * creating it (0600, O_EXCL) when create is true and it does not exist. A
 * key file that group or others can read is refused (RS_EPERM). */
rs_err ledger_key_load(const char *data_dir, const char *project, bool create, ledger_key *out,
                       rs_error *e);
/* Overwrites the secret. */
void ledger_key_wipe(ledger_key *k);
void ledger_hex(const unsigned char *bytes, size_t n, char *out);
/* 64 hex digits (surrounding white space allowed) -> 32 bytes. */
rs_err ledger_pubkey_parse(const char *text, unsigned char pk[32], rs_error *e);
/* Reads a public key from a file holding its hex, or takes text as hex. */
rs_err ledger_pubkey_load(const char *file_or_hex, unsigned char pk[32], rs_error *e);

/* SHA-256 hex of bytes / of a file's bytes (streamed): what `sha256sum`
 * prints, so recorded file and mask hashes can be checked with common tools. */
void ledger_hash_bytes(const void *p, size_t n, char out[LEDGER_HEX]);
rs_err ledger_hash_file(const char *path, char out[LEDGER_HEX], rs_error *e);

/* Canonical JSON text of v: object keys sorted bytewise, recursively, no
 * white space. malloc'd; NULL when out of memory. */
char *ledger_json_canonical(const cJSON *v);

/* ---- events ------------------------------------------------------------- */

typedef struct ledger ledger;

/* db is borrowed (the store's connection, store_sqlite()); data_dir holds
 * keys and masks. */
rs_err ledger_open(struct sqlite3 *db, const char *data_dir, ledger **out, rs_error *e);
void ledger_close(ledger *l);
const char *ledger_data_dir(const ledger *l);

/*
 * Appends an event of type (ingest, model_trained, alteration,
 * consent_granted, consent_revoked, export, audit) to the project's chain.
 * fields (borrowed, may be NULL) is an object merged into the payload
 * beside "type" and "t" (now_ms). The project is created if new. Atomic
 * (own SAVEPOINT). *seq / hash may be NULL.
 */
rs_err ledger_append(ledger *l, const char *project, const char *type, const cJSON *fields,
                     int64_t now_ms, int64_t *seq, char hash[LEDGER_HEX], rs_error *e);

/* The project's events, oldest first: [{"seq","prev","payload","hash","sig"}]. */
rs_err ledger_events(ledger *l, const char *project, cJSON **out_array, rs_error *e);

/*
 * The project's chain as JSON lines: a header {"rushes_ledger":1,
 * "project","pubkey"}, one line per event, and a signed end record
 * {"end":{"count","head"},"sig"}. With record=true an "export" event is
 * appended first (so the export records itself). *text is malloc'd.
 */
rs_err ledger_export(ledger *l, const char *project, bool record, int64_t now_ms, char **text,
                     size_t *len, rs_error *e);

/* What ledger_verify found (filled as far as it got). */
typedef struct ledger_verify_info {
    char project[129];
    int64_t events;
    char head[LEDGER_HEX];
    bool pubkey_differs; /* the header names a key other than the one given */
} ledger_verify_info;

/*
 * Verifies an export offline: header, every line's JSON, seq order (1, 2,
 * ...), each prev link, each hash, each signature with pk, and the signed
 * end record (a truncated export has none or a wrong count). The first
 * failure is returned as RS_EFORMAT with a message naming the line and seq
 * and what broke. info may be NULL. Parsed events, when events is not
 * NULL, are returned as an array of payload objects (caller deletes).
 */
rs_err ledger_verify(const char *text, size_t len, const unsigned char pk[32],
                     ledger_verify_info *info, cJSON **events, rs_error *e);

/* ---- masks -------------------------------------------------------------- */

/* A per-pixel alteration mask: bits[y * width + x] is 1 where changed. */
typedef struct ledger_mask {
    uint32_t width;
    uint32_t height;
    uint8_t *bits;
} ledger_mask;

typedef struct ledger_bbox {
    uint32_t x, y, w, h; /* all 0 when nothing changed */
} ledger_bbox;

rs_err ledger_mask_create(uint32_t width, uint32_t height, ledger_mask **out, rs_error *e);
void ledger_mask_destroy(ledger_mask *m);

/* Mask of pixels where any sample differs. The frames must agree in size,
 * channels and sample type (RS_EINVAL naming what differs). */
rs_err ledger_mask_diff(const media_frame *src, const media_frame *out, ledger_mask **mask,
                        uint64_t *changed, ledger_bbox *bbox, rs_error *e);

/* Lossless encoding: "RSMASK1\n", u32 width, u32 height (LE), then LEB128
 * run lengths alternating unchanged/changed, starting with unchanged. One
 * mask has exactly one encoding, so its hash names it. */
rs_err ledger_mask_encode(const ledger_mask *m, uint8_t **buf, size_t *len, rs_error *e);
rs_err ledger_mask_decode(const uint8_t *buf, size_t len, ledger_mask **out, rs_error *e);

/* Stores the encoding as <dir>/<hash>.rsmask (idempotent, atomic). */
rs_err ledger_mask_store(const char *dir, const ledger_mask *m, char hash[LEDGER_HEX], rs_error *e);
/* Loads <dir>/<hash>.rsmask and checks its content hashes to hash. */
rs_err ledger_mask_load(const char *dir, const char *hash, ledger_mask **out, rs_error *e);

/* Pixels that differ between src and out where the mask is 0. *first_x,
 * *first_y: the first such pixel (row-major) when the count is > 0. */
rs_err ledger_mask_outside(const ledger_mask *m, const media_frame *src, const media_frame *out,
                           uint64_t *count, uint32_t *first_x, uint32_t *first_y, rs_error *e);

/* Audio: the changed sample ranges between two interleaved float buffers
 * of nframes x channels, as [[first, last_exclusive], ...] in sample
 * frames, adjacent changes merged. */
rs_err ledger_audio_ranges(const float *src, const float *out, size_t nframes, uint32_t channels,
                           cJSON **ranges, rs_error *e);

/* ---- alterations -------------------------------------------------------- */

/* One altered frame, as a task that alters footage records it. */
typedef struct ledger_alteration {
    const char *project;
    int64_t job_id;
    const char *kind;        /* job kind: "removal", "matte", ... */
    const char *model;       /* model id or checkpoint hash; "" for none */
    int64_t frame;           /* frame number in the clip */
    const char *source_path; /* file the frame came from */
    const char *output_path; /* file written */
    const cJSON *consents;   /* array of consent ids used (likeness work); NULL = none */
    /* Hash of the job's "alteration_authorised" event (ledger_job_authorise)
     * the output's labels must name; NULL = none (recorded unlabelled, as
     * before labels existed). When set, the output's rushes:ledger_event
     * label must equal it, or recording fails naming the file. */
    const char *authorised_by;
} ledger_alteration;

typedef struct ledger_alteration_result {
    int64_t seq;
    char event_hash[LEDGER_HEX];
    char mask_hash[LEDGER_HEX];
    uint64_t changed;
    ledger_bbox bbox;
} ledger_alteration_result;

/*
 * The call an altering task kind makes once per output frame: hashes both
 * files, decodes them, computes the mask from their difference, stores it
 * under <data_dir>/ledger/masks and appends an "alteration" event with job,
 * kind, model, frame, paths, hashes, mask hash, changed-pixel count, bbox
 * and consent. r may be NULL.
 */
rs_err ledger_record_alteration(ledger *l, const ledger_alteration *a, int64_t now_ms,
                                ledger_alteration_result *r, rs_error *e);

/*
 * The same in two steps, for a caller that must not do file work on the
 * thread that owns the database (rushesd's loop). prepare touches no
 * database and is safe on any thread (distinct preps): it reads and hashes
 * both files, decodes them, checks the output's labels against
 * a->authorised_by, diffs them and stores the mask under
 * <data_dir>/ledger/masks (by hash, so preparing twice is harmless). append
 * writes the event from the prep (a->consents and a->authorised_by as
 * given); only append changes the chain. A failed prepare leaves *p
 * cleared; clear a successful one with ledger_alteration_prep_clear.
 */
typedef struct ledger_alteration_prep {
    bool audio;
    char source_hash[LEDGER_HEX];
    char output_hash[LEDGER_HEX];
    uint64_t changed; /* pixels / sample frames */
    /* frames */
    char mask_hash[LEDGER_HEX];
    ledger_bbox bbox;
    uint32_t width, height;
    /* audio */
    cJSON *ranges; /* [[first, last_exclusive], ...], owned */
    size_t nranges;
    uint32_t rate, channels;
    uint64_t frames;
} ledger_alteration_prep;

rs_err ledger_alteration_prepare(const char *data_dir, const ledger_alteration *a,
                                 ledger_alteration_prep *p, rs_error *e);
/* Audio files (see ledger_record_audio_alteration); no mask is stored. */
rs_err ledger_audio_alteration_prepare(const ledger_alteration *a, ledger_alteration_prep *p,
                                       rs_error *e);
/* Appends the "alteration" (or "audio_alteration") event; seq, hash may be
 * NULL. */
rs_err ledger_alteration_append(ledger *l, const ledger_alteration *a,
                                const ledger_alteration_prep *p, int64_t now_ms, int64_t *seq,
                                char hash[LEDGER_HEX], rs_error *e);
void ledger_alteration_prep_clear(ledger_alteration_prep *p);

/* A finished job, as rushesd finalises it. */
typedef struct ledger_job_spec {
    const char *project;
    int64_t job_id;
    const char *kind;
    unsigned likeness;   /* the kind's LEDGER_LIKENESS_* bits for these params */
    const cJSON *params; /* job params (performers) */
    const cJSON *result; /* job result from the kind's finalize */
    const cJSON *clips;  /* clips it registers (ingest), may be NULL */
    int64_t since_ms;    /* the job's submit time (bounds the authorisation lookup); 0 = all */
} ledger_job_spec;

/*
 * Records what a finished job did: an "ingest" event for kind "ingest"
 * (root, files, bytes, mhl and its SHA-256, clips' name/path/hash); for a
 * result carrying "alterations": [{"frame","source","output"[,"model"]}],
 * one alteration per entry with the consents the likeness gate gives now
 * (RS_EPERM if one no longer holds). Other jobs: nothing.
 */
rs_err ledger_record_job(ledger *l, const ledger_job_spec *j, int64_t now_ms, rs_error *e);

/*
 * ledger_record_job in three steps, so the slow middle one (every frame
 * read, decoded and diffed) can run off the database's thread:
 *  1. ledger_job_authorisation (database): the job's authorising event.
 *  2. ledger_job_prepare (any thread, no database): for an ingest job the
 *     MHL's SHA-256; for "alterations" each entry checked and prepared
 *     (ledger_alteration_prepare) with authorised_by (NULL = none). stop
 *     (may be NULL) is polled between frames: when it returns true the
 *     work is abandoned with RS_ECANCELED (nothing was written but masks,
 *     which are stored by hash). *out is the caller's
 *     (ledger_job_prep_destroy); it is set only on RS_OK.
 *  3. ledger_job_append (database): the likeness gate as of now_ms
 *     (RS_EPERM if a consent no longer holds), then the events, in order.
 * j->result and j->clips are read in step 2 only.
 */
typedef struct ledger_job_prep ledger_job_prep;

rs_err ledger_job_prepare(const char *data_dir, const ledger_job_spec *j, const char *authorised_by,
                          bool (*stop)(void *ud), void *stop_ud, ledger_job_prep **out,
                          rs_error *e);
rs_err ledger_job_append(ledger *l, const ledger_job_spec *j, const ledger_job_prep *p,
                         int64_t now_ms, rs_error *e);
void ledger_job_prep_destroy(ledger_job_prep *p);

/*
 * Output labels and the event they name. An output's labels are written
 * while it is being made, before the per-frame alteration event that records
 * its hash can exist, so they name the job's authorising event instead:
 * rushesd appends one "alteration_authorised" event per job when it first
 * leases a task of a kind that alters footage (after the consent gate
 * passed there), with job, kind, model, the SHA-256 of the job's canonical
 * params, performers and consents used, and hands its hash to the task. Each
 * alteration event recorded at finalize carries "authorised_by" = that hash,
 * and `rushes audit` checks that every such output is labelled with it and
 * that it names an authorisation of the same job in the chain.
 */
typedef struct ledger_authorisation {
    const char *project;
    int64_t job_id;
    const char *kind;
    const char *model;     /* model id / checkpoint as the job names it; "" for none */
    const cJSON *params;   /* job params (hashed; performers copied) */
    const cJSON *consents; /* consent ids the gate used; NULL = none */
    int64_t since_ms;      /* the job's submit time: older events are not searched; 0 = all */
} ledger_authorisation;

/* The job's authorising event: the existing one (same project and job) or a
 * newly appended one. *created (may be NULL) says which. Idempotent, so a
 * task leased again gets the same hash. */
rs_err ledger_job_authorise(ledger *l, const ledger_authorisation *a, int64_t now_ms,
                            char hash[LEDGER_HEX], bool *created, rs_error *e);
/* Looks the job's authorising event up; *found false (RS_OK) when it has
 * none (a job leased before labels existed, or a kind that alters nothing). */
rs_err ledger_job_authorisation(ledger *l, const char *project, int64_t job_id, int64_t since_ms,
                                char hash[LEDGER_HEX], bool *found, rs_error *e);

/* One altered audio file (WAV/BWF/AIFF): source and output must agree in
 * rate, channels and length. Records an "audio_alteration" event with the
 * changed sample ranges ([[first, last_exclusive], ...] in sample frames),
 * the changed-frame count and both files' SHA-256; a->frame is ignored. */
typedef struct ledger_audio_result {
    int64_t seq;
    char event_hash[LEDGER_HEX];
    uint64_t changed; /* sample frames with any channel changed */
    size_t nranges;
} ledger_audio_result;

rs_err ledger_record_audio_alteration(ledger *l, const ledger_alteration *a, int64_t now_ms,
                                      ledger_audio_result *r, rs_error *e);

/* <data_dir>/ledger/masks into out. */
void ledger_masks_dir(const char *data_dir, char *out, size_t outlen);

/* ---- audit -------------------------------------------------------------- */

/* Which alterations an audit covers: all when every field is empty/0. */
typedef struct ledger_audit_sel {
    int64_t job_id;          /* 0 = any */
    const char *source_path; /* NULL = any ("CLIP") */
    const char *output_path; /* NULL = any ("OUTPUT") */
} ledger_audit_sel;

/* Fetches a mask's encoded bytes by hash (e.g. from the daemon over HTTP);
 * the audit checks the bytes against the hash itself. */
typedef rs_err (*ledger_mask_fetch_fn)(void *ud, const char *hash, uint8_t **buf, size_t *len,
                                       rs_error *e);

typedef struct ledger_audit_opts {
    const char *masks_dir;      /* read masks from here, or ... */
    ledger_mask_fetch_fn fetch; /* ... through this (called from one thread at a time) */
    void *fetch_ud;
    int threads; /* 0 = 2 */
} ledger_audit_opts;

/*
 * Audits an export: ledger_verify with pk, then for every selected
 * alteration event: source and output file hashes, the mask's hash, and
 * every changed pixel inside the mask; for every audio_alteration event:
 * both hashes and every changed sample inside the recorded ranges (report
 * fields "audio_files", "changed_samples", "outside_samples"; an audio
 * failure's "frame" is the first stray sample frame). Returns RS_OK when the audit ran;
 * the report says whether it passed: {"ok", "chain":{"ok","events","head",
 * "error"}, "frames", "changed_pixels", "outside_pixels", "coverage",
 * "failures":[{"file","frame","what","count"}]}. An export that fails to
 * verify still yields a report (ok false, no frames audited).
 */
rs_err ledger_audit(const char *export_text, size_t len, const unsigned char pk[32],
                    const ledger_audit_sel *sel, const ledger_audit_opts *o, cJSON **report,
                    rs_error *e);

/* Writes the labels of an altered output into a frame's metadata (PNG text
 * chunks, EXR string attributes when written by media_image_write):
 * rushes:altered, rushes:ledger_event, rushes:model, rushes:project. */
rs_err ledger_label_frame(media_frame *f, const char *project, const char *event_hash,
                          const char *model, rs_error *e);
/* The same labels with rushes:altered "no": an output the job wrote but
 * left identical to its source (a frame with no hole). */
rs_err ledger_label_frame_unaltered(media_frame *f, const char *project, const char *event_hash,
                                    const char *model, rs_error *e);

/* The same labels as QuickTime metadata (mdta items, shown by `ffprobe
 * -show_format`) of a video deliverable, set on a writer before its first
 * frame (media_video_writer_set_metadata); altered is "yes" or "no". */
struct media_video_writer;
rs_err ledger_label_video(struct media_video_writer *w, bool altered, const char *project,
                          const char *event_hash, const char *model, rs_error *e);

/* Label keys, as written into outputs and read back by the audit. */
#define LEDGER_LABEL_ALTERED "rushes:altered"
#define LEDGER_LABEL_EVENT "rushes:ledger_event"
#define LEDGER_LABEL_MODEL "rushes:model"
#define LEDGER_LABEL_PROJECT "rushes:project"

/* Checks an output's labels against the authorising event hash: RS_OK, or
 * RS_EFORMAT saying what is missing or different (no file name). */
rs_err ledger_label_check(const media_frame *f, const char *authorised_by, rs_error *e);

/* The same labels for a BWF (WAV) file written by media_audio_write: the
 * bext description "rushes: altered; ledger event H; model M; project P"
 * (ffprobe shows it as "comment"), originator "Rushes", and an iXML
 * <RUSHES> block with ALTERED, LEDGER_EVENT, MODEL and PROJECT. */
struct media_audio;
rs_err ledger_label_audio(struct media_audio *a, const char *project, const char *event_hash,
                          const char *model, rs_error *e);

/* ---- consent ------------------------------------------------------------ */

/* Likeness kinds a job may alter (bit set); same values as tasks/task.h. */
#define LEDGER_LIKENESS_FACE 1u
#define LEDGER_LIKENESS_EYES 2u
#define LEDGER_LIKENESS_VOICE 4u
#define LEDGER_LIKENESS_BODY 8u

/* "face" -> LEDGER_LIKENESS_FACE ...; 0 for an unknown name. */
unsigned ledger_likeness_parse(const char *name);

typedef struct ledger_consent_spec {
    const char *performer;
    const char *project;
    unsigned kinds;            /* LEDGER_LIKENESS_* bits, at least one */
    const char *use;           /* e.g. "feature film, all media"; may be "" */
    const char *territory;     /* e.g. "worldwide"; may be "" */
    int64_t expires_at;        /* ms; 0 = never */
    const char *document_hash; /* hash of the signed consent document */
} ledger_consent_spec;

/* Registers the performer if new, stores the consent and appends a
 * consent_granted event. */
rs_err ledger_consent_add(ledger *l, const ledger_consent_spec *c, int64_t now_ms, int64_t *id,
                          rs_error *e);
/* Revokes (RS_ENOENT if none, RS_ESTATE if already revoked) and appends a
 * consent_revoked event. */
rs_err ledger_consent_revoke(ledger *l, int64_t id, const char *reason, int64_t now_ms,
                             rs_error *e);
/* Consents, newest first, with "state": valid / expired / revoked. NULL
 * filters = any. */
rs_err ledger_consent_list(ledger *l, const char *project, const char *performer, int64_t now_ms,
                           cJSON **out_array, rs_error *e);
rs_err ledger_consent_get(ledger *l, int64_t id, int64_t now_ms, cJSON **out, rs_error *e);

/*
 * The likeness gate: every performer named in params.performers (array of
 * strings) needs a consent in project that is not revoked, not expired and
 * covers every kind in likeness. likeness 0 (the kind alters no likeness)
 * passes. A likeness job naming no performers is refused too: it must say
 * whose likeness it alters. RS_EPERM names the performer and why; RS_EINVAL
 * for a malformed performers field. *consents (may be NULL) receives the
 * consent ids used, as a JSON array.
 */
rs_err ledger_consent_gate(ledger *l, const char *project, unsigned likeness, const cJSON *params,
                           int64_t now_ms, cJSON **consents, rs_error *e);

#endif
