/*
 * net_stage_impl.h - one pipeline stage of the trainable model (net.h, net_stage_*),
 * once per precision after net_bwd_impl.h: the forward and backward of one chunk (layer
 * range) of the rank's part, taking the incoming hidden state (tokens on the model's
 * first chunk) and giving the outgoing one, and the reverse for the gradients. The last
 * chunk runs the final norm, the head, the MTP modules and the losses as net_forward
 * does. Gradients accumulate (the pipeline sums a step's micro-batches; net_backward
 * overwrites instead).
 */

/* net_stage_clock restarts the attached profile's running phase (as net_forward does):
 * the time between the pipeline's ops is not the model's. */
static void SFX(net_stage_clock)(struct SFX(net) *m)
{
	if (m->prof && m->prof->now) {
		m->prof->t0 = m->prof->now();
		m->prof->cur = NET_PH_OTHER;
	}
}

/* net_chunk_range gives chunk c's layers [lo, hi) of the part; MB_ERR_ARG if none. */
static int SFX(net_chunk_range)(const struct SFX(net) *m, int c, int *lo, int *hi)
{
	const struct net_part *p = &m->L->part;
	int layers = (int)m->L->cfg.layers;
	if (p->n_ranges == 0 && c == 0) {
		*lo = 0;
		*hi = layers;
		return MB_OK;
	}
	if (c < 0 || c >= p->n_ranges || p->lo[c] >= p->hi[c])
		return MB_ERR_ARG;
	*lo = p->lo[c];
	*hi = p->hi[c];
	/* the model's ends need the embedding and the head on this part */
	if ((*lo == 0 && m->L->embed < 0) || (*hi == layers && m->L->head < 0))
		return MB_ERR_ARG;
	return MB_OK;
}

/* net_stage_losses runs the final norm, head and MTP modules from the last layer's
 * output, as net_forward's end. */
static int SFX(net_stage_losses)(struct SFX(net) *m, struct net_stats *st)
{
	int layers = (int)m->L->cfg.layers, err = MB_OK;
	st->main_loss = SFX(net_head_fwd)(m, 0, m->A[layers - 1].out, m->L->final_norm, 0);
	const REAL *hprev = m->A[layers - 1].out;
	for (int k = 1; k <= m->D && !err; k++) {
		const struct net_block *b = &m->L->blk[layers + k - 1];
		SFX(net_mtp_input)(m, k, hprev);
		err = SFX(net_block_fwd)(m, layers + k - 1, st);
		hprev = m->A[layers + k - 1].out;
		st->mtp_loss += SFX(net_head_fwd)(m, k, hprev, b->head_norm, k) / m->D;
	}
	return err;
}

int SFX(net_stage_forward)(struct SFX(net) *m, int chunk, const int32_t *tokens,
			   const REAL *in, REAL *out, struct net_stats *st)
{
	const struct model_config *c = &m->L->cfg;
	int lo, hi, err = SFX(net_chunk_range)(m, chunk, &lo, &hi);
	size_t ntok = (size_t)m->B * (m->S + 1 + m->D);
	if (err || (lo > 0 && !in) || (hi < c->layers && !out) || (m->L->part.tp > 1 && !m->tp))
		return MB_ERR_ARG;
	for (size_t j = 0; j < ntok; j++)
		if (tokens[j] < 0 || tokens[j] >= c->vocab)
			return MB_ERR_ARG;
	SFX(net_set_tokens)(m, tokens);
	memset(st, 0, sizeof(*st));
	/* a TP collective's error is kept until the stage returns it (net_tp_call) */
	m->tp_err = MB_OK;
	SFX(net_stage_clock)(m);
	/* under sp the residual stream holds this rank's rows (r0 on) alone */
	size_t r0d = SFX(net_sp_r0)(m) * m->d, Tr = (size_t)SFX(net_sp_rows)(m) * m->d;
	if (lo == 0)
		SFX(net_embed)(m, 0, SFX(net_sp)(m) ? m->scratch : m->A[0].in, m->A[0].in);
	else
		memcpy(m->A[lo].in, in + r0d, Tr * sizeof(REAL));
	for (int i = lo; i < hi && !err; i++)
		err = SFX(net_block_fwd)(m, i, st);
	if (!err && hi < c->layers)
		memcpy(out + r0d, m->A[hi - 1].out, Tr * sizeof(REAL));
	else if (!err)
		err = SFX(net_stage_losses)(m, st);
	st->loss = st->main_loss + m->o.mtp_weight * st->mtp_loss + st->balance_loss;
	SFX(net_mark)(m, NET_PH_OTHER);
	return err ? err : m->tp_err;
}

