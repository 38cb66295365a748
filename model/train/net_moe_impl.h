/*
 * net_moe_impl.h - the MoE FFN of the trainable model, forward and backward, once per
 * precision (included by net_impl.h): DeepSeek-V3 2.1.2's gate (sigmoid affinities,
 * e_score_correction_bias for the selection only, group-limited top-k by
 * kernels/moe route_cpu, weights s / sum(selected s) * route_scale), routed experts on
 * the rows gathered in expert order, shared experts on every token, no dropping; and the
 * complementary sequence-wise balance loss (eq. 17-20):
 *   f_i = E / (K S) * #{t in the sequence : i selected},  P_i = 1/S sum_t s_i,t / sum_j s_j,t,
 *   L_bal = alpha * sum_i f_i P_i   (averaged over the B sequences; f carries no gradient).
 */

/* net_route turns the gate logits in a->s into scores, selects each token's experts
 * (kept as they are with fixed_route) and computes the gating weights, the loads and the
 * expert order of the T*K rows (the op table's route). */
static int SFX(net_route)(struct SFX(net) *m, int i)
{
	const struct model_config *c = &m->L->cfg;
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	struct route_config rc = { (int)c->routed_experts, (int)c->activated_experts,
				   (int)c->n_groups, (int)c->topk_groups, 1, 0,
				   (float)c->route_scale };
	const REAL *bias = c->expert_bias ? SFX(W)(m, b->router_bias) : NULL;
	return m->ops->route(&rc, m->T, m->fixed_route, bias, c->route_scale, a->s, m->route_buf,
			     a->idx, a->wts, a->load, a->order, a->eoff);
}

/* net_balance_fwd computes f [B, E] and returns the balance loss of block i. */
static double SFX(net_balance_fwd)(struct SFX(net) *m, int i)
{
	const struct model_config *c = &m->L->cfg;
	struct SFX(net_act) *a = &m->A[i];
	double loss = 0;
	SFX(net_op)(m, m->ops->balance_fwd(a->idx, a->s, m->B, m->S, (int)c->routed_experts,
					    (int)c->activated_experts, a->fbal, &loss));
	return m->o.balance_alpha * loss / m->B;
}

/* net_expert_tensor returns the tensor of expert e's matrix j (0 gate, 1 up, 2 down). */
static int SFX(net_expert_tensor)(const struct net_block *b, int e, int j)
{
	return b->experts + 3 * e + j;
}

/* net_swiglu_bwd: from dy [t, d] and the forward's a, b, act: the three weights'
 * gradients (added) and dx [t, d] (added when acc). da, db: [t, width] scratch. */
static void SFX(net_swiglu_bwd)(struct SFX(net) *m, int t, int width, const REAL *x, int wg,
				int wu, int wd, const REAL *a, const REAL *b, const REAL *act,
				const REAL *dy, REAL *dx, bool acc, REAL *da, REAL *db)
{
	if (t == 0)
		return;
	SFX(net_lin_bwd)(m, true, t, width, m->d, act, wd, dy, db, false);
	SFX(net_op)(m, m->ops->swiglu_bwd(db, a, b, t, width, da, db));
	SFX(net_lin_bwd)(m, true, t, m->d, width, x, wg, da, dx, acc);
	SFX(net_lin_bwd)(m, true, t, m->d, width, x, wu, db, dx, true);
}

/* The backward's buffers of the routed rows (net_expert_bwd): dey in, dxp, dea, deb out. */
struct SFX(net_ebufs) {
	const REAL *dey;
	REAL *dxp, *dea, *deb;
};

/* An expert's forward or backward on its rows (bufs: the backward's, NULL forward). */
typedef void (*SFX(net_expert_fn))(struct SFX(net) *m, int i, int e,
				   const struct SFX(net_ebufs) *bufs);

/* net_expert_fwd: held expert e's SwiGLU on its rows of block i. */
static void SFX(net_expert_fwd)(struct SFX(net) *m, int i, int e,
				const struct SFX(net_ebufs) *bufs)
{
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	size_t r0 = (size_t)a->eoff[e], d = (size_t)m->d;
	size_t im = (size_t)m->L->t[b->experts].rows;   /* TP: this rank's slice */
	(void)bufs;
	SFX(net_swiglu_fwd)(m, a->eoff[e + 1] - a->eoff[e], (int)im, a->xp + r0 * d,
			    SFX(net_expert_tensor)(b, e, 0), SFX(net_expert_tensor)(b, e, 1),
			    SFX(net_expert_tensor)(b, e, 2), a->ea + r0 * im, a->eb + r0 * im,
			    a->eact + r0 * im, a->ey + r0 * d);
}

