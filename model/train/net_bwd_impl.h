/*
 * net_bwd_impl.h - the trainable model's backward (net.h), once per precision, after
 * net_impl.h. The backward scratch (m->scratch) is laid out as six [T, d] rows of
 * buffers (t1, t2, dcat [T, 2d], dres, dcarry) and the FFN's own part after them.
 */

/* net_norm_bwd is rmsnorm_bwd over [T, d] adding the weight gradient into tensor norm's
 * (the kernel overwrites its dg; a pipeline step's micro-batches accumulate into one
 * gradient, so every write into the gradients adds). */
static void SFX(net_norm_bwd)(struct SFX(net) *m, const REAL *x, int norm, const REAL *dy,
			      REAL *dx)
{
	/* under sp the norm ran on this rank's token rows: so does its backward (x points
	 * at them, as for net_norm_fwd) */
	size_t o = SFX(net_sp_r0)(m) * m->d;
	SFX(net_op)(m, m->ops->rmsnorm_bwd(dy + o, x, SFX(W)(m, norm), SFX(net_sp_rows)(m),
					    m->d, m->o.norm_eps, dx + o, SFX(G)(m, norm), m->dgn));
}

/* net_head_bwd: dW_head += dlog^T fin; dfin = dlog W_head; through the norm into dx
 * (overwritten). */
static void SFX(net_head_bwd)(struct SFX(net) *m, int k, const REAL *x, int norm, REAL *dx,
			      REAL *tmp)
{
	size_t V = (size_t)m->L->t[m->L->head].rows, T = (size_t)m->T;
	const REAL *fin = m->fin + (size_t)k * T * m->d;
	const REAL *dlog = m->dlog + (size_t)k * T * V;
	SFX(net_mark)(m, NET_PH_DENSE);
	SFX(net_lin_bwd)(m, false, m->T, m->d, (int)V, fin, m->L->head, dlog, tmp, false);
	SFX(net_mark)(m, NET_PH_OTHER);
	/* the head is column-parallel over the vocabulary: its input gradient is partial */
	SFX(net_tp_out)(m, tmp, T * m->d);
	SFX(net_norm_bwd)(m, x, norm, tmp, dx);
}

/* net_embed_bwd adds dx [T, d] into the embedding rows of the tokens at offset shift. */
static void SFX(net_embed_bwd)(struct SFX(net) *m, int shift, const REAL *dx)
{
	const struct net_tensor *t = &m->L->t[m->L->embed];
	SFX(net_op)(m, m->ops->embed_bwd(dx, SFX(net_ids)(m, shift), m->T, m->d, (long)t->row0,
					  (long)t->rows, SFX(G)(m, m->L->embed)));
}

/* net_attention_bwd takes dres (the gradient of h) through the attention block and
 * its norm, adding to dres (which becomes the gradient of the block's input). */
static int SFX(net_attention_bwd)(struct SFX(net) *m, int i, REAL *dres, REAL *t1, REAL *t2)
{
	const struct net_block *b = &m->L->blk[i];
	const struct SFX(net_act) *a = &m->A[i];
	SFX(net_sp_gather)(m, dres);   /* o_proj's output gradient, whole */
	const REAL *x = a->ain;
	if (SFX(net_sp)(m) && a->ain == a->n1) {
		/* sp kept this rank's rows of n1: gathered again into the scratch (t1 and t2
		 * come before it; the MTP's dcat is not in use during a block) */
		size_t Td = (size_t)m->T * m->d, o = SFX(net_sp_r0)(m) * m->d;
		REAL *g = m->scratch + 2 * Td;
		SFX(net_op)(m, m->ops->copy(a->n1, (size_t)SFX(net_sp_rows)(m) * m->d, g + o));
		SFX(net_sp_gather)(m, g);
		x = g;
	}
	SFX(net_mark)(m, NET_PH_ATTENTION);
	SFX(net_pack)(m, b);
	/* NOTE: under bf16/fp8 the block saw a rounded copy of n1; its gradient passes
	 * straight through the rounding (the usual straight-through estimator). */
	int err = b->mla ? m->ops->mla_bwd(&m->mla, m->B, m->S, m->pk, x, a->aws, dres, t1,
					   m->gpk)
			 : m->ops->gqa_bwd(&m->gqa, m->B, m->S, m->pk, x, a->aws, dres, t1,
					   m->gpk);
	if (err)
		return err;
	SFX(net_unpack_grads)(m, b);
	SFX(net_mark)(m, NET_PH_OTHER);
	/* q and kv are column-parallel by head: the input gradient is partial */
	SFX(net_tp_out)(m, t1, (size_t)m->T * m->d);
	SFX(net_norm_bwd)(m, a->in, b->attn_norm, t1, t2);
	SFX(net_add_rows)(m, dres, t2);
	return MB_OK;
}

