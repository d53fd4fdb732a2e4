/*
 * unet_ckpt.h: U-Net checkpoints as .safetensors (engine/safetensors.h):
 * every parameter under its unet_param_name as F32 with PyTorch's shape
 * (conv weights [out][in][k][k], vectors [c]), optionally the Adam moments
 * as "<name>.adam_m" / "<name>.adam_v", and the step count in the lineage
 * metadata, so save -> load -> continue trains exactly as if uninterrupted.
 */
#ifndef RS_ENGINE_UNET_CKPT_H
#define RS_ENGINE_UNET_CKPT_H

#include <stdbool.h>

#include "err.h"
#include "safetensors.h"
#include "unet.h"

/* lineage may be NULL (then only the step count is recorded); its steps
 * field is replaced by unet_steps(u). with_state adds the Adam moments. */
rs_err unet_save(unet *u, const char *path, const st_lineage *lineage, bool with_state,
                 rs_error *e);

/* Loads weights (and moments and step count when the file has them) into
 * u, whose configuration must match: a missing tensor or one of another
 * dtype or shape is refused with RS_EFORMAT naming the file and tensor,
 * and u is then left partly loaded. */
rs_err unet_load(unet *u, const char *path, rs_error *e);

#endif
