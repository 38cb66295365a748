/* backend.c - backend selection and CPU facts (see backend.h). */
#define _GNU_SOURCE
#include "backend.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

const char *backend_name(enum backend_kind kind)
{
	return kind == BACKEND_CUDA ? "cuda" : "cpu";
}

void backend_cpu_info(struct cpu_info *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->model, sizeof(out->model), "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) != 0 || !colon)
			continue;
		colon += 1 + (colon[1] == ' ');
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(out->model, sizeof(out->model), "%s", colon);
		break;
	}
	if (f)
		fclose(f);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	out->cores = n > 0 ? (int)n : 1;
	out->mem_bytes = (pages > 0 && psize > 0) ? (uint64_t)pages * (uint64_t)psize : 0;
}

int backend_open(const char *want, int device, struct backend *out, char *note,
		 size_t note_len)
{
	struct device_info devs[16];
	int count = 0;
	memset(out, 0, sizeof(*out));
	note[0] = '\0';
	out->kind = BACKEND_CPU;
	if (strcmp(want, "cpu") == 0)
		return MB_OK;
	int err = backend_cuda_devices(devs, 16, &count, note, note_len);
	if (err) {
		/* auto: fall back, keeping the reason in note for the one-line notice. */
		return strcmp(want, "cuda") == 0 ? MB_ERR_NODEV : MB_OK;
	}
	if (device >= count) {
		snprintf(note, note_len, "device %d does not exist (%d device%s found)", device,
			 count, count == 1 ? "" : "s");
		return MB_ERR_ARG;
	}
	out->kind = BACKEND_CUDA;
	out->dev = devs[device];
	note[0] = '\0';
	return backend_cuda_open_stream(out, note, note_len);
}
