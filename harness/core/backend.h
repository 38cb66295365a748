/*
 * backend.h - where a benchmark runs: the CPU (always) or a CUDA device (when built
 * with CUDA and a device answers), with the facts of the machine and device.
 *
 * --backend auto picks CUDA when a device answers and otherwise falls back to the CPU
 * with one note naming the runtime's reason (e.g. "cudaErrorNoDevice"); --backend cuda
 * without a device is a user error.
 */
#ifndef MB_HARNESS_BACKEND_H
#define MB_HARNESS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum backend_kind { BACKEND_CPU, BACKEND_CUDA };

struct device_info {
	int index;
	char name[256];
	int cc_major, cc_minor;
	int sms;
	uint64_t mem_bytes;
	int clock_mhz;       /* peak SM clock */
	int mem_clock_mhz;   /* peak memory clock */
	int mem_bus_bits;
	int l2_bytes;
	char driver[16];     /* "13.0" */
	char runtime[16];
};

struct cpu_info {
	char model[128];
	int cores;           /* online logical CPUs */
	uint64_t mem_bytes;
};

struct backend {
	enum backend_kind kind;
	struct device_info dev;  /* valid when kind == BACKEND_CUDA */
	void *stream;            /* cudaStream_t, when kind == BACKEND_CUDA */
};

/* backend_name returns "cpu" or "cuda". */
const char *backend_name(enum backend_kind kind);

/* backend_cpu_info reads the CPU model, core count and memory of this machine. */
void backend_cpu_info(struct cpu_info *out);

/* backend_cuda_devices lists the CUDA devices (at most max). Returns MB_OK with *count
 * set, MB_ERR_UNSUPPORTED when built without CUDA, or MB_ERR_NODEV when the runtime
 * reports none; why then says why (such as "cudaErrorNoDevice: no CUDA-capable device
 * is detected"). */
int backend_cuda_devices(struct device_info *devs, int max, int *count, char *why,
			 size_t why_len);

/* backend_cuda_versions writes the driver and runtime versions ("13.0") or "n/a". */
void backend_cuda_versions(char *driver, char *runtime, size_t len);

/* backend_cublaslt_version writes cuBLASLt's version ("13.1.0") or "n/a". */
void backend_cublaslt_version(char *out, size_t len);

/* backend_open selects the backend ("auto", "cpu" or "cuda") and, for CUDA, sets the
 * device and creates a stream. Returns MB_OK; MB_ERR_NODEV when "cuda" was asked and
 * no device answers (why says why); MB_ERR_ARG for a device index out of range. With
 * "auto" and no device, picks the CPU and reports the reason through *note. */
int backend_open(const char *want, int device, struct backend *out, char *note,
		 size_t note_len);
/* backend_cuda_open_stream sets b->dev.index as the current device and creates
 * b->stream (used by backend_open). */
int backend_cuda_open_stream(struct backend *b, char *why, size_t why_len);
/* backend_close releases the stream. */
void backend_close(struct backend *b);

/* backend_cuda_flush_l2 overwrites a buffer twice the L2 size on the backend's stream
 * so the next repetition starts cold. No-op on the CPU. */
int backend_cuda_flush_l2(struct backend *b);
/* backend_sync waits for the backend's stream. */
int backend_sync(struct backend *b);

#endif
