/*
 * train_split.c - the training step's time by cause (train_split.h).
 */
#include "train_split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

const char *train_cause_name(enum train_cause c)
{
	static const char *const n[TC_COUNT] = {
		"attention_block", "routing_permute", "expert_gemm", "dense_gemm", "loss",
		"optimizer", "other", "tp_comm_total", "ep_comm_exposed", "ep_comm_hidden",
		"bubble", "bubble_simulated", "dp_comm",
	};
	return (unsigned)c < TC_COUNT ? n[c] : "?";
}

bool train_cause_summed(enum train_cause c)
{
	return c != TC_EP_HIDDEN && c != TC_BUBBLE_SIM;
}

void train_split_phases(struct train_split *s, const struct net_profile *p)
{
	static const enum train_cause map[NET_PH_COUNT] = {
		[NET_PH_ATTENTION] = TC_ATTENTION, [NET_PH_ROUTING] = TC_ROUTING,
		[NET_PH_EXPERTS] = TC_EXPERT_GEMM, [NET_PH_DENSE] = TC_DENSE_GEMM,
		[NET_PH_LOSS] = TC_LOSS, [NET_PH_OPTIMIZER] = TC_OPTIMIZER,
		[NET_PH_OTHER] = TC_OTHER, [NET_PH_EP] = TC_EP_EXPOSED,
	};
	for (int i = 0; i < NET_PH_COUNT; i++)
		s->s[map[i]] += p->seconds[i];
}

double train_split_total(const struct train_split *s)
{
	double t = 0;
	for (int c = 0; c < TC_COUNT; c++)
		t += train_cause_summed((enum train_cause)c) ? s->s[c] : 0;
	return t;
}

int train_split_gather(struct comm *world, const struct train_split *mine,
		       struct train_split *all, int n)
{
	memset(all, 0, sizeof(*all) * (size_t)n);
	if (!world || n == 1) {
		all[0] = *mine;
		return MB_OK;
	}
	/* every rank fills its own row; the sum over ranks is the table */
	all[comm_rank(world)] = *mine;
	return comm_host_allreduce_f64(world, (double *)all, (size_t)n * TC_COUNT, COMM_SUM);
}

/* split_object returns one split as an object of seconds. */
static cJSON *split_object(const struct train_split *s)
{
	cJSON *o = cJSON_CreateObject();
	for (int c = 0; o && c < TC_COUNT; c++)
		cJSON_AddNumberToObject(o, train_cause_name((enum train_cause)c), s->s[c]);
	return o;
}

cJSON *train_split_json(const struct train_split *all, int n)
{
	int slow = 0;
	for (int r = 1; r < n; r++)
		slow = train_split_total(&all[r]) > train_split_total(&all[slow]) ? r : slow;
	cJSON *o = cJSON_CreateObject(), *by = cJSON_CreateArray();
	if (!o || !by) {
		cJSON_Delete(o);
		cJSON_Delete(by);
		return NULL;
	}
	cJSON_AddNumberToObject(o, "slowest_rank", slow);
	cJSON_AddItemToObject(o, "split_s", split_object(&all[slow]));
	for (int r = 0; r < n; r++)
		cJSON_AddItemToArray(by, split_object(&all[r]));
	cJSON_AddItemToObject(o, "by_rank", by);
	return o;
}

void train_split_line(const struct train_split *s, char *buf, size_t len)
{
	double t = train_split_total(s);
	int n = 0;
	if (len)
		buf[0] = '\0';
	for (int c = 0; c < TC_COUNT && t > 0; c++) {
		if (!(s->s[c] > 0) || n < 0 || (size_t)n >= len)
			continue;
		n += snprintf(buf + n, len - (size_t)n, "%s%s %.0f%%%s", n ? " " : "",
			      train_cause_name((enum train_cause)c), 100 * s->s[c] / t,
			      train_cause_summed((enum train_cause)c) ? "" : "*");
	}
}
