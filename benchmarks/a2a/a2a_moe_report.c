/*
 * a2a_moe_report.c - the figures of `moebench a2a`'s MoE phases: bytes counted from the
 * layout (never from the time), bandwidths and rates from the slowest rank's median
 * time, routing imbalance, and the summary lines.
 *
 *   algbw   = bytes one rank sends in the phase's all-to-alls (mean over ranks; its
 *             copy to itself included, as nccl-tests' alltoall counts its buffer)
 *             / time; busbw = algbw * (n-1)/n, n the EP ranks (nccl-tests' alltoall)
 *   logical = DeepEP's intranode (NVLink) convention: one copy per (token, destination
 *             rank) x (hidden x bytes per element + FP8 scales), per rank (mean) / time;
 *             combine BF16
 *   rdma    = DeepEP's internode "RDMA bottleneck bandwidth": one copy per (token,
 *             destination node) x the same row bytes, per rank (mean) / time
 * Dispatch rows are padded to 16 bytes (fmt.row_bytes): algbw counts the padded rows
 * that move, logical the payload.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a_moe.h"
#include "result.h"
#include "route.h"
#include "status.h"

static const char *phase_names[] = { "layout", "dispatch", "combine" };

/* imbalance computes max/mean over experts and over ranks of the global expert load. */
static int imbalance(struct a2a_moe *m)
{
	long *load = calloc((size_t)m->experts, sizeof(long));
	double *g = calloc((size_t)m->experts, sizeof(double));
	int err = load && g ? MB_OK : MB_ERR_NOMEM, per = m->experts / m->size;
	if (!err) {
		route_count(m->idx, m->tokens, m->topk, load);
		for (int e = 0; e < m->experts; e++)
			g[e] = (double)load[e];
		err = comm_host_allreduce_f64(m->comm, g, (size_t)m->experts, COMM_SUM);
	}
	double max_e = 0, max_r = 0, sum = 0;
	for (int r = 0; !err && r < m->size; r++) {
		double rank_load = 0;
		for (int e = r * per; e < (r + 1) * per; e++)
			rank_load += g[e], max_e = fmax(max_e, g[e]), sum += g[e];
		max_r = fmax(max_r, rank_load);
	}
	m->imbalance_experts = sum > 0 ? max_e / (sum / m->experts) : 0;
	m->imbalance_ranks = sum > 0 ? max_r / (sum / m->size) : 0;
	free(load);
	free(m->expert_load);
	m->expert_load = err ? NULL : g;
	if (err)
		free(g);
	return err;
}

int a2a_moe_account(struct a2a_moe *m)
{
	struct ep_traffic t;
	struct route_stats rs;
	const struct permute_format *f = ep_format(m->ep);
	ep_traffic_of(m->ep, &t);
	route_stats_of(m->idx, m->tokens, m->topk, m->experts, m->size, m->size / m->rpn, &rs);
	double copies = (double)(t.hop1_copies + t.hop2_copies), hb = 2.0 * m->hidden;
	double v[8] = { (double)t.tokens, t.layout_bytes, copies * (double)f->row_bytes,
			copies * hb, (double)t.rank_copies * (double)f->logical_bytes,
			(double)t.rank_copies, rs.nodes_per_token * (double)t.tokens,
			(double)t.node_copies };
	int err = comm_host_allreduce_f64(m->comm, v, 8, COMM_SUM);
	if (err)
		return err;
	m->tokens_total = v[0];
	m->alltoall_bytes[0] = v[1] / m->size;
	m->alltoall_bytes[1] = v[2] / m->size;
	m->alltoall_bytes[2] = v[3] / m->size;
	m->logical_bytes[0] = 0;
	m->logical_bytes[1] = v[4] / m->size;
	m->logical_bytes[2] = v[5] * hb / m->size;
	m->node_bytes[0] = 0;
	m->node_bytes[1] = v[7] * (double)f->logical_bytes / m->size;
	m->node_bytes[2] = v[7] * hb / m->size;
	m->copies_per_token = v[0] > 0 ? v[5] / v[0] : 0;
	m->nodes_per_token = v[0] > 0 ? v[6] / v[0] : 0;
	m->node_copies_per_token = v[0] > 0 ? v[7] / v[0] : 0;
	return imbalance(m);
}

