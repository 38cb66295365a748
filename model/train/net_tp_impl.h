/*
 * net_tp_impl.h - the trainable model's tensor-parallel collectives and sequence
 * parallelism (net.h, net_options.sp), once per precision: included by net_impl.h after
 * the profiling helpers. The model calls the harness's struct net_tp_comm alone.
 */

/* ---- tensor parallelism ---- */

/* net_tp_call runs one TP collective (nothing on one rank, nor after an error): the
 * running phase is closed before it and restarted after, leaving its time out. */
static void SFX(net_tp_call)(struct SFX(net) *m, void *x, size_t n, int kind)
{
	if (m->L->part.tp == 1 || m->tp_err || n == 0)
		return;
	struct net_profile *p = m->prof;
	if (p && p->now)
		SFX(net_mark)(m, p->cur);
	const struct net_tp_comm *c = m->tp;
	m->tp_err = kind == 0 ? c->TP_SUM(c->ctx, x, n)
		  : kind == 1 ? c->sum_f64(c->ctx, x, n)
		  : kind == 2 ? c->max_f64(c->ctx, x, n)
		  : kind == 3 ? c->TP_RS(c->ctx, x, n) : c->TP_AG(c->ctx, x, n);
	if (p && p->now)
		p->t0 = p->now();
}

/* net_tp_sum sums x [n] over the TP group in place: the partial outputs of row-parallel
 * layers (forward) and the partial input gradients of column-parallel ones (backward). */
static void SFX(net_tp_sum)(struct SFX(net) *m, REAL *x, size_t n)
{
	SFX(net_tp_call)(m, x, n, 0);
}

/* ---- sequence parallelism (net_options.sp) ---- */

/* net_sp: the residual stream is split over the TP group's ranks by tokens. */
static bool SFX(net_sp)(const struct SFX(net) *m)
{
	return m->o.sp && m->L->part.tp > 1;
}

/* net_sp_r0 is this rank's first token row; net_sp_rows its rows (all T without sp). */
static size_t SFX(net_sp_r0)(const struct SFX(net) *m)
{
	return SFX(net_sp)(m) ? (size_t)m->L->part.tp_rank * (size_t)(m->T / m->L->part.tp) : 0;
}

static int SFX(net_sp_rows)(const struct SFX(net) *m)
{
	return SFX(net_sp)(m) ? m->T / m->L->part.tp : m->T;
}

/* net_tp_out completes the partial outputs x [T, d] of a row-parallel layer (forward)
 * or the partial input gradients of a column-parallel one (backward): summed over the
 * group, or under sp reduce-scattered (this rank's token rows alone are then defined). */
static void SFX(net_tp_out)(struct SFX(net) *m, REAL *x, size_t n)
{
	SFX(net_tp_call)(m, x, n, SFX(net_sp)(m) ? 3 : 0);
}

/* net_sp_gather all-gathers x [T, d] along tokens under sp (nothing otherwise): the
 * input of a column-parallel layer (forward) or a row-parallel one's output gradient. */
static void SFX(net_sp_gather)(struct SFX(net) *m, REAL *x)
{
	if (SFX(net_sp)(m))
		SFX(net_tp_call)(m, x, (size_t)m->T * m->d, 4);
}

/* net_tp_out_to completes the partial outputs full [T, d] of a row-parallel layer
 * (net_tp_out) into the residual-stream buffer res: full itself without sp; under sp
 * this rank's rows are copied out of full (unless res points at them). */
static void SFX(net_tp_out_to)(struct SFX(net) *m, REAL *full, REAL *res)
{
	size_t o = SFX(net_sp_r0)(m) * m->d;
	SFX(net_tp_out)(m, full, (size_t)m->T * m->d);
	if (SFX(net_sp)(m) && res != full + o)
		SFX(net_op)(m, m->ops->copy(full + o, (size_t)SFX(net_sp_rows)(m) * m->d, res));
}

/* net_norm_fwd: y = rmsnorm(x) over this rank's token rows of y [T, d]; x points at
 * those rows (a residual-stream buffer holds them alone). */
static void SFX(net_norm_fwd)(struct SFX(net) *m, const REAL *x, int norm, REAL *y)
{
	size_t o = SFX(net_sp_r0)(m) * m->d;
	SFX(net_op)(m, m->ops->rmsnorm_fwd(x, m->w + m->L->t[norm].off, SFX(net_sp_rows)(m),
					    m->d, m->o.norm_eps, y + o));
}

/* net_add_res: y += x over the residual stream's rows (this rank's under sp). */
static void SFX(net_add_res)(struct SFX(net) *m, REAL *y, const REAL *x)
{
	SFX(net_op)(m, m->ops->add(y, x, (size_t)SFX(net_sp_rows)(m) * m->d));
}

/* net_add_rows: y += x over this rank's token rows of [T, d]. */
static void SFX(net_add_rows)(struct SFX(net) *m, REAL *y, const REAL *x)
{
	size_t o = SFX(net_sp_r0)(m) * m->d;
	SFX(net_op)(m, m->ops->add(y + o, x + o, (size_t)SFX(net_sp_rows)(m) * m->d));
}

/* net_tp_partial_sum sums the tp_partial tensors' gradients over the TP group (one
 * packed collective): every TP rank then holds the whole gradient. */
static void SFX(net_tp_partial_sum)(struct SFX(net) *m)
{
	const struct net_layout *L = m->L;
	size_t at = 0;
	if (m->tp_n == 0 || L->part.tp == 1)
		return;
	for (int pass = 0; pass < 2; pass++) {
		at = 0;
		for (int i = 0; i < L->n; i++) {
			size_t n = (size_t)(L->t[i].rows * L->t[i].cols);
			if (!SFX(net_tp_summed)(m, i))
				continue;
			if (pass == 0)
				memcpy(m->tp_buf + at, m->g + L->t[i].off, n * sizeof(REAL));
			else
				memcpy(m->g + L->t[i].off, m->tp_buf + at, n * sizeof(REAL));
			at += n;
		}
		if (pass == 0)
			SFX(net_tp_sum)(m, m->tp_buf, m->tp_n);
	}
}
