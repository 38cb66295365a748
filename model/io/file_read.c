/*
 * file_read.c - the one way moebench reads an input file (model, hardware and baseline
 * JSON, result files): a regular file only (a FIFO, a device such as /dev/zero, a
 * directory are refused before a byte is read, so nothing blocks or reads forever),
 * and at most a size limit.
 */
#define _GNU_SOURCE
#include "model.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* kind_name names what a non-regular file is. */
static const char *kind_name(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ?
	       "a character device" : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ?
	       "a socket" : "not a regular file";
}

/* open_regular opens path for reading without blocking (a FIFO would wait for a
 * writer) and checks it is a regular file no larger than limit. Returns the fd or -1
 * with why written. */
static int open_regular(const char *path, long limit, char *why, size_t why_len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "%s is %s: input files must be regular files", path,
			 kind_name(st.st_mode));
	} else if (st.st_size > limit) {
		snprintf(why, why_len, "%s: %lld bytes, over the %ld-byte limit of an input file",
			 path, (long long)st.st_size, limit);
	} else {
		fcntl(fd, F_SETFL, 0);
		return fd;
	}
	close(fd);
	return -1;
}

int model_read_bytes(const char *path, long limit, char **out, size_t *len, char *why,
		     size_t why_len)
{
	size_t cap = 1 << 16, used = 0;
	int err = MB_OK, fd = open_regular(path, limit, why, why_len);
	char *buf = NULL;

	*out = NULL;
	if (fd < 0)
		return MB_ERR_IO;
	for (;;) {
		if (used + 1 >= cap || !buf) {
			char *grown = realloc(buf, cap *= 2);
			if (!grown) {
				snprintf(why, why_len, "%s: out of memory", path);
				err = MB_ERR_NOMEM;
				goto out;
			}
			buf = grown;
		}
		ssize_t n = read(fd, buf + used, cap - used - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
			err = MB_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		/* NOTE: the file may grow after fstat: the limit holds for what is read. */
		if (used > (size_t)limit) {
			snprintf(why, why_len, "%s: over the %ld-byte limit of an input file", path,
				 limit);
			err = MB_ERR_IO;
			goto out;
		}
	}
	buf[used] = '\0';
	*out = buf;
	*len = used;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

int model_read_file(const char *path, char **out, char *why, size_t why_len)
{
	size_t len;
	return model_read_bytes(path, MODEL_INPUT_MAX_BYTES, out, &len, why, why_len);
}
