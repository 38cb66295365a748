/*
 * train_emu_netops.h - train_emu's checks of kernels/train/netops.cu, the device kernels
 * of the training step's CUDA op table, each against the CPU entry of the same operation
 * (net_cpu_ops_f32, model/train/net_ops_model_impl.h): what the CPU step runs is the
 * reference. Included by train_emu.cpp after its helpers (uniform, scaled_err, check).
 */

/* netops_layout_checks: add, scale, both transposes, concat and split, the expert-order gather:
 * bit for bit. */
static int netops_layout_checks(int R, int C, uint64_t s)
{
	const struct net_ops_f32 *o = &net_cpu_ops_f32;
	std::vector<float> x = uniform((size_t)R * C, -1, 1, s), y = uniform((size_t)R * C, -1, 1, s + 1);
	std::vector<float> a = y, a_ref = y, t(x.size(), NAN), t_ref(x.size());
	int ok = 1, rc = netop_add_cuda(a.data(), x.data(), (long)x.size(), NULL);
	o->add(a_ref.data(), x.data(), x.size());
	ok &= check("netops add (exact)", rc, scaled_err(a.data(), a_ref.data(), a.size()), 0);
	a = y, a_ref = y;
	rc = netop_scale_cuda(a.data(), 1.0f / 3.0f, (long)a.size(), NULL);
	o->scale(a_ref.data(), 1.0f / 3.0f, a_ref.size());
	ok &= check("netops scale (exact)", rc, scaled_err(a.data(), a_ref.data(), a.size()), 0);
	ok &= check("netops scale moved y", MB_OK, a[0] == y[0] ? 1 : 0, 0);
	rc = netop_transpose_cuda(R, C, x.data(), t.data(), 0, NULL);
	o->transpose(R, C, x.data(), t_ref.data());
	ok &= check("netops transpose (exact)", rc, scaled_err(t.data(), t_ref.data(), t.size()), 0);
	a = y, a_ref = y;
	rc = netop_transpose_cuda(R, C, t.data(), a.data(), 1, NULL);
	o->add_transposed(R, C, t.data(), a_ref.data());
	ok &= check("netops add_transposed (exact)", rc, scaled_err(a.data(), a_ref.data(), a.size()), 0);
	std::vector<float> cat(2 * x.size(), NAN), cat_ref(2 * x.size());
	rc = netop_concat_cuda(R, C, x.data(), y.data(), cat.data(), 0, NULL);
	o->concat(R, C, x.data(), y.data(), cat_ref.data());
	ok &= check("netops concat (exact)", rc, scaled_err(cat.data(), cat_ref.data(), cat.size()), 0);
	std::vector<float> h1(x.size(), NAN), h2(x.size(), NAN);
	rc = netop_concat_cuda(R, C, h1.data(), h2.data(), cat_ref.data(), 1, NULL);
	double e = fmax(scaled_err(h1.data(), x.data(), x.size()), scaled_err(h2.data(), y.data(), y.size()));
	ok &= check("netops split (exact)", rc, e, 0);
	return ok;
}

/* netops_moe_inputs: a routing of T tokens and its expert order (the CPU's op_route). */
struct netops_moe {
	struct route_config c;
	long T;
	std::vector<float> s, wts;
	std::vector<int32_t> idx, order, eoff;
	std::vector<long> load;
};

static void netops_moe_inputs(netops_moe &m, long T, uint64_t s)
{
	m.c = { 32, 4, 4, 2, 1, 0, 2.5f };
	m.T = T;
	std::vector<float> w, fb(T * (m.c.experts + m.c.topk) + m.c.experts + 1);
	route_some(m.c, T, s, m.s, m.idx, w);
	m.wts.resize(T * m.c.topk);
	m.order.resize(T * m.c.topk);
	m.eoff.resize(m.c.experts + 1);
	m.load.resize(m.c.experts);
	net_cpu_ops_f32.route(&m.c, T, true, NULL, 2.5, m.s.data(), fb.data(), m.idx.data(),
			      m.wts.data(), m.load.data(), m.order.data(), m.eoff.data());
}

