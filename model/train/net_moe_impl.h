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

/* net_sigmoid returns 1 / (1 + exp(-x)). */
static REAL SFX(net_sigmoid)(REAL x)
{
	return 1 / (1 + EXP(-x));
}

/* net_route turns the gate logits in a->s into scores, selects each token's experts
 * (route_cpu on float copies: the selection is not differentiated; kept as it is with
 * fixed_route) and computes the gating weights, the loads and the expert order of the
 * T*K rows. */
static int SFX(net_route)(struct SFX(net) *m, int i)
{
	const struct model_config *c = &m->L->cfg;
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	int E = (int)c->routed_experts, K = (int)c->activated_experts, T = m->T;
	size_t TE = (size_t)T * E, TK = (size_t)T * K;
	float *fl = m->route_buf, *fw = fl + TE, *fb = fw + TK;
	const REAL *bias = SFX(W)(m, b->router_bias);
	for (size_t j = 0; j < TE; j++) {
		fl[j] = (float)a->s[j];
		a->s[j] = (REAL)SFX(net_sigmoid)(a->s[j]);
	}
	for (int e = 0; e < E; e++)
		fb[e] = (float)bias[e];
	struct route_config rc = { E, K, (int)c->n_groups, (int)c->topk_groups, 1, 0,
				   (float)c->route_scale };
	int err = m->fixed_route ? MB_OK : route_cpu(&rc, fl, c->expert_bias ? fb : NULL, T,
						      a->idx, fw);
	if (err)
		return err;
	for (int t = 0; t < T; t++) {
		double sum = 0;
		for (int k = 0; k < K; k++)
			sum += a->s[(size_t)t * E + a->idx[(size_t)t * K + k]];
		for (int k = 0; k < K; k++)
			a->wts[(size_t)t * K + k] = (REAL)(c->route_scale *
				a->s[(size_t)t * E + a->idx[(size_t)t * K + k]] / sum);
	}
	memset(a->load, 0, (size_t)E * sizeof(long));
	route_count(a->idx, T, K, a->load);
	size_t n = 0;
	a->eoff[0] = 0;
	for (int e = 0; e < E; e++) {
		for (size_t j = 0; j < TK; j++)
			if (a->idx[j] == e)
				a->order[n++] = (int32_t)j;
		a->eoff[e + 1] = (int32_t)n;
	}
	return MB_OK;
}

/* net_balance_fwd computes f [B, E] and returns the balance loss of block i. */
static double SFX(net_balance_fwd)(struct SFX(net) *m, int i)
{
	const struct model_config *c = &m->L->cfg;
	struct SFX(net_act) *a = &m->A[i];
	int E = (int)c->routed_experts, K = (int)c->activated_experts, S = m->S;
	double loss = 0;
	for (int b = 0; b < m->B; b++) {
		REAL *f = a->fbal + (size_t)b * E;
		memset(f, 0, (size_t)E * sizeof(REAL));
		for (int p = 0; p < S; p++)
			for (int k = 0; k < K; k++)
				f[a->idx[((size_t)b * S + p) * K + k]] += (REAL)((double)E / ((double)K * S));
		for (int p = 0; p < S; p++) {
			const REAL *s = a->s + ((size_t)b * S + p) * E;
			double sum = 0, dot = 0;
			for (int e = 0; e < E; e++)
				sum += s[e], dot += (double)f[e] * s[e];
			loss += dot / sum / S;
		}
	}
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
	size_t n = (size_t)t * width;
	if (t == 0)
		return;
	SFX(net_lin_bwd)(m, true, t, width, m->d, act, SFX(W)(m, wd), dy, db, false, SFX(G)(m, wd));
	for (size_t j = 0; j < n; j++) {
		REAL sg = SFX(net_sigmoid)(a[j]), dact = db[j];
		da[j] = dact * b[j] * sg * (1 + a[j] * (1 - sg));
		db[j] = dact * a[j] * sg;
	}
	SFX(net_lin_bwd)(m, true, t, m->d, width, x, SFX(W)(m, wg), da, dx, acc, SFX(G)(m, wg));
	SFX(net_lin_bwd)(m, true, t, m->d, width, x, SFX(W)(m, wu), db, dx, true, SFX(G)(m, wu));
}

/* An expert's forward or backward on its rows (bufs: the backward's dey, dxp, dea, deb). */
typedef void (*SFX(net_expert_fn))(struct SFX(net) *m, int i, int e, REAL **bufs);

