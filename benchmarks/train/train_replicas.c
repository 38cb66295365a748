/*
 * train_replicas.c - micro-batches side by side on threads (train_replicas.h).
 */
#include "train_replicas.h"

#include <string.h>

#include <cblas.h>   /* openblas_set_num_threads (OpenBLAS's cblas.h) */

#include "cli.h"
#include "par_team.h"
#include "status.h"

int train_replicas_check(long per_rank, long *micro, long replicas, int tp, int ep, int pp,
			 bool overlap)
{
	if (replicas <= 1)
		return 0;
	if (tp > 1 || ep > 1 || pp > 1 || overlap)
		return cli_error_once("leave --replicas out with --tp, --ep, --pp and --ep-overlap "
				      "(or run ranks with --dp instead)", "--replicas: the "
				      "micro-batches side by side would call the layout's "
				      "collectives from several threads");
	if (!*micro && per_rank % replicas)
		return cli_error_once("choose --replicas dividing the rank's sequences (e.g. "
				      "--batch 8 --replicas 2)", "--replicas %ld: the rank's %ld "
				      "sequences do not split into %ld micro-batches", replicas,
				      per_rank, replicas);
	if (!*micro)
		*micro = per_rank / replicas;
	if (per_rank % *micro || (per_rank / *micro) % replicas)
		return cli_error_once("choose --replicas dividing the rank's micro-batches",
				      "--replicas %ld: %ld micro-batches of %ld sequences do not "
				      "make whole waves of %ld", replicas, per_rank / *micro,
				      *micro, replicas);
	return 0;
}

/* One wave, bundled for its tasks. */
struct replica_wave {
	struct net_f32 *const *m;
	const int32_t *const *rows;
	struct net_stats *st;
	int err[TRAIN_REPLICAS_MAX];
};

static void replica_task(void *ctx, long i, void *scratch)
{
	struct replica_wave *w = ctx;
	(void)scratch;
	w->err[i] = net_forward_f32(w->m[i], w->rows[i], &w->st[i]);
	if (!w->err[i])
		w->err[i] = net_backward_f32(w->m[i]);
}

int train_replicas_run(struct net_f32 *const *m, const int32_t *const *rows, int n,
		       struct net_stats *st, struct net_profile *prof, struct net_profile *into)
{
	struct replica_wave w = { m, rows, st, { 0 } };
	if (n < 1 || n > TRAIN_REPLICAS_MAX)
		return MB_ERR_ARG;
	int blas = openblas_get_num_threads();
	openblas_set_num_threads(1);
	int err = par_for(n, n, replica_task, &w, 0);
	openblas_set_num_threads(blas);
	double inv = 1.0 / n;
	for (int i = 0; into && i < n; i++)
		for (int ph = 0; ph < NET_PH_COUNT; ph++) {
			into->seconds[ph] += prof[i].seconds[ph] * inv;
			into->gemm_seconds[ph] += prof[i].gemm_seconds[ph] * inv;
			into->gemm_flops[ph] += prof[i].gemm_flops[ph];
			prof[i].seconds[ph] = prof[i].gemm_seconds[ph] = prof[i].gemm_flops[ph] = 0;
		}
	for (int i = 0; i < n && !err; i++)
		err = w.err[i];
	return err;
}

int train_replicas_open(struct train_replicas *p, const struct net_layout *L, struct net_f32 *m0,
			int r, int micro, int seq, struct net_profile *prof)
{
	memset(p, 0, sizeof(*p));
	p->r = r > 1 ? r : 1;
	p->m[0] = m0;
	p->into = r > 1 ? prof : NULL;
	int err = r > TRAIN_REPLICAS_MAX ? MB_ERR_ARG : MB_OK;
	for (int i = 1; i < p->r && !err; i++) {
		err = net_create_f32(L, net_options_of_f32(m0), micro, seq, 0, &p->m[i]);
		if (!err)
			err = net_share_weights_f32(p->m[i], m0);
	}
	for (int i = 0; i < p->r && p->into && !err; i++) {
		p->prof[i].now = prof->now;
		net_profile_set_f32(p->m[i], &p->prof[i]);
	}
	return err;
}

void train_replicas_close(struct train_replicas *p)
{
	for (int i = 1; i < p->r; i++)
		net_destroy_f32(p->m[i]);
	memset(p, 0, sizeof(*p));
}

/* replicas_take adds model i's gradients, loads and losses (one of n micro-batches). */
static void replicas_take(struct train_replicas *p, int i, struct train_dp *dp, int n,
			  double *x)
{
	const long *load[1 + 1024 + 16];
	const struct net_layout *L = net_layout_of_f32(p->m[i]);
	for (int b = 0; b < L->blocks; b++)
		load[b] = net_expert_load_f32(p->m[i], b);
	train_dp_accumulate(dp, net_grads_f32(p->m[i]), load);
	x[0] += p->st[i].main_loss / n;
	x[1] += p->st[i].mtp_loss / n;
	x[2] += p->st[i].loss / n;
}

int train_replicas_micro(struct train_replicas *p, struct train_dp *dp, int n,
			 const int32_t *(*rows)(void *ctx, int k), void *ctx, double *x)
{
	const int32_t *rw[TRAIN_REPLICAS_MAX];
	int err = p->r >= 1 && p->m[0] ? MB_OK : MB_ERR_ARG;
	for (int k0 = 0; k0 < n && !err; k0 += p->r) {
		int w = n - k0 < p->r ? n - k0 : p->r;
		for (int i = 0; i < w; i++)
			rw[i] = rows(ctx, k0 + i);
		if (w == 1) {   /* in turn: no thread, the model's own clock */
			err = net_forward_f32(p->m[0], rw[0], &p->st[0]);
			if (!err)
				err = net_backward_f32(p->m[0]);
		} else {
			err = train_replicas_run(p->m, rw, w, p->st, p->prof, p->into);
		}
		for (int i = 0; i < w && !err; i++)
			replicas_take(p, i, dp, n, x);
	}
	return err;
}