/* netops_route_checks: the gate after the selection: scores, weights, expert order. */
static int netops_route_checks(long T, uint64_t s)
{
	netops_moe m;
	std::vector<float> lg, w;
	std::vector<int32_t> idx;
	netops_moe_inputs(m, T, s);
	route_some(m.c, T, s, lg, idx, w);   /* the same logits, before the sigmoid */
	std::vector<float> wts(m.wts.size(), NAN);
	std::vector<int32_t> order(m.order.size(), -1), eoff(m.eoff.size(), -1);
	int ok = 1, rc = netop_route_post_cuda(lg.data(), idx.data(), T, m.c.experts, m.c.topk, 2.5,
					       wts.data(), order.data(), eoff.data(), NULL);
	ok &= check("netops route scores (sigmoid)", rc, scaled_err(lg.data(), m.s.data(), lg.size()), 1e-6);
	ok &= check("netops route weights", rc, scaled_err(wts.data(), m.wts.data(), wts.size()), 1e-6);
	double d = 0;
	for (size_t j = 0; j < order.size(); j++)
		d = fmax(d, fabs((double)order[j] - m.order[j]));
	for (size_t e = 0; e < eoff.size(); e++)
		d = fmax(d, fabs((double)eoff[e] - m.eoff[e]));
	ok &= check("netops expert order and offsets (exact)", rc, d, 0);
	return ok;
}

/* netops_moe_checks: gather, weighted and plain scatter-add, combine backward, gate
 * backward, balance loss. */
static int netops_moe_checks(long T, int D, uint64_t s)
{
	const struct net_ops_f32 *o = &net_cpu_ops_f32;
	netops_moe m;
	netops_moe_inputs(m, T, s);
	const int E = m.c.experts, K = m.c.topk, S = 5, B = (int)(T / S);
	const long TK = T * K;
	std::vector<float> x = uniform(T * D, -1, 1, s + 1), xp(TK * D, NAN), xp_ref(TK * D);
	int ok = 1, rc = netop_permute_rows_cuda(x.data(), m.order.data(), TK, K, D, xp.data(), NULL);
	o->permute_rows(x.data(), m.order.data(), TK, K, D, xp_ref.data());
	ok &= check("netops permute rows (exact)", rc, scaled_err(xp.data(), xp_ref.data(), xp.size()), 0);
	std::vector<float> y = uniform(TK * D, -1, 1, s + 2), out = x, out_ref = x;
	std::vector<int32_t> pos(TK, -1);
	for (int wtd = 0; wtd < 2; wtd++) {
		const float *w = wtd ? m.wts.data() : NULL;
		out = x, out_ref = x;
		rc = netop_unpermute_add_cuda(y.data(), w, m.order.data(), TK, K, D, out.data(), pos.data(), NULL);
		o->unpermute_add(y.data(), w, m.order.data(), TK, K, D, out_ref.data());
		ok &= check(wtd ? "netops unpermute add (weighted)" : "netops unpermute add (plain)", rc,
			    scaled_err(out.data(), out_ref.data(), out.size()), 1e-6);
	}
	std::vector<float> dy(TK * D, NAN), dy_ref(TK * D), dw(TK, NAN), dw_ref(TK);
	rc = netop_combine_bwd_cuda(x.data(), y.data(), m.wts.data(), m.order.data(), TK, K, D, dy.data(), dw.data(), NULL);
	o->combine_bwd(x.data(), y.data(), m.wts.data(), m.order.data(), TK, K, D, dy_ref.data(), dw_ref.data());
	ok &= check("netops combine bwd dy", rc, scaled_err(dy.data(), dy_ref.data(), dy.size()), 0);
	ok &= check("netops combine bwd dw", rc, scaled_err(dw.data(), dw_ref.data(), dw.size()), 1e-5);
	std::vector<float> f(B * E, NAN), f_ref(B * E);
	std::vector<double> rows(T, NAN);
	double l = 0, l_ref;
	rc = netop_balance_cuda(m.idx.data(), m.s.data(), B, S, E, K, f.data(), rows.data(), NULL);
	for (long t = 0; t < T; t++)
		l += rows[t];
	o->balance_fwd(m.idx.data(), m.s.data(), B, S, E, K, f_ref.data(), &l_ref);
	ok &= check("netops balance f (exact)", rc, scaled_err(f.data(), f_ref.data(), f.size()), 0);
	ok &= check("netops balance loss", rc, fabs(l - l_ref) / fabs(l_ref), 1e-12);
	std::vector<float> ds(T * E, NAN), ds_ref(T * E);
	rc = netop_gate_bwd_cuda(m.s.data(), f_ref.data(), m.idx.data(), m.wts.data(), dw_ref.data(), T, S, E, K, 2.5, 1e-3, ds.data(), NULL);
	o->gate_bwd(m.s.data(), f_ref.data(), m.idx.data(), m.wts.data(), dw_ref.data(), T, S, E, K, 2.5, 1e-3, ds_ref.data());
	ok &= check("netops gate bwd ds", rc, scaled_err(ds.data(), ds_ref.data(), ds.size()), 1e-6);
	return ok;
}