/* net_expert_fwd: expert e's SwiGLU on its rows of block i. */
static void SFX(net_expert_fwd)(struct SFX(net) *m, int i, int e, REAL **bufs)
{
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	size_t r0 = (size_t)a->eoff[e], d = (size_t)m->d, im = (size_t)m->L->cfg.moe_inter_dim;
	(void)bufs;
	SFX(net_swiglu_fwd)(m, a->eoff[e + 1] - a->eoff[e], (int)im, a->xp + r0 * d,
			    SFX(net_expert_tensor)(b, e, 0), SFX(net_expert_tensor)(b, e, 1),
			    SFX(net_expert_tensor)(b, e, 2), a->ea + r0 * im, a->eb + r0 * im,
			    a->eact + r0 * im, a->ey + r0 * d);
}

/* net_expert_bwd: expert e's SwiGLU backward: its weights' gradients, its rows' dx. */
static void SFX(net_expert_bwd)(struct SFX(net) *m, int i, int e, REAL **bufs)
{
	const struct net_block *b = &m->L->blk[i];
	const struct SFX(net_act) *a = &m->A[i];
	size_t r0 = (size_t)a->eoff[e], d = (size_t)m->d, im = (size_t)m->L->cfg.moe_inter_dim;
	SFX(net_swiglu_bwd)(m, a->eoff[e + 1] - a->eoff[e], (int)im, a->xp + r0 * d,
			    SFX(net_expert_tensor)(b, e, 0), SFX(net_expert_tensor)(b, e, 1),
			    SFX(net_expert_tensor)(b, e, 2), a->ea + r0 * im, a->eb + r0 * im,
			    a->eact + r0 * im, bufs[0] + r0 * d, bufs[1] + r0 * d, false,
			    bufs[2] + r0 * im, bufs[3] + r0 * im);
}

/* net_experts_each runs fn for every routed expert of block i. NOTE: with a BLAS of n > 1
 * threads the experts run n at a time, one BLAS thread each: an expert gets only
 * T*K/E rows (192 at v3-small, 2048 tokens), where one GEMM split over two threads ran
 * at ~0.65-0.95 the rate of two single-threaded ones side by side (REPRODUCE.md). Each
 * expert writes its own rows, its own weights' gradients and nothing else, so the
 * result does not depend on the order. */
static void SFX(net_experts_each)(struct SFX(net) *m, int i, SFX(net_expert_fn) fn, REAL **bufs)
{
	int E = (int)m->L->cfg.routed_experts, n = openblas_get_num_threads();
	if (n <= 1 || m->o.experts_serial) {
		for (int e = 0; e < E; e++)
			fn(m, i, e, bufs);
		return;
	}
	openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic) num_threads(n)
	for (int e = 0; e < E; e++)
		fn(m, i, e, bufs);
	openblas_set_num_threads(n);
}

