/* status.c - descriptions of the shared status codes (see status.h). */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

const char *mb_status_str(int status)
{
	switch (status) {
	case MB_OK: return "ok";
	case MB_ERR_NOMEM: return "out of memory";
	case MB_ERR_ARG: return "invalid argument";
	case MB_ERR_IO: return "I/O error";
	case MB_ERR_PARSE: return "malformed input";
	case MB_ERR_CUDA: return "CUDA error";
	case MB_ERR_CUBLAS: return "cuBLAS error";
	case MB_ERR_NCCL: return "NCCL error";
	case MB_ERR_MPI: return "MPI error";
	case MB_ERR_UNSUPPORTED: return "not supported";
	case MB_ERR_NODEV: return "no device";
	case MB_ERR_CHECK: return "check failed";
	case MB_ERR_EXISTS: return "file exists";
	}
	return "unknown status";
}

int mb_fail(int code, char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return code;
}