/* experts_per_node returns the experts a token picks per node it goes to: K over the
 * mean nodes per token (totals over every rank's tokens). */
static double experts_per_node(const struct a2a_moe *m)
{
	return m->nodes_per_token > 0 ? m->topk / m->nodes_per_token : 0;
}

/* add_loads adds the token copies per expert and per rank (the routing's load) to the
 * summary s, for imbalance plots. */
static void add_loads(const struct a2a_moe *m, cJSON *s)
{
	cJSON *e = cJSON_AddArrayToObject(s, "tokens_per_expert");
	cJSON *r = cJSON_AddArrayToObject(s, "tokens_per_rank");
	int per = m->experts / m->size;
	for (int i = 0; m->expert_load && e && r && i < m->size; i++) {
		double rank_load = 0;
		for (int x = i * per; x < (i + 1) * per; x++) {
			rank_load += m->expert_load[x];
			cJSON_AddItemToArray(e, cJSON_CreateNumber(m->expert_load[x]));
		}
		cJSON_AddItemToArray(r, cJSON_CreateNumber(rank_load));
	}
}

cJSON *a2a_moe_params(const struct a2a_moe *m, int phase)
{
	cJSON *p = cJSON_CreateObject();
	if (!p)
		return NULL;
	cJSON_AddStringToObject(p, "phase", phase_names[phase]);
	cJSON_AddStringToObject(p, "payload", permute_payload_name(phase == 2 ? PERMUTE_BF16 : m->payload));
	cJSON_AddNumberToObject(p, "tokens_per_rank", (double)m->tokens);
	cJSON_AddNumberToObject(p, "tokens_total", m->tokens_total);
	cJSON_AddNumberToObject(p, "hidden", m->hidden);
	cJSON_AddNumberToObject(p, "experts", m->experts);
	cJSON_AddNumberToObject(p, "topk", m->topk);
	cJSON_AddNumberToObject(p, "ep", m->size);
	cJSON_AddNumberToObject(p, "ranks_per_node", m->rpn);
	cJSON_AddBoolToObject(p, "two_hop", ep_two_hop(m->ep));
	cJSON_AddNumberToObject(p, "zipf", m->zipf);
	cJSON_AddNumberToObject(p, "alltoall_bytes_per_rank", m->alltoall_bytes[phase]);
	cJSON_AddNumberToObject(p, "logical_bytes_per_rank", m->logical_bytes[phase]);
	cJSON_AddNumberToObject(p, "rank_copies_per_token", m->copies_per_token);
	cJSON_AddNumberToObject(p, "node_copies_per_token", m->node_copies_per_token);
	cJSON_AddNumberToObject(p, "nodes_per_token", m->nodes_per_token);
	cJSON_AddNumberToObject(p, "imbalance_experts", m->imbalance_experts);
	cJSON_AddNumberToObject(p, "imbalance_ranks", m->imbalance_ranks);
	cJSON_AddNumberToObject(p, "experts_per_node_per_token", experts_per_node(m));
	cJSON_AddStringToObject(p, "bytes_rule", phase == 0 ?
				"alltoall: copy counts (int64 per peer) + meta rows (int32 [src, token, K experts, K weights]) per copy" :
				"alltoall: rows sent in the all-to-alls (both hops, self included); logical "
				"(DeepEP NVLink): (token, rank) copies x (hidden x element bytes + FP8 scales); "
				"rdma_bottleneck (DeepEP RDMA): (token, node) copies x the same row bytes");
	return p;
}

/* phase_record finds the last record of the phase's case in the document. */
static cJSON *phase_record(cJSON *doc, const char *bench, int phase)
{
	cJSON *recs = cJSON_GetObjectItem(doc, "records"), *found = NULL, *r;
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "moe/%s/", phase_names[phase]);
	cJSON_ArrayForEach(r, recs) {
		const cJSON *b = cJSON_GetObjectItem(r, "benchmark"), *n = cJSON_GetObjectItem(r, "name");
		if (cJSON_IsString(b) && cJSON_IsString(n) && !strcmp(b->valuestring, bench) &&
		    !strncmp(n->valuestring, prefix, strlen(prefix)))
			found = r;
	}
	return found;
}