/* netops_ce_checks: the cross-entropy's three passes against the CPU's, targets from a
 * vocabulary slice [v0, v0 + V) so some rows have none here (a TP rank's view). */
static int netops_ce_checks(long R, int V, long v0, uint64_t s)
{
	const struct net_ops_f32 *o = &net_cpu_ops_f32;
	std::vector<float> lg = uniform(R * V, -6, 6, s), lg_ref = lg, u = uniform(R, 0, 1, s + 1);
	std::vector<int32_t> tgt(R);
	for (long r = 0; r < R; r++)
		tgt[r] = (int32_t)(u[r] * (V + 8));   /* a few beyond this slice */
	std::vector<double> c(3 * R, NAN), c_ref(3 * R), loss(R, NAN);
	double l = 0, l_ref;
	int ok = 1, rc = netop_ce_max_cuda(lg.data(), R, V, c.data(), NULL);
	rc |= netop_ce_sum_cuda(lg.data(), R, V, v0, tgt.data(), c.data(), c.data() + R, c.data() + 2 * R, NULL);
	rc |= netop_ce_grad_cuda(lg.data(), R, V, v0, tgt.data(), c.data(), c.data() + R, c.data() + 2 * R, 0.25, loss.data(), NULL);
	for (long r = 0; r < R; r++)
		l += loss[r];
	o->ce_max(lg_ref.data(), R, V, c_ref.data());
	o->ce_sum(lg_ref.data(), R, V, v0, tgt.data(), c_ref.data(), c_ref.data() + R, c_ref.data() + 2 * R);
	o->ce_grad(lg_ref.data(), R, V, v0, tgt.data(), c_ref.data(), c_ref.data() + R, c_ref.data() + 2 * R, 0.25, &l_ref);
	double e = 0;
	for (long r = 0; r < 3 * R; r++)
		e = fmax(e, fabs(c[r] - c_ref[r]) / fmax(fabs(c_ref[r]), 1e-30));
	ok &= check("netops ce max, sum, target logit", rc, e, 1e-5);
	ok &= check("netops ce gradient", rc, scaled_err(lg.data(), lg_ref.data(), lg.size()), 1e-5);
	ok &= check("netops ce loss", rc, fabs(l - l_ref) / fabs(l_ref), 1e-6);
	return ok;
}

/* netops_misc_checks: SwiGLU's backward in place (dh = dup, as the model calls it),
 * RMSNorm's 1/rms, BF16 rounding. */
