/*
 * info.c - `moebench info`: the machine, CPU, CUDA devices, library versions, PAPI
 * availability and the datasheet table (the detected device's entry marked).
 *
 *   moebench info            # text
 *   moebench info --json     # one JSON object
 */
#define _GNU_SOURCE
#include "commands.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "context.h"
#include "counters.h"
#include "hardware.h"
#include "status.h"

/* info_json gathers everything info shows into one object. */
static cJSON *info_json(const char *no_device_reason)
{
	struct utsname u;
	struct cpu_info ci;
	char papi[1024], host[256] = "unknown";
	cJSON *o = cJSON_CreateObject();
	uname(&u);
	gethostname(host, sizeof(host) - 1);
	backend_cpu_info(&ci);
	cJSON *m = cJSON_AddObjectToObject(o, "machine");
	cJSON_AddStringToObject(m, "host", host);
	cJSON_AddStringToObject(m, "os", u.sysname);
	cJSON_AddStringToObject(m, "kernel", u.release);
	cJSON_AddStringToObject(m, "arch", u.machine);
	cJSON *c = cJSON_AddObjectToObject(o, "cpu");
	cJSON_AddStringToObject(c, "model", ci.model);
	cJSON_AddNumberToObject(c, "cores", ci.cores);
	cJSON_AddNumberToObject(c, "mem_bytes", (double)ci.mem_bytes);
	cJSON_AddItemToObject(o, "devices", context_devices());
	if (no_device_reason[0])
		cJSON_AddStringToObject(o, "no_device_reason", no_device_reason);
	cJSON_AddStringToObject(o, "moebench_version", MOEBENCH_VERSION_STR);
	cJSON_AddStringToObject(o, "git_commit", moebench_git_commit);
	cJSON_AddItemToObject(o, "build", context_build());
	cJSON_AddItemToObject(o, "libraries", context_libraries());
	counters_papi_status(papi, sizeof(papi));
	cJSON_AddStringToObject(o, "papi", papi);
	cJSON *hw = cJSON_AddArrayToObject(o, "hardware");
	for (size_t i = 0; i < hardware_count(); i++)
		cJSON_AddItemToArray(hw, hardware_to_json(hardware_at(i)));
	return o;
}

/* fmt_num prints a figure or "n/a" into buf. */
static const char *fmt_num(char *buf, size_t len, double v)
{
	if (isfinite(v))
		snprintf(buf, len, "%g", v);
	else
		snprintf(buf, len, "n/a");
	return buf;
}

static void print_hardware(const cJSON *devices)
{
	char b[8][24];
	printf("\ndatasheet (dense, per GPU; * = a detected device)\n");
	printf("  %-2s%-11s %10s %10s %10s %7s %9s %13s %14s\n", "", "key", "bf16_tflops",
	       "fp8_tflops", "fp32_tflops", "hbm_gb", "hbm_tbps", "scaleup_gbps", "scaleout_gbps");
	for (size_t i = 0; i < hardware_count(); i++) {
		const struct hardware_spec *h = hardware_at(i);
		bool found = false;
		const cJSON *d;
		cJSON_ArrayForEach(d, devices)
			found |= hardware_match(cJSON_GetObjectItem(d, "name")->valuestring) == h;
		printf("  %-2s%-11s %10s %10s %10s %7s %9s %13s %14s\n", found ? "*" : "", h->key,
		       fmt_num(b[0], 24, h->peak_bf16_tflops), fmt_num(b[1], 24, h->peak_fp8_tflops),
		       fmt_num(b[2], 24, h->peak_fp32_tflops), fmt_num(b[3], 24, h->hbm_gb),
		       fmt_num(b[4], 24, h->hbm_tbps), fmt_num(b[5], 24, h->scaleup_gbps),
		       fmt_num(b[6], 24, h->scaleout_gbps));
	}
	printf("  sources: moebench info --json lists each entry's source\n");
}

