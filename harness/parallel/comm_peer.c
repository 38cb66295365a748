/*
 * comm_peer.c - who the world's ranks are (see comm_impl.h): the pid and host of every
 * world rank, gathered once, so
 * that the line ending a run names the process behind a silent rank, not only its
 * number, and says whether it is stopped (SIGSTOP, a debugger) or gone (killed) when
 * it runs on this host: /proc tells that without asking the rank, which a rank that
 * stopped answering cannot do. No MPI here: the watchdog thread of comm_watch.c reads
 * the table too, and MPI is initialised for one thread only. The table is gathered at
 * start-up (mpi_world_agree), or with the CPU world for programs that skip that.
 */
#define _GNU_SOURCE
#include "comm_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

static struct {
	struct comm_peer *all;  /* world size entries once comm_peer_set ran; never freed */
	int n;
	char host[sizeof(((struct comm_peer *)0)->host)];
} peers;

void comm_peer_self(struct comm_peer *me)
{
	memset(me, 0, sizeof(*me));
	me->pid = (int)getpid();
	if (gethostname(me->host, sizeof(me->host) - 1) != 0)
		snprintf(me->host, sizeof(me->host), "?");
}

int comm_peer_set(const struct comm_peer *all, int n)
{
	struct comm_peer *t, me;
	/* NOTE: the world's processes do not change: a second world (the NCCL bootstrap's,
	 * another command in the same process) keeps the table the watchdog may be reading */
	if (peers.all)
		return MB_OK;
	if (!(t = malloc(sizeof(*t) * (size_t)n)))
		return MB_ERR_NOMEM;
	memcpy(t, all, sizeof(*t) * (size_t)n);
	for (int r = 0; r < n; r++)
		t[r].host[sizeof(t[r].host) - 1] = '\0';
	comm_peer_self(&me);
	memcpy(peers.host, me.host, sizeof(peers.host));
	peers.all = t;
	peers.n = n;
	return MB_OK;
}

/* proc_state reads the state letter of process pid from /proc (R, S, D, T, t, Z ...),
 * 0 when it could not be read, or 'X' when no such process exists. */
static char proc_state(int pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 'X' : 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses, so the last ')' */
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

bool comm_peer_known(void)
{
	return peers.all != NULL;
}

int comm_peer_world_rank(const struct comm *c, int r)
{
	return c->world_ranks ? c->world_ranks[r] : r;
}

enum comm_peer_state comm_peer_state(const struct comm *c, int r)
{
	int w = comm_peer_world_rank(c, r);
	if (!peers.all || w < 0 || w >= peers.n || strcmp(peers.all[w].host, peers.host))
		return COMM_PEER_UNKNOWN;
	switch (proc_state(peers.all[w].pid)) {
	case 'T': case 't': return COMM_PEER_STOPPED;
	case 'Z': case 'X': return COMM_PEER_GONE;
	case 0: return COMM_PEER_UNKNOWN;
	default: return COMM_PEER_RUNNING;
	}
}

void comm_peer_name(const struct comm *c, int r, char *buf, size_t len)
{
	static const char *const said[] = {
		[COMM_PEER_UNKNOWN] = "", [COMM_PEER_RUNNING] = ", running",
		[COMM_PEER_STOPPED] = ", stopped", [COMM_PEER_GONE] = ", gone",
	};
	int w = comm_peer_world_rank(c, r);
	if (!peers.all || w < 0 || w >= peers.n) {
		snprintf(buf, len, "rank %d (world rank %d)", r, w);
		return;
	}
	snprintf(buf, len, "rank %d (world rank %d, pid %d on %s%s)", r, w, peers.all[w].pid,
		 peers.all[w].host, said[comm_peer_state(c, r)]);
}
