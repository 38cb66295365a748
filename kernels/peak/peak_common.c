/* peak_common.c - the parts of peak.h shared by the CPU and CUDA backends. */
#include "peak.h"

/* peak_dtype_name returns the name a dtype has in options and record names. */
const char *peak_dtype_name(enum peak_dtype dtype)
{
	switch (dtype) {
	case PEAK_FP64: return "fp64";
	case PEAK_FP32: return "fp32";
	case PEAK_BF16: return "bf16";
	case PEAK_FP8_E4M3: return "fp8_e4m3";
	}
	return "unknown";
}
