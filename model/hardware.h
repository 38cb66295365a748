/*
 * hardware.h - datasheet figures of accelerators, per GPU (per GCD for MI250X).
 *
 * Peaks are dense (no structured sparsity), in TFLOP/s; bandwidths in GB/s per
 * direction, HBM in TB/s. A figure the source does not give is NaN and prints "n/a":
 * MFU against an unknown peak is "n/a", never computed from a guess.
 *
 * A detected device matches an entry when its reported name equals one of the entry's
 * `names` (case-insensitive, surrounding blanks ignored). Names are exact on purpose:
 * "NVIDIA H100 PCIe" and "NVIDIA H200 NVL" have other peaks and must not match the SXM
 * entries. Users add or override entries with a JSON file (hardware_load_json).
 */
#ifndef MB_MODEL_HARDWARE_H
#define MB_MODEL_HARDWARE_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define HARDWARE_MAX_NAMES 4

struct hardware_spec {
	char key[32];                           /* "h100-sxm" */
	char label[64];                         /* "NVIDIA H100 SXM5 80GB" */
	char names[HARDWARE_MAX_NAMES][64];     /* device names as the runtime reports them */
	double peak_bf16_tflops;
	double peak_fp8_tflops;
	double peak_fp32_tflops;                /* non-tensor (vector) FP32 */
	double hbm_gb;
	double hbm_tbps;
	double scaleup_gbps;                    /* NVLink / Infinity Fabric, per direction */
	double scaleout_gbps;                   /* network per GPU, per direction */
	char source[512];
};

/* hardware_count / hardware_at walk the table (built-in entries, then loaded ones). */
size_t hardware_count(void);
const struct hardware_spec *hardware_at(size_t i);
/* hardware_find_key returns the entry with this key, or NULL. */
const struct hardware_spec *hardware_find_key(const char *key);
/* hardware_match returns the entry whose names include device_name, or NULL. Loaded
 * entries are searched first so a user's file overrides a built-in one. */
const struct hardware_spec *hardware_match(const char *device_name);

/* hardware_load_json adds the entries of a JSON file: an array of objects (or one
 * object) with "key", "names" (array of strings) and "source" (required) and any of
 * label, peak_bf16_tflops, peak_fp8_tflops, peak_fp32_tflops, hbm_gb, hbm_tbps,
 * scaleup_gbps, scaleout_gbps (numbers, or null for unknown). Unknown keys and wrong
 * types are rejected with the file, entry and field named in why. Returns MB_OK,
 * MB_ERR_IO, MB_ERR_PARSE or MB_ERR_NOMEM. */
int hardware_load_json(const char *path, char *why, size_t why_len);
/* hardware_add appends n entries to the table (copied). Returns MB_OK or MB_ERR_NOMEM. */
int hardware_add(const struct hardware_spec *specs, size_t n);
/* hardware_reset_loaded drops the loaded entries (for tests). */
void hardware_reset_loaded(void);

/* hardware_to_json returns a new object with the spec's fields (NaN as null). */
cJSON *hardware_to_json(const struct hardware_spec *hw);

#endif
