/* noise.c - machine load, CPU clock and CPU time of a timed region (see noise.h). */
#define _GNU_SOURCE
#include "noise.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <cblas.h>

static double clock_s(clockid_t id)
{
	struct timespec ts;
	if (clock_gettime(id, &ts) != 0)
		return 0.0;
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

long noise_switches(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_nivcsw : 0;
}

void noise_probe_start(struct noise_probe *p)
{
	p->clean = -1;
	p->nivcsw = noise_switches();
	p->cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	p->wall = clock_s(CLOCK_MONOTONIC);
}

double noise_load_avg(void)
{
	double la[3];
	return getloadavg(la, 3) >= 1 ? la[0] : -1.0;
}

cJSON *noise_probe_json(const struct noise_probe *p)
{
	double wall = clock_s(CLOCK_MONOTONIC) - p->wall;
	double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - p->cpu;
	long sw = noise_switches() - p->nivcsw;
	double la = noise_load_avg();
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "wall_s", wall);
	cJSON_AddNumberToObject(o, "cpu_s", cpu);
	cJSON_AddNumberToObject(o, "cpu_per_wall", wall > 0 ? cpu / wall : 0.0);
	cJSON_AddNumberToObject(o, "involuntary_switches", (double)sw);
	if (p->clean >= 0)
		cJSON_AddNumberToObject(o, "clean_reps", (double)p->clean);
	else
		cJSON_AddNullToObject(o, "clean_reps");
	if (la >= 0)
		cJSON_AddNumberToObject(o, "load_avg_1m", la);
	else
		cJSON_AddNullToObject(o, "load_avg_1m");
	cJSON_AddNumberToObject(o, "online_cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
	return o;
}

/* cpu_mhz reads the current clock of CPU 0: cpufreq where the kernel exposes it, else
 * /proc/cpuinfo's "cpu MHz" (on a VM, often the nominal clock). Sets *source; returns
 * -1 when neither is readable. */
static double cpu_mhz(const char **source)
{
	char line[256];
	double khz = -1, mhz = -1;
	FILE *f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "r");
	if (f) {
		if (fscanf(f, "%lf", &khz) != 1)
			khz = -1;
		fclose(f);
		if (khz > 0) {
			*source = "cpufreq scaling_cur_freq";
			return khz / 1e3;
		}
	}
	f = fopen("/proc/cpuinfo", "r");
	while (f && mhz < 0 && fgets(line, sizeof(line), f)) {
		const char *colon = strchr(line, ':');
		if (strncmp(line, "cpu MHz", 7) == 0 && colon && sscanf(colon + 1, "%lf", &mhz) != 1)
			mhz = -1;
	}
	if (f)
		fclose(f);
	*source = mhz > 0 ? "/proc/cpuinfo cpu MHz" : "unreadable";
	return mhz;
}

cJSON *noise_machine_json(void)
{
	double la[3] = { -1, -1, -1 };
	const char *src = NULL;
	double mhz = cpu_mhz(&src);
	cJSON *o = cJSON_CreateObject(), *a;

	if (!o)
		return NULL;
	a = cJSON_AddArrayToObject(o, "load_avg");
	if (getloadavg(la, 3) == 3)
		for (int i = 0; i < 3; i++)
			cJSON_AddItemToArray(a, cJSON_CreateNumber(la[i]));
	cJSON_AddNumberToObject(o, "online_cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
	if (mhz > 0)
		cJSON_AddNumberToObject(o, "cpu_mhz", mhz);
	else
		cJSON_AddNullToObject(o, "cpu_mhz");
	cJSON_AddStringToObject(o, "cpu_mhz_source", src);
	cJSON_AddNumberToObject(o, "blas_threads", openblas_get_num_threads());
	return o;
}