/* net_moe_fwd: out = h + shared(n2) + sum_k w_k expert_k(n2). */
static int SFX(net_moe_fwd)(struct SFX(net) *m, int i, struct net_stats *st)
{
	const struct model_config *c = &m->L->cfg;
	const struct net_block *b = &m->L->blk[i];
	struct SFX(net_act) *a = &m->A[i];
	int E = (int)c->routed_experts, K = (int)c->activated_experts, d = m->d;
	int im = (int)c->moe_inter_dim, is = im * (int)c->shared_experts;
	size_t n = (size_t)m->T * d;
	SFX(net_mark)(m, NET_PH_ROUTING);
	SFX(net_lin_fwd)(m, false, m->T, d, E, a->n2, SFX(W)(m, b->router), a->s);
	int err = SFX(net_route)(m, i);
	if (err)
		return err;
	for (int r = 0; r < m->T * K; r++)
		memcpy(a->xp + (size_t)r * d, a->n2 + (size_t)(a->order[r] / K) * d,
		       (size_t)d * sizeof(REAL));
	SFX(net_mark)(m, NET_PH_EXPERTS);
	SFX(net_experts_each)(m, i, SFX(net_expert_fwd), NULL);
	if (is > 0)
		SFX(net_swiglu_fwd)(m, m->T, is, a->n2, b->sh_gate, b->sh_up, b->sh_down, a->sa,
				    a->sb, a->sact, a->out);
	else
		memset(a->out, 0, n * sizeof(REAL));
	SFX(net_mark)(m, NET_PH_ROUTING);
	for (int r = 0; r < m->T * K; r++) {
		REAL wt = a->wts[a->order[r]], *o = a->out + (size_t)(a->order[r] / K) * d;
		const REAL *y = a->ey + (size_t)r * d;
		for (int j = 0; j < d; j++)
			o[j] += wt * y[j];
	}
	SFX(net_mark)(m, NET_PH_OTHER);
	for (size_t j = 0; j < n; j++)
		a->out[j] += a->h[j];
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
	int E = (int)c->routed_experts, K = (int)c->activated_experts;
	double rs = c->route_scale, alpha = m->o.balance_alpha / (m->B * (double)m->S);
	for (int t = 0; t < m->T; t++) {
		const REAL *s = a->s + (size_t)t * E, *f = a->fbal + (size_t)(t / m->S) * E;
		const int32_t *idx = a->idx + (size_t)t * K;
		REAL *g = ds + (size_t)t * E;
		double sel = 0, dot = 0, all = 0, bdot = 0;
		for (int k = 0; k < K; k++)
			sel += s[idx[k]], dot += (double)dw[(size_t)t * K + k] * a->wts[(size_t)t * K + k];
		for (int e = 0; e < E; e++)
			all += s[e], bdot += alpha * f[e] * s[e];
		for (int e = 0; e < E; e++)
			g[e] = (REAL)((alpha * f[e] - bdot / all) / all);
		for (int k = 0; k < K; k++)
			g[idx[k]] += (REAL)((rs * dw[(size_t)t * K + k] - dot) / sel);
		for (int e = 0; e < E; e++)
			g[e] = (REAL)(g[e] * s[e] * (1.0 - s[e]));
	}
}

/* net_moe_bwd: from dout [T, d], dn2 [T, d] (overwritten) and every MoE weight's
 * gradient. sc: scratch past the caller's part. */
static void SFX(net_moe_bwd)(struct SFX(net) *m, int i, const REAL *dout, REAL *dn2, REAL *sc)
{
	const struct model_config *c = &m->L->cfg;
	const struct net_block *b = &m->L->blk[i];
	const struct SFX(net_act) *a = &m->A[i];
	int E = (int)c->routed_experts, K = (int)c->activated_experts, d = m->d, T = m->T;
	int im = (int)c->moe_inter_dim, is = im * (int)c->shared_experts;
	size_t TK = (size_t)T * K;
	REAL *dey = sc, *dxp = dey + TK * d, *dea = dxp + TK * d, *deb = dea + TK * im;
	REAL *dsa = deb + TK * im, *dsb = dsa + (size_t)T * is, *dw = dsb + (size_t)T * is;
	REAL *ds = dw + TK;
	SFX(net_mark)(m, NET_PH_EXPERTS);
	memset(dn2, 0, (size_t)T * d * sizeof(REAL));
	if (is > 0)
		SFX(net_swiglu_bwd)(m, T, is, a->n2, b->sh_gate, b->sh_up, b->sh_down, a->sa, a->sb,
				    a->sact, dout, dn2, false, dsa, dsb);
	SFX(net_mark)(m, NET_PH_ROUTING);
	for (size_t r = 0; r < TK; r++) {
		const REAL *g = dout + (size_t)(a->order[r] / K) * d, *y = a->ey + r * d;
		REAL wt = a->wts[a->order[r]];
		double dot = 0;
		for (int j = 0; j < d; j++)
			dey[r * d + j] = wt * g[j], dot += (double)g[j] * y[j];
		dw[a->order[r]] = (REAL)dot;
	}
	SFX(net_mark)(m, NET_PH_EXPERTS);
	REAL *bufs[4] = { dey, dxp, dea, deb };
	SFX(net_experts_each)(m, i, SFX(net_expert_bwd), bufs);
	SFX(net_mark)(m, NET_PH_ROUTING);
	for (size_t r = 0; r < TK; r++) {
		REAL *o = dn2 + (size_t)(a->order[r] / K) * d;
		for (int j = 0; j < d; j++)
			o[j] += dxp[r * d + j];
	}
	SFX(net_gate_bwd)(m, i, dw, ds);
	SFX(net_lin_bwd)(m, false, T, d, E, a->n2, SFX(W)(m, b->router), ds, dn2,
			   true, SFX(G)(m, b->router));
	SFX(net_mark)(m, NET_PH_OTHER);
}