/* phase_line adds the phase's derived metrics to its record and writes its line. */
static void phase_line(struct a2a_moe *m, cJSON *rec, int phase, char *line, size_t len)
{
	const cJSON *med = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "metrics"),
								   "time_s"), "median");
	double t = cJSON_IsNumber(med) ? med->valuedouble : NAN, n = m->size;
	if (!rec || !(t > 0)) {
		snprintf(line, len, "a2a moe %-8s: no time (check failed or not run)", phase_names[phase]);
		return;
	}
	double alg = m->alltoall_bytes[phase] / t / 1e9, bus = alg * (n - 1) / n;
	double logical = m->logical_bytes[phase] / t / 1e9, tps = m->tokens_total / t;
	double rdma = m->node_bytes[phase] / t / 1e9;
	result_set_metric(rec, "algbw_GBps", alg);
	result_set_metric(rec, "busbw_GBps", bus);
	if (phase > 0) {
		result_set_metric(rec, "logical_GBps", logical);
		result_set_metric(rec, "rdma_bottleneck_GBps", rdma);
	}
	result_set_metric(rec, "tokens_per_s", tps);
	char lg[128] = "";
	if (phase > 0)
		snprintf(lg, sizeof(lg), "  per_token_rank_copy_GBps %.3f (DeepEP NVLink)  "
			 "per_token_node_copy_GBps %.3f (DeepEP RDMA bottleneck)", logical, rdma);
	snprintf(line, len, "a2a moe %-8s %-4s: time_ms %9.4f  algbw_GBps %8.3f  busbw_GBps %8.3f%s"
		 "  tokens_per_s %.4g", phase_names[phase],
		 permute_payload_name(phase == 2 ? PERMUTE_BF16 : m->payload), 1e3 * t, alg, bus, lg, tps);
}

int a2a_moe_report(struct run_ctx *ctx, struct a2a_moe *m)
{
	/* NOTE: the layout count is global already (every rank holds it): rank 0 brings
	 * it alone. Dividing by the ranks and summing lost a count to rounding (1/7 summed
	 * seven times is 0.99..., printed and stored as 0 wrong). */
	double wrong[3] = { m->rank == 0 ? (double)m->wrong[0] : 0, (double)m->wrong[1],
			    (double)m->wrong[2] };
	char line[512];
	int err = comm_host_allreduce_f64(m->comm, wrong, 3, COMM_SUM);
	cJSON *summary = cJSON_GetObjectItem(ctx->doc, "summary");
	if (!err && !summary)
		summary = cJSON_AddObjectToObject(ctx->doc, "summary");
	cJSON *s = err ? NULL : cJSON_AddObjectToObject(summary, "a2a_moe");
	cJSON *lines = s ? cJSON_AddArrayToObject(s, "lines") : NULL;
	if (err || !lines)
		return err ? err : MB_ERR_NOMEM;
	for (int ph = 0; ph < 3; ph++) {
		phase_line(m, phase_record(ctx->doc, ctx->benchmark, ph), ph, line, sizeof(line));
		cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	}
	snprintf(line, sizeof(line), "a2a moe routing: EP %d (%d per node, %s), imbalance max/mean "
		 "experts %.3f ranks %.3f, rank copies/token %.3f, nodes/token %.3f, experts/node "
		 "%.3f", m->size, m->rpn, ep_two_hop(m->ep) ? "two-hop: one copy per node, then "
		 "NVLink fan-out" : "one copy per rank", m->imbalance_experts, m->imbalance_ranks,
		 m->copies_per_token, m->nodes_per_token, experts_per_node(m));
	add_loads(m, s);
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	long total = lround(wrong[0] + wrong[1] + wrong[2]);
	snprintf(line, sizeof(line), "a2a moe #wrong %ld (layout %.0f, rows %.0f, tokens %.0f; summed "
		 "over ranks)", total, wrong[0], wrong[1], wrong[2]);
	cJSON_AddItemToArray(lines, cJSON_CreateString(line));
	cJSON_AddNumberToObject(s, "wrong", (double)total);
	return MB_OK;
}
