/*
 * train_overlap.c - the forward and backward of two micro-batches overlapped over EP
 * communication (train_overlap.h).
 */
#include "train_overlap.h"

#include <string.h>

#include "cli.h"
#include "mpi_world.h"
#include "status.h"
#include "timer.h"

/* the overlap the profile clock drives progress for (one per process; its now() has
 * no context) */
static struct train_overlap *clock_of;

int train_overlap_check(int ep, int pp, int n_micro)
{
	if (ep < 2 || pp > 1)
		return cli_error_once("pass --ep 2 or more, without --pp",
				      "--ep-overlap overlaps EP dispatch/combine of one pipeline "
				      "stage (--ep %d, --pp %d)", ep, pp);
	if (n_micro < 2)
		return cli_error_once("pass a --micro-batch of at most half the rank's sequences",
				      "--ep-overlap runs a micro-batch's forward beside another's "
				      "backward: this rank has %d micro-batch", n_micro);
	if (!mpi_world_serialized())
		return cli_error_once("use an MPI that provides MPI_THREAD_SERIALIZED",
				      "--ep-overlap calls MPI from two threads, one at a time");
	return 0;
}

/* overlap_now is the models' profile clock: the chunk holding the baton (its own
 * thread, not an OpenMP worker) tests the other chunk's operation in flight, which is
 * what moves its data in Open MPI, and notes when it saw it complete. */
static double overlap_now(void)
{
	struct train_overlap *o = clock_of;
	double t = timer_now();
	if (!o || !o->pairing || !pthread_equal(pthread_self(), o->holder))
		return t;
	int other = 1 - o->turn;
	struct comm_req *r = o->pending[other];
	if (r && !(o->t_done[other] > 0) && comm_req_test(r))
		o->t_done[other] = t;
	return t;
}

/* take waits until chunk me holds the baton. */
static void take(struct train_overlap *o, int me)
{
	pthread_mutex_lock(&o->mu);
	while (o->turn != me)
		pthread_cond_wait(&o->cv, &o->mu);
	o->holder = pthread_self();
	pthread_mutex_unlock(&o->mu);
}

/* hand_over gives the baton to the other chunk and waits for it back; false (keeping
 * it) when the other chunk has finished. */
static bool hand_over(struct train_overlap *o, int me)
{
	pthread_mutex_lock(&o->mu);
	if (!o->live[1 - me]) {
		pthread_mutex_unlock(&o->mu);
		return false;
	}
	o->turn = 1 - me;
	pthread_cond_broadcast(&o->cv);
	while (o->turn != me)
		pthread_cond_wait(&o->cv, &o->mu);
	o->holder = pthread_self();
	pthread_mutex_unlock(&o->mu);
	return true;
}

/* overlap_hook is the EP communicators' wait hook: the holder has posted r; the other
 * chunk computes until it posts its own operation (or ends), then r is waited for. */
static void overlap_hook(void *ctx, struct comm_req *r)
{
	struct train_overlap *o = ctx;
	if (!o->pairing)
		return;
	int me = o->turn;
	double t0 = timer_now();
	o->pending[me] = r;
	o->t_done[me] = 0;
	bool away = hand_over(o, me);
	o->pending[me] = NULL;
	if (!away)
		return;
	double t1 = timer_now(), done = o->t_done[me];
	if (!(done > 0) && comm_req_test(r))
		done = t1;
	o->away_s += t1 - t0;
	o->hidden_s += (done > 0 && done < t1 ? done : t1) - t0;
	o->handoffs++;
	/* the chunk's own phases leave out the other's compute */
	struct net_profile *p = &o->prof[o->prof_of[me]];
	p->t0 += t1 - t0;
}

int train_overlap_init(struct train_overlap *o, struct comm *c0, struct comm *c1,
		       struct net_f32 *m0, struct net_f32 *m1)
{
	memset(o, 0, sizeof(*o));
	if (pthread_mutex_init(&o->mu, NULL))
		return MB_ERR_NOMEM;
	if (pthread_cond_init(&o->cv, NULL)) {
		pthread_mutex_destroy(&o->mu);
		return MB_ERR_NOMEM;
	}
	comm_set_wait_hook(c0, overlap_hook, o);
	comm_set_wait_hook(c1, overlap_hook, o);
	o->prof[0].now = o->prof[1].now = overlap_now;
	net_profile_set_f32(m0, &o->prof[0]);
	net_profile_set_f32(m1, &o->prof[1]);
	clock_of = o;
	return MB_OK;
}