static void print_text(const cJSON *o)
{
	const cJSON *m = cJSON_GetObjectItem(o, "machine"), *c = cJSON_GetObjectItem(o, "cpu");
	const cJSON *devs = cJSON_GetObjectItem(o, "devices"), *d, *it;
	printf("moebench %s (commit %s)\n\n", MOEBENCH_VERSION_STR, moebench_git_commit);
	printf("machine    %s, %s %s %s\n", cJSON_GetObjectItem(m, "host")->valuestring,
	       cJSON_GetObjectItem(m, "os")->valuestring, cJSON_GetObjectItem(m, "kernel")->valuestring,
	       cJSON_GetObjectItem(m, "arch")->valuestring);
	printf("cpu        %s, %d cores, %.1f GiB\n", cJSON_GetObjectItem(c, "model")->valuestring,
	       cJSON_GetObjectItem(c, "cores")->valueint,
	       cJSON_GetObjectItem(c, "mem_bytes")->valuedouble / 1073741824.0);
	if (cJSON_GetArraySize(devs) == 0)
		printf("devices    none: %s\n", cJSON_GetObjectItem(o, "no_device_reason")->valuestring);
	cJSON_ArrayForEach(d, devs) {
		const cJSON *hw = cJSON_GetObjectItem(d, "hardware");
		printf("device %-3d %s, cc %s, %d SMs, %.1f GiB, %d MHz (mem %d MHz, %d-bit), "
		       "driver %s, runtime %s, datasheet: %s\n",
		       cJSON_GetObjectItem(d, "index")->valueint, cJSON_GetObjectItem(d, "name")->valuestring,
		       cJSON_GetObjectItem(d, "cc")->valuestring, cJSON_GetObjectItem(d, "sms")->valueint,
		       cJSON_GetObjectItem(d, "mem_bytes")->valuedouble / 1073741824.0,
		       cJSON_GetObjectItem(d, "clock_mhz")->valueint,
		       cJSON_GetObjectItem(d, "mem_clock_mhz")->valueint,
		       cJSON_GetObjectItem(d, "mem_bus_bits")->valueint,
		       cJSON_GetObjectItem(d, "driver")->valuestring,
		       cJSON_GetObjectItem(d, "runtime")->valuestring,
		       cJSON_IsObject(hw) ? cJSON_GetObjectItem(hw, "key")->valuestring : "unknown device: peaks n/a");
	}
	printf("\nlibraries\n");
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "libraries"))
		printf("  %-13s %s\n", it->string, cJSON_IsString(it) ? it->valuestring : "not built");
	printf("\ncounters   %s\n", cJSON_GetObjectItem(o, "papi")->valuestring);
	print_hardware(devs);
}

int cmd_info(int argc, char **argv)
{
	bool json, help;
	const char *hwfile;
	char *pos[1], why[512] = "";
	int npos;
	struct device_info devs[16];
	const struct cli_opt opts[] = {
		{ "json", CLI_FLAG, &json, NULL, "print one JSON object", 0, -1, NULL },
		{ "hardware", CLI_STRING, &hwfile, NULL, "JSON file of extra hardware datasheet entries", 0, -1, NULL },
		CLI_END
	};
	int st = cli_parse("info", argc, argv, NULL, opts, pos, 0, &npos, &help,
			   "moebench info [--format text|json] [--hardware FILE]");
	if (st || help)
		return st;
	if (hwfile && hardware_load_json(hwfile, why, sizeof(why)))
		return cli_error("see README.md, 'Your own hardware', for the fields", "%s", why);
	why[0] = '\0';
	backend_cuda_devices(devs, 16, &npos, why, sizeof(why));
	cJSON *o = info_json(why);
	if (json) {
		char *t = cJSON_Print(o);
		puts(t);
		free(t);
	} else {
		print_text(o);
	}
	cJSON_Delete(o);
	hardware_reset_loaded();
	return 0;
}