static int netops_misc_checks(long R, int C, uint64_t s)
{
	const struct net_ops_f32 *o = &net_cpu_ops_f32;
	const size_t n = (size_t)R * C;
	std::vector<float> g = uniform(n, -4, 4, s), u = uniform(n, -2, 2, s + 1), dh = uniform(n, -1, 1, s + 2);
	std::vector<float> dg(n, NAN), dg_ref(n), du = dh, du_ref = dh;
	int ok = 1, rc = netop_swiglu_bwd_cuda(du.data(), g.data(), u.data(), R, C, dg.data(), du.data(), NULL);
	o->swiglu_bwd(du_ref.data(), g.data(), u.data(), R, C, dg_ref.data(), du_ref.data());
	ok &= check("netops swiglu bwd (dh = dup)", rc,
		    fmax(scaled_err(dg.data(), dg_ref.data(), n), scaled_err(du.data(), du_ref.data(), n)), 1e-5);
	std::vector<float> rstd(R, NAN), rstd_ref(R);
	rc = netop_rstd_cuda(g.data(), R, C, 1e-6f, rstd.data(), NULL);
	for (long r = 0; r < R; r++) {
		double ss = 0;
		for (int c = 0; c < C; c++)
			ss += (double)g[r * C + c] * g[r * C + c];
		rstd_ref[r] = (float)(1.0 / sqrt(ss / C + 1e-6));
	}
	ok &= check("netops rmsnorm 1/rms", rc, scaled_err(rstd.data(), rstd_ref.data(), R), 1e-6);
	std::vector<float> b(n, NAN), b_ref(n);
	rc = netop_round_bf16_cuda(g.data(), (long)n, b.data(), NULL, NULL);
	for (size_t i = 0; i < n; i++)
		b_ref[i] = bf16_round(g[i]);
	ok &= check("netops bf16 rounding (exact)", rc, scaled_err(b.data(), b_ref.data(), n), 0);
	return ok;
}


/* netops_table_checks: the CUDA table's compositions of kernels/train's and
 * kernels/moe's kernels (model/train/net_ops_cuda.c: c_rmsnorm_*, c_swiglu_fwd,
 * c_embed_*, c_route) as they call them, against the CPU table's entries: the kernels
 * mean what the table says they mean. */
static int netops_table_checks(long T, int D, uint64_t s)
{
	const struct net_ops_f32 *o = &net_cpu_ops_f32;
	const size_t n = (size_t)T * D;
	std::vector<float> x = uniform(n, -2, 2, s), g = uniform(D, 0.5, 1.5, s + 1), dy = uniform(n, -1, 1, s + 2);
	std::vector<float> y(n, NAN), y_ref(n), rstd(T, NAN), dx(n, NAN), dx_ref(n), wk(D);
	std::vector<float> dg = uniform(D, -1, 1, s + 3), dg_ref = dg;
	std::vector<uint8_t> work(rmsnorm_bwd_workspace(T, D));
	int ok = 1, rc = rmsnorm_fwd_cuda(x.data(), g.data(), T, D, 1e-6f, y.data(), rstd.data(), NULL);
	o->rmsnorm_fwd(x.data(), g.data(), T, D, 1e-6, y_ref.data());
	ok &= check("table rmsnorm fwd (kernel vs CPU entry)", rc, scaled_err(y.data(), y_ref.data(), n), 1e-5);
	rc = netop_rstd_cuda(x.data(), T, D, 1e-6f, rstd.data(), NULL);
	rc |= rmsnorm_bwd_cuda(dy.data(), x.data(), g.data(), rstd.data(), T, D, dx.data(), dg.data(),
			       work.data(), work.size(), NULL);
	o->rmsnorm_bwd(dy.data(), x.data(), g.data(), T, D, 1e-6, dx_ref.data(), dg_ref.data(), wk.data());
	ok &= check("table rmsnorm bwd dx", rc, scaled_err(dx.data(), dx_ref.data(), n), 1e-5);
	ok &= check("table rmsnorm bwd dgain (added)", rc, scaled_err(dg.data(), dg_ref.data(), D), 1e-5);
	std::vector<float> h(n, NAN), h_ref(n);
	rc = swiglu_fwd_cuda(x.data(), dy.data(), T, D, D, h.data(), NULL);
	o->swiglu_fwd(x.data(), dy.data(), T, D, h_ref.data());
	ok &= check("table swiglu fwd (ld = cols)", rc, scaled_err(h.data(), h_ref.data(), n), 1e-5);
	const int V = 37;
	std::vector<float> tab = uniform((size_t)V * D, -1, 1, s + 4), tab_ref = tab, u = uniform(T, 0, 1, s + 5);
	std::vector<int32_t> ids(T);
	for (long t = 0; t < T; t++)
		ids[t] = t % 3 ? (int32_t)(u[t] * V) : 5;
	std::vector<uint8_t> ework(embedding_bwd_workspace(T, V));
	rc = embedding_fwd_cuda(tab.data(), V, ids.data(), T, D, y.data(), NULL);
	o->embed_fwd(tab.data(), 0, V, ids.data(), T, D, y_ref.data());
	ok &= check("table embedding fwd (exact)", rc, scaled_err(y.data(), y_ref.data(), n), 0);
	rc = embedding_bwd_cuda(dy.data(), ids.data(), T, D, V, tab.data(), ework.data(), ework.size(), NULL);
	o->embed_bwd(dy.data(), ids.data(), T, D, 0, V, tab_ref.data());
	ok &= check("table embedding bwd (added, exact)", rc, scaled_err(tab.data(), tab_ref.data(), tab.size()), 0);
	return ok;
}

