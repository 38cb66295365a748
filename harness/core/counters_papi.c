/* counters_papi.c - counters.h through PAPI (built with MOEBENCH_PAPI). */
#include "counters_impl.h"

#include <papi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

static char papi_version[32];
static int papi_init_status = 1; /* 1: not tried */

/* papi_init initialises the library once; returns PAPI_OK or PAPI's error. */
static int papi_init(void)
{
	if (papi_init_status == 1) {
		int v = PAPI_library_init(PAPI_VER_CURRENT);
		papi_init_status = v == PAPI_VER_CURRENT ? PAPI_OK : (v < 0 ? v : PAPI_EINVAL);
	}
	return papi_init_status;
}

const char *counters_papi_version(void)
{
	snprintf(papi_version, sizeof(papi_version), "%d.%d.%d.%d",
		 PAPI_VERSION_MAJOR(PAPI_VERSION), PAPI_VERSION_MINOR(PAPI_VERSION),
		 PAPI_VERSION_REVISION(PAPI_VERSION), PAPI_VERSION_INCREMENT(PAPI_VERSION));
	return papi_version;
}

void counters_papi_status(char *out, size_t len)
{
	int err = papi_init();
	if (err != PAPI_OK) {
		snprintf(out, len, "PAPI %s: init failed: %s", counters_papi_version(), PAPI_strerror(err));
		return;
	}
	int ncomp = PAPI_num_components(), used = 0;
	used += snprintf(out, len, "PAPI %s:", counters_papi_version());
	for (int i = 0; i < ncomp && used < (int)len; i++) {
		const PAPI_component_info_t *ci = PAPI_get_component_info(i);
		if (!ci || strcmp(ci->name, "sde") == 0)
			continue;
		used += snprintf(out + used, len - (size_t)used, " %s %s%s%s%s;", ci->name,
				 ci->disabled ? "disabled" : "enabled", ci->disabled ? " (" : "",
				 ci->disabled ? ci->disabled_reason : "", ci->disabled ? ")" : "");
	}
}

/* add_event tries to add one event, recording PAPI's reason when it cannot. */
static void add_event(struct counters *c, struct counter_event *e)
{
	int code = 0, err = PAPI_event_name_to_code(e->name, &code);
	if (err == PAPI_OK)
		err = PAPI_add_event(c->eventset, code);
	if (err != PAPI_OK) {
		snprintf(e->reason, sizeof(e->reason), "%s", PAPI_strerror(err));
		return;
	}
	e->available = true;
	e->slot = c->n_live++;
}

int counters_open(const char *spec, struct counters **out, char *why, size_t why_len)
{
	*out = NULL;
	if (strcmp(spec, "none") == 0)
		return MB_OK;
	struct counters *c = calloc(1, sizeof(*c));
	if (!c)
		return MB_ERR_NOMEM;
	int err = counters_parse_list(spec, c, why, why_len);
	if (err) {
		free(c);
		return err;
	}
	c->eventset = PAPI_NULL;
	int perr = papi_init();
	/* NOTE: a name PAPI cannot resolve is a typo or an event this machine lacks: the
	 * user's list is refused naming it; the default list is kept as unavailable. */
	for (int i = 0; perr == PAPI_OK && strcmp(spec, "default") != 0 && i < c->n; i++) {
		int code = 0, e = PAPI_event_name_to_code(c->ev[i].name, &code);
		if (e != PAPI_OK) {
			snprintf(why, why_len, "--counters: unknown event '%s' (PAPI %s: %s)",
				 c->ev[i].name, counters_papi_version(), PAPI_strerror(e));
			free(c);
			return MB_ERR_ARG;
		}
	}
	if (perr == PAPI_OK)
		perr = PAPI_create_eventset(&c->eventset);
	for (int i = 0; i < c->n; i++) {
		if (perr == PAPI_OK)
			add_event(c, &c->ev[i]);
		else
			snprintf(c->ev[i].reason, sizeof(c->ev[i].reason), "PAPI unusable: %s",
				 PAPI_strerror(perr));
	}
	*out = c;
	return MB_OK;
}

void counters_start(struct counters *c)
{
	if (!c || c->n_live == 0)
		return;
	c->running = PAPI_start(c->eventset) == PAPI_OK;
}

void counters_stop(struct counters *c)
{
	long long v[COUNTERS_MAX] = { 0 };
	if (!c || !c->running)
		return;
	c->running = false;
	if (PAPI_stop(c->eventset, v) != PAPI_OK)
		return;
	for (int i = 0; i < c->n; i++)
		if (c->ev[i].available)
			c->ev[i].total += v[c->ev[i].slot];
}

void counters_close(struct counters *c)
{
	if (!c)
		return;
	if (c->eventset != PAPI_NULL) {
		PAPI_cleanup_eventset(c->eventset);
		PAPI_destroy_eventset(&c->eventset);
	}
	free(c);
}
