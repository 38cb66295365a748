/* context.c - provenance of a run (see context.h). */
#define _GNU_SOURCE
#include "context.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cblas.h>

#include "backend.h"
#include "build_info.h"
#include "counters.h"
#include "hardware.h"
#include "mpi_world.h"
#include "noise.h"
#include "status.h"

#if MOEBENCH_HAVE_MPI
#include <mpi.h>
#endif
#if MOEBENCH_HAVE_NCCL
#include <nccl.h>
#endif

/* add_str_or_null adds s, or null when s is NULL. */
static void add_str_or_null(cJSON *o, const char *k, const char *s)
{
	if (s)
		cJSON_AddStringToObject(o, k, s);
	else
		cJSON_AddNullToObject(o, k);
}

cJSON *context_build(void)
{
	cJSON *b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "type", MOEBENCH_BUILD_TYPE);
	cJSON_AddStringToObject(b, "compiler", MOEBENCH_COMPILER);
	cJSON_AddBoolToObject(b, "cuda", MOEBENCH_HAVE_CUDA);
	cJSON_AddBoolToObject(b, "nccl", MOEBENCH_HAVE_NCCL);
	cJSON_AddBoolToObject(b, "mpi", MOEBENCH_HAVE_MPI);
	cJSON_AddBoolToObject(b, "papi", MOEBENCH_HAVE_PAPI);
	cJSON_AddBoolToObject(b, "sanitize", MOEBENCH_SANITIZE);
	cJSON_AddStringToObject(b, "cuda_architectures", MOEBENCH_CUDA_ARCHS);
	return b;
}

cJSON *context_libraries(void)
{
	char buf[160], drv[16], rt[16];
	cJSON *l = cJSON_CreateObject();
	cJSON_AddStringToObject(l, "cjson", cJSON_Version());
	add_str_or_null(l, "openblas", openblas_get_config());
	backend_cuda_versions(drv, rt, sizeof(drv));
	add_str_or_null(l, "cuda_runtime", MOEBENCH_HAVE_CUDA ? rt : NULL);
	add_str_or_null(l, "cuda_driver", MOEBENCH_HAVE_CUDA ? drv : NULL);
	backend_cublaslt_version(buf, sizeof(buf));
	add_str_or_null(l, "cublaslt", MOEBENCH_HAVE_CUDA ? buf : NULL);
#if MOEBENCH_HAVE_NCCL
	int nv = 0;
	ncclGetVersion(&nv);
	snprintf(buf, sizeof(buf), "%d.%d.%d", nv / 10000, (nv / 100) % 100, nv % 100);
	cJSON_AddStringToObject(l, "nccl", buf);
#else
	cJSON_AddNullToObject(l, "nccl");
#endif
#if MOEBENCH_HAVE_MPI
	char mv[MPI_MAX_LIBRARY_VERSION_STRING];
	int len = 0;
	MPI_Get_library_version(mv, &len);
	mv[strcspn(mv, ",\n")] = '\0';
	cJSON_AddStringToObject(l, "mpi", mv);
#else
	cJSON_AddNullToObject(l, "mpi");
#endif
	add_str_or_null(l, "papi", counters_papi_version());
	return l;
}

/* device_json describes one device with its datasheet entry (null if unknown). */
static cJSON *device_json(const struct device_info *d)
{
	char cc[16];
	cJSON *o = cJSON_CreateObject();
	snprintf(cc, sizeof(cc), "%d.%d", d->cc_major, d->cc_minor);
	cJSON_AddNumberToObject(o, "index", d->index);
	cJSON_AddStringToObject(o, "name", d->name);
	cJSON_AddStringToObject(o, "cc", cc);
	cJSON_AddNumberToObject(o, "sms", d->sms);
	cJSON_AddNumberToObject(o, "mem_bytes", (double)d->mem_bytes);
	cJSON_AddNumberToObject(o, "clock_mhz", d->clock_mhz);
	cJSON_AddNumberToObject(o, "mem_clock_mhz", d->mem_clock_mhz);
	cJSON_AddNumberToObject(o, "mem_bus_bits", d->mem_bus_bits);
	cJSON_AddNumberToObject(o, "l2_bytes", d->l2_bytes);
	cJSON_AddStringToObject(o, "driver", d->driver);
	cJSON_AddStringToObject(o, "runtime", d->runtime);
	const struct hardware_spec *hw = hardware_match(d->name);
	if (hw)
		cJSON_AddItemToObject(o, "hardware", hardware_to_json(hw));
	else
		cJSON_AddNullToObject(o, "hardware");
	return o;
}

cJSON *context_devices(void)
{
	struct device_info devs[16];
	char why[256];
	int n = 0;
	cJSON *a = cJSON_CreateArray();
	if (backend_cuda_devices(devs, 16, &n, why, sizeof(why)) != MB_OK)
		n = 0;
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(a, device_json(&devs[i]));
	return a;
}

static void add_cpu(cJSON *ctx)
{
	struct cpu_info ci;
	backend_cpu_info(&ci);
	cJSON *c = cJSON_AddObjectToObject(ctx, "cpu");
	cJSON_AddStringToObject(c, "model", ci.model);
	cJSON_AddNumberToObject(c, "cores", ci.cores);
	cJSON_AddNumberToObject(c, "mem_bytes", (double)ci.mem_bytes);
}

int context_fill(cJSON *ctx, int argc, char **argv, const struct backend *b,
		 bool counters_available)
{
	char date[32], host[256] = "unknown";
	time_t now = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	gethostname(host, sizeof(host) - 1);
	cJSON_AddStringToObject(ctx, "date", date);
	cJSON_AddStringToObject(ctx, "host", host);
	cJSON *av = cJSON_AddArrayToObject(ctx, "argv");
	for (int i = 0; i < argc; i++)
		cJSON_AddItemToArray(av, cJSON_CreateString(argv[i]));
	cJSON_AddStringToObject(ctx, "moebench_version", MOEBENCH_VERSION);
	cJSON_AddStringToObject(ctx, "git_commit", moebench_git_commit);
	cJSON_AddItemToObject(ctx, "build", context_build());
	cJSON_AddItemToObject(ctx, "libraries", context_libraries());
	cJSON_AddStringToObject(ctx, "backend", backend_name(b->kind));
	add_cpu(ctx);
	cJSON *devs = cJSON_AddArrayToObject(ctx, "devices");
	if (b->kind == BACKEND_CUDA)
		cJSON_AddItemToArray(devs, device_json(&b->dev));
	cJSON_AddNumberToObject(ctx, "world_size", mpi_world_size());
	cJSON_AddBoolToObject(ctx, "counters_available", counters_available);
	cJSON_AddItemToObject(ctx, "machine", noise_machine_json());
	return MB_OK;
}

void context_print_version(void)
{
	cJSON *l = context_libraries();
	printf("moebench %s (commit %s, %s build, %s)\n", MOEBENCH_VERSION, moebench_git_commit,
	       MOEBENCH_BUILD_TYPE, MOEBENCH_COMPILER);
	const cJSON *it;
	cJSON_ArrayForEach(it, l)
		printf("  %-13s %s\n", it->string, cJSON_IsString(it) ? it->valuestring : "not built");
	cJSON_Delete(l);
}
