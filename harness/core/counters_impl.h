/* counters_impl.h - the counters object shared by counters_papi.c / core_nopapi.c. */
#ifndef MB_HARNESS_COUNTERS_IMPL_H
#define MB_HARNESS_COUNTERS_IMPL_H

#include "counters.h"

#define COUNTERS_MAX 16
#define COUNTERS_NAME_MAX 128

struct counter_event {
	char name[COUNTERS_NAME_MAX];
	bool available;
	char reason[160];
	long long total;
	int slot;            /* index in the PAPI event set */
};

struct counters {
	struct counter_event ev[COUNTERS_MAX];
	int n;
	int n_live;          /* events in the event set */
	int eventset;
	bool running;
};

/* counters_parse_list splits spec into c->ev names. */
int counters_parse_list(const char *spec, struct counters *c, char *why, size_t why_len);

#endif
