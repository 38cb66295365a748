/* core_nopapi.c - counters.h for builds without PAPI: every event unavailable. */
#include "counters_impl.h"
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *counters_papi_version(void)
{
	return NULL;
}

void counters_papi_status(char *out, size_t len)
{
	snprintf(out, len, "PAPI: not built (MOEBENCH_PAPI=OFF or libpapi-dev not found)");
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
	for (int i = 0; i < c->n; i++)
		snprintf(c->ev[i].reason, sizeof(c->ev[i].reason), "built without PAPI");
	*out = c;
	return MB_OK;
}

void counters_start(struct counters *c)
{
}

void counters_stop(struct counters *c)
{
}

void counters_close(struct counters *c)
{
	free(c);
}
