/*
 * project.c - GEMM, memory and collective times for `moebench project` (project.h).
 *
 * The per-tier network figures below complete model/hardware.c, whose datasheet table
 * has bandwidths but neither latencies nor the bandwidth a collective achieves. They
 * are kept here, keyed by hardware key, so the datasheet table stays datasheet-only.
 */
#include "project.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* NOTE: latencies are NCCL's own tuning model (src/graph/tuning.cc: baseLat 8.4 us for
 * Ring/Simple, hwLat Ring/Simple 3.4 us per NVLink hop and 14 us per network hop).
 * Efficiencies are microbenchmark figures: DeepSeek-V3 (arXiv 2412.19437, sec. 3.1)
 * achieves 160 of H800's 200 GB/s NVLink (0.80); DeepEP's README measures 43-58 GB/s
 * internode over 50 GB/s CX7 RDMA per GPU, the low end 0.86 taken. The same
 * efficiencies serve the other NVLink/InfiniBand systems (stated, not measured). */
static const struct proj_net nets[] = {
	{ "h100-sxm", 8, 0.80, 0.86, 3.4, 14.0, 8.4,
	  "DGX H100: 8 GPUs per NVSwitch node; efficiencies from DeepSeek-V3 sec. 3.1 (NVLink "
	  "160/200) and DeepEP (RDMA 43/50); latencies NCCL tuning.cc Ring/Simple" },
	{ "h800-sxm", 8, 0.80, 0.86, 3.4, 14.0, 8.4,
	  "DeepSeek-V3 sec. 3.1: 8 H800 per node, NVLink 160 of 200 GB/s achieved, IB 50 GB/s "
	  "per GPU; DeepEP RDMA 43/50; latencies NCCL tuning.cc Ring/Simple" },
	{ "h200", 8, 0.80, 0.86, 3.4, 14.0, 8.4,
	  "HGX H200: 8 GPUs per node; efficiencies and latencies as h100-sxm (assumed)" },
	{ "b200", 8, 0.80, 0.86, 3.4, 14.0, 8.4,
	  "DGX B200: 8 GPUs per node; efficiencies and latencies as h100-sxm (assumed)" },
	{ "a100-sxm", 8, 0.80, 0.86, 3.4, 14.0, 8.4,
	  "DGX A100: 8 GPUs per node; efficiencies and latencies as h100-sxm (assumed)" },
	{ "mi250x-gcd", 8, 0.80, 0.86, 3.4, 14.0, 8.4,
	  "Frontier node: 4 MI250X = 8 GCDs; Infinity Fabric bandwidth not in the table: "
	  "efficiencies and latencies as h100-sxm (assumed)" },
	{ "*", 8, 0.80, 0.86, 3.4, 14.0, 8.4,
	  "no per-tier figures for this hardware: 8 GPUs per node, NVLink-class efficiencies "
	  "and NCCL latencies assumed" },
};
#define N_NETS (sizeof(nets) / sizeof(nets[0]))

const struct proj_net *proj_net_find(const char *hardware_key)
{
	for (size_t i = 0; i + 1 < N_NETS; i++)
		if (hardware_key && strcasecmp(nets[i].key, hardware_key) == 0)
			return &nets[i];
	return &nets[N_NETS - 1];
}

double proj_gemm_efficiency(const struct proj_gemm_point *pts, size_t n_pts, int64_t m,
			    int64_t n, int64_t k, double fallback)
{
	double best = INFINITY, eff = fallback;

	if (m < 1 || n < 1 || k < 1)
		return fallback;
	for (size_t i = 0; i < n_pts; i++) {
		double d = fabs(log2((double)m / (double)pts[i].m)) +
			   fabs(log2((double)n / (double)pts[i].n)) +
			   fabs(log2((double)k / (double)pts[i].k));
		if (d < best) {
			best = d;
			eff = pts[i].efficiency;
		}
	}
	return eff;
}

double proj_memory_time(double bytes, double hbm_tbps, double mem_efficiency)
{
	if (!(hbm_tbps > 0) || !(mem_efficiency > 0) || !(bytes >= 0))
		return NAN;
	return bytes / (hbm_tbps * 1e12 * mem_efficiency);
}

double proj_gemm_time(int64_t m, int64_t n, int64_t k, double efficiency, double peak_tflops,
		      double in_bytes, double out_bytes, double hbm_tbps, double mem_efficiency)
{
	double dm = (double)m, dn = (double)n, dk = (double)k;

	if (!(efficiency > 0) || !(peak_tflops > 0))
		return NAN;
	double compute = 2.0 * dm * dn * dk / (efficiency * peak_tflops * 1e12);
	double traffic = proj_memory_time((dm * dk + dk * dn) * in_bytes + dm * dn * out_bytes,
					  hbm_tbps, mem_efficiency);
	if (isnan(traffic))
		return NAN;
	return compute > traffic ? compute : traffic;
}

const char *proj_collective_name(enum proj_collective c)
{
	static const char *const names[] = { "all-reduce", "reduce-scatter", "all-gather",
					     "all-to-all" };
	return (unsigned)c < 4 ? names[c] : "?";
}

double proj_collective_time(enum proj_collective c, int64_t n, double bytes,
			    const struct proj_tier *t)
{
	if (n <= 1)
		return 0.0;
	if (!t || !(t->gbps > 0) || !(t->efficiency > 0) || !(bytes >= 0))
		return NAN;
	double bw = t->gbps * 1e9 * t->efficiency, dn = (double)n;
	double steps = c == PROJ_ALL_REDUCE ? 2.0 * (dn - 1) : dn - 1;
	/* NOTE: an all-to-all sends to every peer at once: one latency round, not n-1. */
	double rounds = c == PROJ_ALL_TO_ALL ? 1.0 : steps;
	return (t->base_us + rounds * t->hop_us) * 1e-6 + steps / dn * bytes / bw;
}

double proj_nodes_per_token(int64_t k, int64_t nodes, int64_t max_nodes)
{
	int64_t n = max_nodes > 0 && max_nodes < nodes ? max_nodes : nodes;

	if (n <= 1 || k < 1)
		return 1.0;
	return (double)n * (1.0 - pow(1.0 - 1.0 / (double)n, (double)k));
}
