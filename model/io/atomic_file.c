/*
 * atomic_file.c - temporary file, fsync, rename: see atomic_file.h.
 */
#define _GNU_SOURCE
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "status.h"

int atomic_file_open(struct atomic_file *af, const char *path, char *why, size_t len)
{
	af->fd = -1;
	af->failed = 0;
	af->saved_errno = 0;
	af->path = path;
	if (!path || !path[0] || strlen(path) + 16 > sizeof(af->tmp)) {
		snprintf(why, len, "invalid output path");
		return MB_ERR_ARG;
	}
	snprintf(af->tmp, sizeof(af->tmp), "%s.tmp.XXXXXX", path);
	af->fd = mkstemp(af->tmp);
	if (af->fd < 0) {
		snprintf(why, len, "cannot create a temporary file beside %s: %s", path,
			 strerror(errno));
		return MB_ERR_IO;
	}
	return MB_OK;
}

void atomic_file_write(struct atomic_file *af, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0 && !af->failed) {
		ssize_t w = write(af->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			af->failed = 1;
			af->saved_errno = w < 0 ? errno : EIO;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* sync_parent flushes the directory entry of path, so the rename survives a crash.
 * NOTE: best effort: some file systems refuse fsync on a directory. */
static void sync_parent(const char *path)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s", path);
	int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int atomic_file_commit(struct atomic_file *af, char *why, size_t len)
{
	mode_t mask = umask(0);
	umask(mask);
	if (!af->failed && fsync(af->fd) != 0)
		af->failed = 1, af->saved_errno = errno;
	if (!af->failed && fchmod(af->fd, 0666 & ~mask) != 0)
		af->failed = 1, af->saved_errno = errno;
	if (close(af->fd) != 0 && !af->failed)
		af->failed = 1, af->saved_errno = errno;
	af->fd = -1;
	/* NOTE: rename is atomic within one file system, and the temporary file lives in
	 * the destination's directory. */
	if (!af->failed && rename(af->tmp, af->path) != 0)
		af->failed = 1, af->saved_errno = errno;
	if (af->failed) {
		snprintf(why, len, "cannot write %s: %s", af->path, strerror(af->saved_errno));
		unlink(af->tmp);
		return MB_ERR_IO;
	}
	sync_parent(af->path);
	return MB_OK;
}

void atomic_file_abort(struct atomic_file *af)
{
	if (af->fd < 0)
		return;
	close(af->fd);
	af->fd = -1;
	unlink(af->tmp);
}