/* net_expert_bwd: held expert e's SwiGLU backward: its weights' gradients, its rows' dx. */
static void SFX(net_expert_bwd)(struct SFX(net) *m, int i, int e,
				const struct SFX(net_ebufs) *bf)
{
	const struct net_block *b = &m->L->blk[i];
	const struct SFX(net_act) *a = &m->A[i];
	size_t r0 = (size_t)a->eoff[e], d = (size_t)m->d;
	size_t im = (size_t)m->L->t[b->experts].rows;
	SFX(net_swiglu_bwd)(m, a->eoff[e + 1] - a->eoff[e], (int)im, a->xp + r0 * d,
			    SFX(net_expert_tensor)(b, e, 0), SFX(net_expert_tensor)(b, e, 1),
			    SFX(net_expert_tensor)(b, e, 2), a->ea + r0 * im, a->eb + r0 * im,
			    a->eact + r0 * im, bf->dey + r0 * d, bf->dxp + r0 * d, false,
			    bf->dea + r0 * im, bf->deb + r0 * im);
}

/* One task of the experts' team: expert e of block i. */
struct SFX(net_expert_job) {
	struct SFX(net) *m;
	int i;
	SFX(net_expert_fn) fn;
	const struct SFX(net_ebufs) *bufs;
};

static void SFX(net_expert_task)(void *ctx, long e, void *scratch)
{
	const struct SFX(net_expert_job) *j = ctx;
	(void)scratch;
	j->fn(j->m, j->i, (int)e, j->bufs);
}

/* net_experts_each runs fn for the experts held (local index e from 0; all of them on
 * one rank) of block i. NOTE: with a BLAS of n > 1 threads the experts run n at a time,
 * one BLAS thread each: an expert gets only T*K/E rows (192 at v3-small, 2048 tokens),
 * where one GEMM split over two threads ran at ~0.65-0.95 the rate of two
 * single-threaded ones side by side (REPRODUCE.md). Each expert writes its own rows, its
 * own weights' gradients and nothing else, so the result does not depend on the order. */
static void SFX(net_experts_each)(struct SFX(net) *m, int i, int experts, SFX(net_expert_fn) fn,
				  const struct SFX(net_ebufs) *bufs)
{
	int n = openblas_get_num_threads();
	/* NOTE: zb-h1's deferred weight gradients (wdefer) queue in one list: serial then */
	if (n <= 1 || m->o.experts_serial || m->wdefer || m->ops->one_thread) {
		for (int e = 0; e < experts; e++)
			fn(m, i, e, bufs);
		return;
	}
	/* NOTE: a joined team (par_team.h), not OpenMP: libgomp's idle workers spin into
	 * the cores the next phase's BLAS threads need */
	struct SFX(net_expert_job) j = { m, i, fn, bufs };
	openblas_set_num_threads(1);
	if (m->prof)
		m->prof->team = n;
	if (par_for(n, experts, SFX(net_expert_task), &j, 0))
		for (int e = 0; e < experts; e++)
			fn(m, i, e, bufs);
	if (m->prof)
		m->prof->team = 0;
	openblas_set_num_threads(n);
}

/* net_experts_fwd runs the experts held on their rows xp, at offsets eoff. */
static void SFX(net_experts_fwd)(struct SFX(net) *m, int i, int experts)
{
	SFX(net_experts_each)(m, i, experts, SFX(net_expert_fwd), NULL);
}

/* net_ep_fwd is the routed part of block i under expert parallelism: dispatch the
 * tokens' rows to the experts' ranks, run the experts held, combine the weighted
 * outputs back and add them to a->out (the shared experts' output). */