/* netops_route_table_check: c_route's chain (the selection with a bias, then the gate
 * after it) against the CPU table's route, selection not fixed. The selection here is
 * route_cpu's: route_cuda (kernels/moe, not emulated here) is its bit-identical twin,
 * checked on a GPU by gpu/test_route.c. */
static int netops_route_table_check(long T, uint64_t s)
{
	const struct route_config c = { 32, 4, 4, 2, 1, 0, 2.5f };
	const int E = c.experts, K = c.topk;
	std::vector<float> lg, w;
	std::vector<int32_t> idx0;
	route_some(c, T, s, lg, idx0, w);
	std::vector<float> bias = uniform(E, -0.05, 0.05, s + 1), s_ref = lg, fw(T * K, NAN);
	std::vector<float> fb(T * (E + K) + E + 1), wts(T * K, NAN), wts_ref(T * K);
	std::vector<int32_t> idx(T * K, -1), idx_ref(T * K), order(T * K, -1), order_ref(T * K);
	std::vector<int32_t> eoff(E + 1, -1), eoff_ref(E + 1);
	std::vector<long> load_ref(E);
	int ok = 1, rc = route_cpu(&c, lg.data(), bias.data(), T, idx.data(), fw.data());
	rc |= netop_route_post_cuda(lg.data(), idx.data(), T, E, K, 2.5, wts.data(), order.data(),
				    eoff.data(), NULL);
	net_cpu_ops_f32.route(&c, T, false, bias.data(), 2.5, s_ref.data(), fb.data(), idx_ref.data(),
			      wts_ref.data(), load_ref.data(), order_ref.data(), eoff_ref.data());
	double d = 0;
	for (size_t j = 0; j < idx.size(); j++)
		d = fmax(d, fabs((double)idx[j] - idx_ref[j]) + fabs((double)order[j] - order_ref[j]));
	for (int e = 0; e < E; e++)
		d = fmax(d, fabs((double)(eoff[e + 1] - eoff[e]) - load_ref[e]));
	ok &= check("table route: selection, order, loads (exact)", rc, d, 0);
	ok &= check("table route: scores", rc, scaled_err(lg.data(), s_ref.data(), lg.size()), 1e-6);
	ok &= check("table route: weights", rc, scaled_err(wts.data(), wts_ref.data(), wts.size()), 1e-6);
	return ok;
}

/* netops_checks runs them all, sizes off the block size. */
static int netops_checks(uint64_t s)
{
	int ok = netops_layout_checks(37, 300, s);
	ok &= netops_route_checks(45, s + 10);
	ok &= netops_moe_checks(45, 300, s + 20);
	ok &= netops_ce_checks(7, 1337, 0, s + 30);
	ok &= netops_ce_checks(6, 700, 650, s + 40);
	ok &= netops_misc_checks(9, 333, s + 50);
	ok &= netops_table_checks(45, 300, s + 60);
	ok &= netops_route_table_check(45, s + 70);
	return ok;
}
