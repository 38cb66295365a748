/*
 * atomic_file.h - write a file so that readers see the old one or the whole new one:
 * a temporary file beside the destination, written, flushed to the disk (fsync), then
 * renamed over it. A failed or abandoned write leaves the destination untouched and
 * removes the temporary file. Used by the checkpoint (safetensors) and tokenizer
 * (bpe) writers.
 */
#ifndef MB_MODEL_ATOMIC_FILE_H
#define MB_MODEL_ATOMIC_FILE_H

#include <stddef.h>

struct atomic_file {
	int fd;                 /* the temporary file, -1 when none is open */
	int failed;             /* a write failed: commit refuses */
	int saved_errno;        /* errno of the first failure */
	const char *path;       /* destination (not copied: keep it alive until commit) */
	char tmp[4200];         /* temporary file name */
};

/* atomic_file_open creates the temporary file beside path. Returns MB_OK or MB_ERR_IO
 * (why names the file and the reason). */
int atomic_file_open(struct atomic_file *af, const char *path, char *why, size_t len);
/* atomic_file_write appends n bytes; a failure is remembered and reported by commit. */
void atomic_file_write(struct atomic_file *af, const void *buf, size_t n);
/* atomic_file_commit flushes the file to the disk, gives it the mode a plain fopen
 * would (0666 less the umask) and renames it over the destination. On any failure
 * (this one or an earlier write) the temporary file is removed and MB_ERR_IO is
 * returned with the destination and the reason in why. */
int atomic_file_commit(struct atomic_file *af, char *why, size_t len);
/* atomic_file_abort closes and removes the temporary file (no-op after commit). */
void atomic_file_abort(struct atomic_file *af);

#endif
