/*
 * status.h - the status codes and call checks every module shares.
 *
 * Library functions return int: MB_OK (0) on success, a negative MB_ERR_* otherwise.
 * Calls into CUDA, cuBLASLt, NCCL and MPI go through a check that prints
 *   file:line: call: error name: error string
 * to stderr and returns the matching MB_ERR_* code, so the caller writes
 *   err = MB_CUDA_CHECK(cudaMalloc(&p, n)); if (err) goto out;
 * and the control flow stays visible (no return or goto hidden in a macro).
 */
#ifndef MB_STATUS_H
#define MB_STATUS_H

#include <stddef.h>

enum mb_status {
	MB_OK = 0,
	MB_ERR_NOMEM = -1,       /* host allocation failed */
	MB_ERR_ARG = -2,         /* invalid argument (caller's fault) */
	MB_ERR_IO = -3,          /* file or stream error */
	MB_ERR_PARSE = -4,       /* malformed input (JSON, option value) */
	MB_ERR_CUDA = -5,        /* CUDA runtime or driver error */
	MB_ERR_CUBLAS = -6,      /* cuBLAS / cuBLASLt error */
	MB_ERR_NCCL = -7,        /* NCCL error */
	MB_ERR_MPI = -8,         /* MPI error */
	MB_ERR_UNSUPPORTED = -9, /* not built in, or not supported by this device */
	MB_ERR_NODEV = -10,      /* no device answered */
	MB_ERR_CHECK = -11,      /* a result failed its correctness check */
	MB_ERR_EXISTS = -12,     /* refusing to overwrite an existing file */
};

/* mb_status_str returns a short constant description of an MB_* code. */
const char *mb_status_str(int status);

/* mb_fail writes a printf-style reason into why (when why and len are set) and returns
 * code: the one-line "fill why, return the status" of every validating function. */
int mb_fail(int code, char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