/* net_stage_head_bwd takes the losses back to the gradient of the last layer's output
 * (dres), as net_backward's start. */
static int SFX(net_stage_head_bwd)(struct SFX(net) *m, REAL *dres, REAL *dcarry)
{
	int layers = (int)m->L->cfg.layers, err = MB_OK;
	for (int k = m->D; k >= 1 && !err; k--)
		err = SFX(net_mtp_bwd)(m, k, dres, dcarry);
	if (err)
		return err;
	SFX(net_head_bwd)(m, 0, m->A[layers - 1].out, m->L->final_norm, dres, m->scratch);
	if (m->D > 0)
		SFX(net_add_rows)(m, dres, dcarry);
	return MB_OK;
}

int SFX(net_stage_backward)(struct SFX(net) *m, int chunk, const REAL *dout, REAL *din)
{
	int layers = (int)m->L->cfg.layers, lo, hi, err = SFX(net_chunk_range)(m, chunk, &lo, &hi);
	size_t Td = (size_t)m->T * m->d;
	REAL *dres = m->scratch + 4 * Td, *dcarry = dres + Td;
	if (err || (lo > 0 && !din) || (hi < layers && !dout))
		return MB_ERR_ARG;
	SFX(net_stage_clock)(m);
	if (hi == layers)
		err = SFX(net_stage_head_bwd)(m, dres, dcarry);
	else
		memcpy(dres, dout, Td * sizeof(REAL));
	for (int i = hi - 1; i >= lo && !err; i--)
		err = SFX(net_block_bwd)(m, i, dres);
	if (!err && lo == 0) {
		SFX(net_sp_gather)(m, dres);
		SFX(net_embed_bwd)(m, 0, dres);
	}
	else if (!err)
		memcpy(din, dres, Td * sizeof(REAL));
	SFX(net_mark)(m, NET_PH_OTHER);
	return err ? err : m->tp_err;
}

int SFX(net_stage_backward_input)(struct SFX(net) *m, int chunk, const REAL *dout, REAL *din)
{
	for (int i = 0; i < m->nwq; i++)
		if (m->wq[i].chunk == chunk)
			return MB_ERR_ARG;   /* this chunk's previous W has not run */
	m->wdefer = true;
	m->werr = false;
	m->wchunk = chunk;
	int err = SFX(net_stage_backward)(m, chunk, dout, din);
	m->wdefer = false;
	return err ? err : m->werr ? MB_ERR_NOMEM : MB_OK;
}

int SFX(net_stage_wgrad)(struct SFX(net) *m, int chunk)
{
	enum net_precision p = m->o.precision;
	int kept = 0;
	SFX(net_stage_clock)(m);
	SFX(net_mark)(m, NET_PH_DENSE);
	for (int i = 0; i < m->nwq; i++) {
		const struct SFX(net_wdef) *q = &m->wq[i];
		if (q->chunk != chunk) {
			m->wq[kept++] = *q;
			continue;
		}
		m->ops->linear_bwd_dw(p, q->low, q->t, q->in, q->out,
				      q->x ? q->x : m->wdy + q->xo, m->wdy + q->dy,
				      SFX(G)(m, q->tensor));
	}
	SFX(net_mark)(m, NET_PH_OTHER);
	m->nwq = kept;
	if (kept == 0)
		m->wdy_used = 0;
	return MB_OK;
}

int SFX(net_stage_tp_reduce)(struct SFX(net) *m)
{
	m->tp_err = MB_OK;
	SFX(net_tp_partial_sum)(m);
	return m->tp_err;
}
