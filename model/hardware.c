/*
 * hardware.c - the built-in datasheet table and user-supplied hardware files
 * (see hardware.h). Figures come from ../shared/REFERENCES.md and the vendors'
 * datasheets named in each entry's source string.
 */
#define _GNU_SOURCE
#include "hardware.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "status.h"

#define NA NAN

static const struct hardware_spec builtin[] = {
	{ "h100-sxm", "NVIDIA H100 SXM5 80GB", { "NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB" },
	  989, 1979, 67, 80, 3.35, 450, 50,
	  "NVIDIA H100 Tensor Core GPU datasheet (SXM5: dense BF16 989, FP8 1979, FP32 67 TFLOPS; "
	  "80 GB HBM3 at 3.35 TB/s; NVLink 4 900 GB/s = 450 per direction); scale-out: DGX H100, "
	  "one 400 Gb/s ConnectX-7 port per GPU" },
	{ "h800-sxm", "NVIDIA H800 SXM5 80GB", { "NVIDIA H800", "NVIDIA H800 80GB HBM3" },
	  989, 1979, 67, 80, 3.35, 200, 50,
	  "NVIDIA H800 SXM5 datasheet (compute as H100 SXM5; NVLink 400 GB/s bidirectional); "
	  "DeepSeek-V3 report arXiv 2412.19437 sec. 3.1: NVLink 160 GB/s achieved, IB 50 GB/s per GPU" },
	{ "h200", "NVIDIA H200 SXM 141GB", { "NVIDIA H200" },
	  989, 1979, 67, 141, 4.8, 450, 50,
	  "NVIDIA H200 Tensor Core GPU datasheet (SXM: dense BF16 989, FP8 1979, FP32 67 TFLOPS; "
	  "141 GB HBM3e at 4.8 TB/s; NVLink 900 GB/s); scale-out: one 400 Gb/s port per GPU (HGX H200)" },
	{ "b200", "NVIDIA B200 180GB", { "NVIDIA B200" },
	  2250, 4500, NA, 180, 8.0, 900, 50,
	  "NVIDIA DGX B200 datasheet (per GPU dense BF16 2.25, FP8 4.5 PFLOPS; 180 GB HBM3e at "
	  "8 TB/s; NVLink 5 1.8 TB/s = 900 per direction; one 400 Gb/s ConnectX-7 port per GPU)" },
	{ "a100-sxm", "NVIDIA A100 SXM4 80GB", { "NVIDIA A100-SXM4-80GB" },
	  312, NA, 19.5, 80, 2.0, 300, 25,
	  "NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB: dense BF16 312, FP32 19.5 TFLOPS, no "
	  "FP8; 2.0 TB/s HBM2e; NVLink 3 600 GB/s); scale-out: DGX A100, one 200 Gb/s port per GPU" },
	{ "mi250x-gcd", "AMD Instinct MI250X (one GCD)", { "AMD Instinct MI250X" },
	  191.5, NA, 23.95, 64, 1.6384, NA, 12.5,
	  "AMD Instinct MI250X datasheet, halved per GCD (383 BF16, 47.9 FP32 vector TFLOPS, "
	  "128 GB at 3.2768 TB/s per module); Dash et al. arXiv 2312.12705 (191.5 TFLOPS per GCD); "
	  "Frontier node: 4 x 200 Gb/s Slingshot NICs for 8 GCDs" },
	{ "mi300x", "AMD Instinct MI300X", { "AMD Instinct MI300X" },
	  1307.4, 2614.9, 163.4, 192, 5.3, NA, NA,
	  "AMD Instinct MI300X datasheet (dense BF16 1307.4, FP8 2614.9, FP32 vector 163.4 TFLOPS; "
	  "192 GB HBM3 at 5.3 TB/s)" },
};
#define N_BUILTIN (sizeof(builtin) / sizeof(builtin[0]))

static struct hardware_spec *loaded;
static size_t n_loaded;

size_t hardware_count(void)
{
	return N_BUILTIN + n_loaded;
}

const struct hardware_spec *hardware_at(size_t i)
{
	if (i < N_BUILTIN)
		return &builtin[i];
	i -= N_BUILTIN;
	return i < n_loaded ? &loaded[i] : NULL;
}

const struct hardware_spec *hardware_find_key(const char *key)
{
	/* Loaded entries first: a user's file overrides a built-in key. */
	for (size_t i = n_loaded; i-- > 0;)
		if (strcasecmp(loaded[i].key, key) == 0)
			return &loaded[i];
	for (size_t i = 0; i < N_BUILTIN; i++)
		if (strcasecmp(builtin[i].key, key) == 0)
			return &builtin[i];
	return NULL;
}

/* same_name compares two device names ignoring case and surrounding blanks. */
static bool same_name(const char *a, const char *b)
{
	while (isspace((unsigned char)*a))
		a++;
	while (isspace((unsigned char)*b))
		b++;
	size_t la = strlen(a), lb = strlen(b);
	while (la && isspace((unsigned char)a[la - 1]))
		la--;
	while (lb && isspace((unsigned char)b[lb - 1]))
		lb--;
	return la == lb && la > 0 && strncasecmp(a, b, la) == 0;
}

static bool spec_matches(const struct hardware_spec *hw, const char *name)
{
	for (int j = 0; j < HARDWARE_MAX_NAMES; j++)
		if (hw->names[j][0] && same_name(hw->names[j], name))
			return true;
	return false;
}

const struct hardware_spec *hardware_match(const char *device_name)
{
	for (size_t i = n_loaded; i-- > 0;)
		if (spec_matches(&loaded[i], device_name))
			return &loaded[i];
	for (size_t i = 0; i < N_BUILTIN; i++)
		if (spec_matches(&builtin[i], device_name))
			return &builtin[i];
	return NULL;
}

int hardware_add(const struct hardware_spec *specs, size_t n)
{
	struct hardware_spec *grown = realloc(loaded, (n_loaded + n) * sizeof(*loaded));
	if (!grown)
		return MB_ERR_NOMEM;
	loaded = grown;
	memcpy(loaded + n_loaded, specs, n * sizeof(*specs));
	n_loaded += n;
	return MB_OK;
}

void hardware_reset_loaded(void)
{
	free(loaded);
	loaded = NULL;
	n_loaded = 0;
}

static void add_num(cJSON *o, const char *k, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

cJSON *hardware_to_json(const struct hardware_spec *hw)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "key", hw->key);
	cJSON_AddStringToObject(o, "label", hw->label);
	add_num(o, "peak_bf16_tflops", hw->peak_bf16_tflops);
	add_num(o, "peak_fp8_tflops", hw->peak_fp8_tflops);
	add_num(o, "peak_fp32_tflops", hw->peak_fp32_tflops);
	add_num(o, "hbm_gb", hw->hbm_gb);
	add_num(o, "hbm_tbps", hw->hbm_tbps);
	add_num(o, "scaleup_gbps", hw->scaleup_gbps);
	add_num(o, "scaleout_gbps", hw->scaleout_gbps);
	cJSON_AddStringToObject(o, "source", hw->source);
	return o;
}
