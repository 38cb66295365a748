/*
 * nccl_check.h - the check for NCCL calls, callable from C (comm_nccl.c):
 *
 *   err = MB_NCCL_CHECK(ncclGetUniqueId(&id)); if (err) goto out;
 *
 * On failure it prints "file:line: call: error name: error string" to stderr and
 * yields MB_ERR_NCCL; on success (and ncclInProgress, which a nonblocking communicator
 * returns for a call still completing) MB_OK.
 */
#ifndef MB_NCCL_CHECK_H
#define MB_NCCL_CHECK_H

#include <nccl.h>

#include "status.h"

/* mb_nccl_name is the enumerator's name of an NCCL result ("ncclRemoteError"). */
const char *mb_nccl_name(ncclResult_t r);
int mb_nccl_check(ncclResult_t r, const char *call, const char *file, int line);

#define MB_NCCL_CHECK(call) mb_nccl_check((call), #call, __FILE__, __LINE__)

#endif