static int SFX(net_ep_fwd)(struct SFX(net) *m, int i, REAL *y)
{
	const struct net_comm *c = m->comm;
	struct SFX(net_act) *a = &m->A[i];
	int K = (int)m->L->cfg.activated_experts, T = m->T, d = m->d;
	int El = m->L->expert_hi - m->L->expert_lo;
	size_t TK = (size_t)T * K, n = (size_t)T * d;
	float *fw = m->route_buf;
	long counts[1024];
	REAL *sum = m->scratch;
	if (!c || !c->ep_dispatch || El > 1024)
		return MB_ERR_ARG;
	for (size_t j = 0; j < TK; j++)
		fw[j] = (float)a->wts[j];
	SFX(net_mark)(m, NET_PH_EP);
	int err = c->ep_dispatch(c->ctx, i, sizeof(REAL), a->idx, fw, T, a->n2, a->xp, m->rows_max,
				 &a->rows, counts);
	if (err)
		return err;
	a->eoff[0] = 0;
	for (int e = 0; e < El; e++)
		a->eoff[e + 1] = a->eoff[e] + (int32_t)counts[e];
	SFX(net_mark)(m, NET_PH_EXPERTS);
	SFX(net_experts_fwd)(m, i, El);
	SFX(net_mark)(m, NET_PH_EP);
	err = c->ep_combine(c->ctx, i, sizeof(REAL), a->ey, sum);
	SFX(net_mark)(m, NET_PH_ROUTING);
	if (!err)
		SFX(net_op)(m, m->ops->add(y, sum, n));
	return err;
}

/* net_moe_fwd: out = h + shared(n2) + sum_k w_k expert_k(n2). */
static int SFX(net_moe_fwd)(struct SFX(net) *m, int i, struct net_stats *st)
{
	const struct model_config *c = &m->L->cfg;
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	int E = (int)c->routed_experts, K = (int)c->activated_experts, d = m->d;
	int is = b->sh_gate >= 0 ? (int)m->L->t[b->sh_gate].rows : 0;
	size_t n = (size_t)m->T * d;
	/* under sp the partial sums fill the scratch past net_ep_fwd's [T, d] */
	REAL *y = SFX(net_sp)(m) ? m->scratch + n : a->out;
	SFX(net_mark)(m, NET_PH_ROUTING);
	SFX(net_lin_fwd)(m, false, m->T, d, E, a->n2, SFX(W)(m, b->router), a->s);
	int err = SFX(net_route)(m, i);
	if (err)
		return err;
	bool ep = m->L->part.ep > 1;
	if (!ep)
		SFX(net_op)(m, m->ops->permute_rows(a->n2, a->order, (long)m->T * K, K, d, a->xp));
	SFX(net_mark)(m, NET_PH_EXPERTS);
	if (!ep)
		SFX(net_experts_fwd)(m, i, E);
	if (is > 0)
		SFX(net_swiglu_fwd)(m, m->T, is, a->n2, b->sh_gate, b->sh_up, b->sh_down, a->sa,
				    a->sb, a->sact, y);
	else
		SFX(net_op)(m, m->ops->zero(y, n));
	SFX(net_mark)(m, NET_PH_ROUTING);
	if (ep && (err = SFX(net_ep_fwd)(m, i, y)))
		return err;
	if (!ep)
		SFX(net_op)(m, m->ops->unpermute_add(a->ey, a->wts, a->order, (long)m->T * K, K, d,
						      y));
	SFX(net_mark)(m, NET_PH_OTHER);
	/* the experts' down projections are row-parallel (ETP = TP): partial sums */
	SFX(net_tp_out_to)(m, y, a->out);
	SFX(net_add_res)(m, a->out, a->h);
	st->balance_loss += SFX(net_balance_fwd)(m, i);
	long mx = 0, tot = 0;
	for (int e = 0; e < E; e++)
		mx = a->load[e] > mx ? a->load[e] : mx, tot += a->load[e];
	double ratio = tot ? (double)mx * E / (double)tot : 0;
	st->load_max_mean = ratio > st->load_max_mean ? ratio : st->load_max_mean;
	return MB_OK;
}

/* net_gate_bwd writes ds [T, E], the gradient of the scores through the gating
 * weights (dw [T, K]) and the balance loss, then takes it through the sigmoid. */
static void SFX(net_gate_bwd)(struct SFX(net) *m, int i, const REAL *dw, REAL *ds)
{
	const struct model_config *c = &m->L->cfg;
	const struct SFX(net_act) *a = &m->A[i];
	double alpha = m->o.balance_alpha / (m->B * (double)m->S);
	SFX(net_op)(m, m->ops->gate_bwd(a->s, a->fbal, a->idx, a->wts, dw, m->T, m->S,
					 (int)c->routed_experts, (int)c->activated_experts,
					 c->route_scale, alpha, ds));
}

/* net_experts_bwd runs the backward of the experts held on their rows: dxp from dey. */
static void SFX(net_experts_bwd)(struct SFX(net) *m, int i, int experts, const REAL *dey,
				 REAL *dxp, REAL *dea, REAL *deb)
{
	struct SFX(net_ebufs) bf = { dey, dxp, dea, deb };
	SFX(net_experts_each)(m, i, experts, SFX(net_expert_bwd), &bf);
}