/* net_block_bwd turns dres, the gradient of block i's output, into that of its input. */
static int SFX(net_block_bwd)(struct SFX(net) *m, int i, REAL *dres)
{
	const struct net_block *b = &m->L->blk[i];
	const struct SFX(net_act) *a = &m->A[i];
	size_t Td = (size_t)m->T * m->d;
	REAL *t1 = m->scratch, *t2 = t1 + Td, *rest = m->scratch + 6 * Td;
	SFX(net_sp_gather)(m, dres);   /* the FFN's output gradient, whole */
	if (a->n2s) {
		/* sp kept this rank's rows of n2: gathered again into the scratch's third
		 * [T, d] (its view a->n2; the MTP's dcat is not in use during a block) */
		SFX(net_op)(m, m->ops->copy(a->n2s, (size_t)SFX(net_sp_rows)(m) * m->d,
					    a->n2 + SFX(net_sp_r0)(m) * m->d));
		SFX(net_sp_gather)(m, a->n2);
	}
	if (b->moe) {
		int err = SFX(net_moe_bwd)(m, i, dres, t1, rest);
		if (err)
			return err;
	} else {
		size_t ni = b->gate >= 0 ? (size_t)m->L->t[b->gate].rows : 0;
		SFX(net_mark)(m, NET_PH_DENSE);
		SFX(net_swiglu_bwd)(m, m->T, (int)ni, a->n2, b->gate, b->up, b->down, a->a, a->b,
				    a->act, dres, t1, false, rest, rest + (size_t)m->T * ni);
		SFX(net_mark)(m, NET_PH_OTHER);
		SFX(net_tp_out)(m, t1, Td);
	}
	SFX(net_norm_bwd)(m, a->h, b->ffn_norm, t1, t2);
	SFX(net_add_rows)(m, dres, t2);
	return SFX(net_attention_bwd)(m, i, dres, t1, t2);
}

/* net_mtp_bwd runs depth k's backward: its head, block and projection; the embedding
 * gradient is added, and dcarry becomes the gradient of the previous depth's hidden
 * state (it held the next depth's on entry when k < D). */
static int SFX(net_mtp_bwd)(struct SFX(net) *m, int k, REAL *dres, REAL *dcarry)
{
	int layers = (int)m->L->cfg.layers, bi = layers + k - 1, d = m->d;
	const struct net_block *b = &m->L->blk[bi];
	const struct SFX(net_mtp) *p = &m->M[k - 1];
	size_t Td = (size_t)m->T * d, r0 = SFX(net_sp_r0)(m);
	int t = SFX(net_sp_rows)(m);
	REAL *t1 = m->scratch, *t2 = t1 + Td, *dcat = t2 + Td;
	const REAL *hprev = k == 1 ? m->A[layers - 1].out : m->A[bi - 1].out;
	SFX(net_head_bwd)(m, k, m->A[bi].out, b->head_norm, dres, t1);
	if (k < m->D)
		SFX(net_add_rows)(m, dres, dcarry);
	int err = SFX(net_block_bwd)(m, bi, dres);
	if (err)
		return err;
	SFX(net_mark)(m, NET_PH_DENSE);
	SFX(net_lin_bwd)(m, true, t, 2 * d, d, p->cat + 2 * r0 * d, b->eh_proj, dres + r0 * d,
			 dcat + 2 * r0 * d, false);
	SFX(net_mark)(m, NET_PH_OTHER);
	SFX(net_op)(m, m->ops->split(t, d, dcat + 2 * r0 * d, t1 + r0 * d, t2 + r0 * d));
	SFX(net_norm_bwd)(m, p->emb + r0 * d, b->enorm, t1, dcat);
	SFX(net_sp_gather)(m, dcat);   /* the embedding takes every token's gradient */
	SFX(net_embed_bwd)(m, k, dcat);
	SFX(net_norm_bwd)(m, hprev, b->hnorm, t2, dcarry);
	return MB_OK;
}

int SFX(net_backward)(struct SFX(net) *m)
{
	int layers = (int)m->L->cfg.layers, err = MB_OK;
	size_t Td = (size_t)m->T * m->d;
	REAL *dres = m->scratch + 4 * Td, *dcarry = dres + Td;
	m->op_err = MB_OK;
	SFX(net_op)(m, m->ops->zero(m->g, m->L->total));
	m->tp_err = MB_OK;
	if (m->prof && m->prof->now) {
		m->prof->t0 = m->prof->now();
		m->prof->cur = NET_PH_OTHER;
	}
	for (int k = m->D; k >= 1 && !err; k--)
		err = SFX(net_mtp_bwd)(m, k, dres, dcarry);
	if (err)
		return err;
	SFX(net_head_bwd)(m, 0, m->A[layers - 1].out, m->L->final_norm, dres, m->scratch);
	if (m->D > 0)
		SFX(net_add_rows)(m, dres, dcarry);
	for (int i = layers - 1; i >= 0 && !err; i--)
		err = SFX(net_block_bwd)(m, i, dres);
	SFX(net_sp_gather)(m, dres);
	if (!err)
		SFX(net_embed_bwd)(m, 0, dres);
	SFX(net_tp_partial_sum)(m);
	SFX(net_mark)(m, NET_PH_OTHER);
	return err ? err : m->tp_err ? m->tp_err : m->op_err;
}