void train_overlap_free(struct train_overlap *o, struct comm *c0, struct comm *c1)
{
	if (c0)
		comm_set_wait_hook(c0, NULL, NULL);
	if (c1)
		comm_set_wait_hook(c1, NULL, NULL);
	if (clock_of == o)
		clock_of = NULL;
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
}

/* One chunk of a pair: the forward (me 0) or the backward (me 1) of micro-batch k. */
/* A model's running phase stays open between its chunks, while the other model
 * computes: each chunk restarts its profile's clock when it starts and closes the
 * running phase when it ends, so neither model's phases hold the other's work. */
static void prof_restart(struct net_profile *p)
{
	if (p->now)
		p->t0 = p->now();
}

static void prof_close(struct net_profile *p)
{
	if (!p->now)
		return;
	double t = p->now();
	p->seconds[p->cur] += t - p->t0;
	p->t0 = t;
}

struct chunk {
	struct train_overlap *o;
	const struct train_overlap_job *j;
	int me, k, err;
	struct net_stats *st;   /* the forward's figures (me 0) */
};

static void *chunk_main(void *p)
{
	struct chunk *c = p;
	struct train_overlap *o = c->o;
	struct net_f32 *m = c->j->m[c->k % c->j->n_models];
	take(o, c->me);
	struct net_profile *pr = &o->prof[c->k % 2];
	prof_restart(pr);
	c->err = c->me == 0 ? net_forward_f32(m, c->j->rows(c->j->ctx, c->k), c->st)
		 : net_backward_f32(m);
	prof_close(pr);
	pthread_mutex_lock(&o->mu);
	o->live[c->me] = false;
	o->turn = 1 - c->me;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* pair runs F(k + 1) on a second thread beside B(k) on this one, F starting. */
static int pair(struct train_overlap *o, const struct train_overlap_job *j, int k,
		struct net_stats *st_next)
{
	struct chunk f = { o, j, 0, k + 1, MB_OK, st_next }, b = { o, j, 1, k, MB_OK, NULL };
	pthread_t th;
	o->turn = 0;
	o->live[0] = o->live[1] = true;
	o->prof_of[0] = (k + 1) % 2;
	o->prof_of[1] = k % 2;
	o->pairing = true;
	if (pthread_create(&th, NULL, chunk_main, &f)) {
		/* no thread: the two chunks one after the other, nothing overlapped */
		o->pairing = false;
		f.err = net_forward_f32(j->m[f.k % j->n_models], j->rows(j->ctx, f.k), st_next);
		b.err = net_backward_f32(j->m[k % j->n_models]);
		return f.err ? f.err : b.err;
	}
	chunk_main(&b);
	pthread_join(th, NULL);
	o->pairing = false;
	return f.err ? f.err : b.err;
}

int train_overlap_run(struct train_overlap *o, const struct train_overlap_job *j)
{
	struct net_stats st[2];
	prof_restart(&o->prof[0]);
	int err = net_forward_f32(j->m[0], j->rows(j->ctx, 0), &st[0]);
	prof_close(&o->prof[0]);
	for (int k = 0; !err && k < j->n_micro; k++) {
		if (k + 1 < j->n_micro) {
			err = pair(o, j, k, &st[(k + 1) % 2]);
		} else {
			prof_restart(&o->prof[k % 2]);
			err = net_backward_f32(j->m[k % j->n_models]);
			prof_close(&o->prof[k % 2]);
		}
		if (!err)
			j->done(j->ctx, j->m[k % j->n_models], k, &st[k % 2]);
	}
	return err;
}

void train_overlap_fold(struct train_overlap *o, struct net_profile *prof)
{
	for (int c = 0; c < 2; c++) {
		struct net_profile *p = &o->prof[c];
		for (int i = 0; i < NET_PH_COUNT; i++) {
			prof->seconds[i] += p->seconds[i];
			prof->gemm_seconds[i] += p->gemm_seconds[i];
			prof->gemm_flops[i] += p->gemm_flops[i];
			p->seconds[i] = p->gemm_seconds[i] = p->gemm_flops[i] = 0;
		}
	}
}
