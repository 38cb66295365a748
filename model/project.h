/*
 * project.h - the arithmetic of `moebench project`: how long one GEMM, one memory-bound
 * pass and one collective take on a device of the hardware table, given efficiencies
 * measured by moebench's own microbenchmarks. Pure functions of numbers (no files, no
 * time): benchmarks/project/ loads the measurements, builds a training step from these
 * pieces and runs the pipeline simulator on them.
 *
 * Conventions
 *   - Times in seconds, bytes in bytes, rates as the hardware table gives them
 *     (TFLOP/s, GB/s = 1e9 B/s per direction, TB/s).
 *   - A GEMM C[M,N] = A[M,K] B[K,N] is 2*M*N*K FLOPs and moves (M*K + K*N) input
 *     elements and M*N output elements once (the roofline's minimum traffic).
 *   - Collectives are alpha-beta models over n ranks, the message `bytes` being the
 *     full buffer of one rank (nccl-tests' size): ring all-reduce 2(n-1) steps of
 *     bytes/n, ring reduce-scatter and all-gather (n-1) steps of bytes/n, all-to-all
 *     (n-1)/n of the buffer leaving each rank over its link (a direct exchange: all
 *     peers at once, one latency). The latency terms are NCCL's tuning model (base + per
 *     hop), the bandwidth a per-tier bus bandwidth times an efficiency.
 */
#ifndef MB_MODEL_PROJECT_H
#define MB_MODEL_PROJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- GEMM efficiency from measured shapes ---- */

/* One measured GEMM: its shape and the fraction of the measuring device's datasheet
 * peak it reached. */
struct proj_gemm_point {
	int64_t m, n, k;
	double efficiency;
};

/* proj_gemm_efficiency returns the efficiency of the measured point nearest to
 * (m, n, k) in log space (distance = |log2 m/m'| + |log2 n/n'| + |log2 k/k'|; the
 * first of equally near points wins), or `fallback` when there are no points. */
double proj_gemm_efficiency(const struct proj_gemm_point *pts, size_t n_pts, int64_t m,
			    int64_t n, int64_t k, double fallback);

/* proj_gemm_time is the roofline-bounded time of one GEMM: the larger of
 * 2*M*N*K / (efficiency * peak_tflops * 1e12) and the minimum traffic
 * ((M*K + K*N) * in_bytes + M*N * out_bytes) / (hbm_tbps * 1e12 * mem_efficiency).
 * NaN when a rate or efficiency is not positive. */
double proj_gemm_time(int64_t m, int64_t n, int64_t k, double efficiency, double peak_tflops,
		      double in_bytes, double out_bytes, double hbm_tbps, double mem_efficiency);

/* proj_memory_time: bytes / (hbm_tbps * 1e12 * mem_efficiency) (element-wise work). */
double proj_memory_time(double bytes, double hbm_tbps, double mem_efficiency);

/* ---- networks ---- */

/* One tier of the network as seen by one GPU. */
struct proj_tier {
	double gbps;        /* per direction, per GPU (hardware table) */
	double efficiency;  /* achieved bus bandwidth / gbps */
	double hop_us;      /* latency per ring step */
	double base_us;     /* latency per collective call */
};

/* Per-tier figures of a hardware key that the datasheet table lacks, with sources. */
struct proj_net {
	const char *key;      /* hardware key ("h800-sxm"), "*" for the fallback */
	int gpus_per_node;    /* scale-up domain */
	double nvlink_eff, ib_eff;
	double nvlink_hop_us, ib_hop_us, base_us;
	const char *source;
};

/* proj_net_find returns the entry of a hardware key, or the fallback entry (key "*",
 * whose source says it is a generic assumption). Never NULL. */
const struct proj_net *proj_net_find(const char *hardware_key);

enum proj_collective { PROJ_ALL_REDUCE, PROJ_REDUCE_SCATTER, PROJ_ALL_GATHER, PROJ_ALL_TO_ALL };

/* proj_collective_time is the alpha-beta time of a ring collective (or a direct
 * all-to-all) over n ranks of one tier, bytes per rank as above:
 *   all-reduce      base + 2(n-1) hop + 2(n-1)/n bytes / bw
 *   reduce-scatter  base +  (n-1) hop +  (n-1)/n bytes / bw    (and all-gather)
 *   all-to-all      base +        hop +  (n-1)/n bytes / bw  (peers in parallel)
 * with bw = gbps * 1e9 * efficiency. 0 when n == 1; NaN for a bad tier. */
double proj_collective_time(enum proj_collective c, int64_t n, double bytes,
			    const struct proj_tier *t);

/* proj_collective_name: "all-reduce", "reduce-scatter", "all-gather", "all-to-all". */
const char *proj_collective_name(enum proj_collective c);

/* ---- expert parallelism ---- */

/* proj_nodes_per_token is the expected number of distinct nodes a token's k routed
 * experts land on, experts spread evenly over `nodes` nodes and chosen uniformly,
 * when routing may use at most `max_nodes` of them (DeepSeek-V3's node-limited
 * routing; 0 = no limit): N (1 - (1 - 1/N)^k) with N = min(nodes, max_nodes). */
double proj_nodes_per_token(int64_t k, int64_t nodes, int64_t max_nodes);

#endif