/* net_ep_bwd is the routed part of block i's backward under expert parallelism: the
 * combine's backward brings w * dout to the experts' rows (dey) and dout . y back as dw;
 * the experts' backward; the dispatch's backward sums the rows' input gradients back
 * into dn2. sum: [T, d] scratch. */
static int SFX(net_ep_bwd)(struct SFX(net) *m, int i, const REAL *dout, REAL *dn2, REAL *dey,
			   REAL *dxp, REAL *dea, REAL *deb, REAL *dw, REAL *sum)
{
	const struct net_comm *c = m->comm;
	const struct SFX(net_act) *a = &m->A[i];
	size_t n = (size_t)m->T * m->d;
	SFX(net_mark)(m, NET_PH_EP);
	int err = c->ep_combine_bwd(c->ctx, i, sizeof(REAL), dout, a->ey, dey, dw);
	if (err)
		return err;
	SFX(net_mark)(m, NET_PH_EXPERTS);
	SFX(net_experts_bwd)(m, i, m->L->expert_hi - m->L->expert_lo, dey, dxp, dea, deb);
	SFX(net_mark)(m, NET_PH_EP);
	err = c->ep_dispatch_bwd(c->ctx, i, sizeof(REAL), dxp, sum);
	SFX(net_mark)(m, NET_PH_ROUTING);
	if (!err)
		SFX(net_op)(m, m->ops->add(dn2, sum, n));
	return err;
}

/* net_moe_bwd: from dout [T, d], dn2 [T, d] (overwritten) and every MoE weight's
 * gradient. sc: scratch past the caller's part. */
static int SFX(net_moe_bwd)(struct SFX(net) *m, int i, const REAL *dout, REAL *dn2, REAL *sc)
{
	const struct model_config *c = &m->L->cfg;
	const struct net_block *b = &m->L->blk[i];
	const struct SFX(net_act) *a = &m->A[i];
	int E = (int)c->routed_experts, K = (int)c->activated_experts, d = m->d, T = m->T;
	int im = (int)m->L->t[b->experts].rows;
	int is = b->sh_gate >= 0 ? (int)m->L->t[b->sh_gate].rows : 0;
	size_t TK = (size_t)T * K, R = (size_t)m->rows_max;
	REAL *dey = sc, *dxp = dey + R * d, *dea = dxp + R * d, *deb = dea + R * im;
	REAL *dsa = deb + R * im, *dsb = dsa + (size_t)T * is, *dw = dsb + (size_t)T * is;
	REAL *ds = dw + TK, *sum = ds + (size_t)T * E;
	bool ep = m->L->part.ep > 1;
	SFX(net_mark)(m, NET_PH_EXPERTS);
	SFX(net_op)(m, m->ops->zero(dn2, (size_t)T * d));
	if (is > 0)
		SFX(net_swiglu_bwd)(m, T, is, a->n2, b->sh_gate, b->sh_up, b->sh_down, a->sa, a->sb,
				    a->sact, dout, dn2, false, dsa, dsb);
	SFX(net_mark)(m, NET_PH_ROUTING);
	if (ep) {
		int err = SFX(net_ep_bwd)(m, i, dout, dn2, dey, dxp, dea, deb, dw, sum);
		if (err)
			return err;
		goto gate;
	}
	SFX(net_op)(m, m->ops->combine_bwd(dout, a->ey, a->wts, a->order, (long)TK, K, d, dey,
					    dw));
	SFX(net_mark)(m, NET_PH_EXPERTS);
	SFX(net_experts_bwd)(m, i, E, dey, dxp, dea, deb);
	SFX(net_mark)(m, NET_PH_ROUTING);
	SFX(net_op)(m, m->ops->unpermute_add(dxp, NULL, a->order, (long)TK, K, d, dn2));
gate:
	/* under TP the expert outputs were partial: so are dw (their dot products with
	 * dout) and the experts' input gradient; the router's part is added once after
	 * (EP runs with TP 1: nothing to sum) */
	SFX(net_tp_out)(m, dn2, (size_t)T * d);
	SFX(net_tp_sum)(m, dw, TK);
	SFX(net_gate_bwd)(m, i, dw, ds);
	SFX(net_lin_bwd)(m, false, T, d, E, a->n2, b->router, ds, dn2, true);
	SFX(net_mark)(m, NET_PH_OTHER);
	return MB_OK;
}
