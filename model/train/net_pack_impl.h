/*
 * net_pack_impl.h - the attention blocks' weights packed for kernels/attention and their
 * gradients unpacked (net.h), once per precision: included by net_impl.h before the
 * attention's forward.
 */

/* net_attn_items lists the attention tensors of block b with their offset in the
 * packed (kernels/attention) vector; returns how many. */
static int SFX(net_attn_items)(const struct SFX(net) *m, const struct net_block *b,
			       int tensor[8], size_t off[8])
{
	int n = 0;
	if (b->mla) {
		struct mla_layout l;
		mla_layout_of(&m->mla, &l);
		int t[7] = { b->q_a, b->q_a_norm, b->q_b, b->kv_a, b->kv_a_norm, b->kv_b, b->o };
		size_t o[7] = { l.wq_a, l.q_norm, l.wq_b, l.wkv_a, l.kv_norm, l.wkv_b, l.wo };
		for (int i = 0; i < 7; i++)
			if (t[i] >= 0)
				tensor[n] = t[i], off[n++] = o[i];
		return n;
	}
	struct gqa_layout l;
	gqa_layout_of(&m->gqa, &l);
	int t[4] = { b->q, b->k, b->v, b->o };
	size_t o[4] = { l.wq, l.wk, l.wv, l.wo };
	for (int i = 0; i < 4; i++)
		tensor[n] = t[i], off[n++] = o[i];
	return n;
}

/* net_pack_rows gives the rows of tensor i of block b the attention block uses: all of
 * them, or the kv head of this TP rank's query heads when k and v are whole here. */
static void SFX(net_pack_rows)(const struct SFX(net) *m, const struct net_block *b, int i,
			       int *r0, int *rows)
{
	*r0 = 0;
	*rows = (int)m->L->t[i].rows;
	if (m->kv_rep && (i == b->k || i == b->v)) {
		*r0 = m->kv_row0;
		*rows = m->gqa.head_dim;
	}
}

/* net_pack writes block b's attention weights, [out, in] here, into the block's
 * [in, out] vector m->pk, rounded to the run's precision (norm vectors copied). */
static void SFX(net_pack)(struct SFX(net) *m, const struct net_block *b)
{
	int tensor[8];
	size_t off[8];
	int n = SFX(net_attn_items)(m, b, tensor, off);
	for (int i = 0; i < n; i++) {
		const struct net_tensor *t = &m->L->t[tensor[i]];
		int r0, rows, cols = (int)t->cols;
		SFX(net_pack_rows)(m, b, tensor[i], &r0, &rows);
		const REAL *src = SFX(W)(m, tensor[i]) + (size_t)r0 * cols;
		REAL *dst = m->pk + off[i];
		if (cols == 1) {
			SFX(net_op)(m, m->ops->copy(src, (size_t)rows, dst));
			continue;
		}
		/* gpk is free during the forward: it holds the rounded copy */
		m->ops->quant_weight(m->o.precision, rows, cols, src, m->gpk);
		SFX(net_op)(m, m->ops->transpose(rows, cols, m->gpk, dst));
	}
}

/* net_unpack_grads adds the packed attention gradients m->gpk to the [out, in]
 * gradients of block b. */
static void SFX(net_unpack_grads)(struct SFX(net) *m, const struct net_block *b)
{
	int tensor[8];
	size_t off[8];
	int n = SFX(net_attn_items)(m, b, tensor, off);
	for (int i = 0; i < n; i++) {
		const struct net_tensor *t = &m->L->t[tensor[i]];
		int r0, rows, cols = (int)t->cols;
		SFX(net_pack_rows)(m, b, tensor[i], &r0, &rows);
		const REAL *src = m->gpk + off[i];
		REAL *dst = SFX(G)(m, tensor[i]) + (size_t)r0 * cols;
		SFX(net_op)(m, m->ops->add_transposed(rows, cols, src, dst));
	}
}
