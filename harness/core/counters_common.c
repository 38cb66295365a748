/* counters_common.c - parsing an event list for counters.h, shared by both builds. */
#include "counters_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

int counters_parse_list(const char *spec, struct counters *c, char *why, size_t why_len)
{
	const char *list = strcmp(spec, "default") == 0 ? COUNTERS_DEFAULT : spec;
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		if (len == 0 || len >= COUNTERS_NAME_MAX) {
			snprintf(why, why_len, "--counters: empty or over-long event name in '%s'", spec);
			return MB_ERR_ARG;
		}
		if (c->n == COUNTERS_MAX) {
			snprintf(why, why_len, "--counters: at most %d events", COUNTERS_MAX);
			return MB_ERR_ARG;
		}
		memcpy(c->ev[c->n].name, p, len);
		c->ev[c->n].name[len] = '\0';
		c->n++;
		p += len + (p[len] == ',');
	}
	return MB_OK;
}

int counters_record(struct counters *c, long reps, cJSON *record)
{
	if (!c || c->n == 0)
		return MB_OK;
	cJSON *obj = cJSON_AddObjectToObject(record, "counters");
	if (!obj)
		return MB_ERR_NOMEM;
	for (int i = 0; i < c->n; i++) {
		struct counter_event *e = &c->ev[i];
		cJSON *o = cJSON_AddObjectToObject(obj, e->name);
		if (!o)
			return MB_ERR_NOMEM;
		if (e->available) {
			cJSON_AddNumberToObject(o, "value", (double)e->total / (double)(reps > 0 ? reps : 1));
			cJSON_AddStringToObject(o, "per", "repetition");
			cJSON_AddStringToObject(o, "scope", "calling thread");
		} else {
			cJSON_AddFalseToObject(o, "available");
			cJSON_AddStringToObject(o, "reason", e->reason);
		}
		e->total = 0;
	}
	return MB_OK;
}

bool counters_any_available(const struct counters *c)
{
	for (int i = 0; c && i < c->n; i++)
		if (c->ev[i].available)
			return true;
	return false;
}
