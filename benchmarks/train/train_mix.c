/*
 * train_mix.c - the parallel dimensions combined on the training step (train_pp.h):
 * the pipeline's micro-batch models given the TP collectives and each its own EP state.
 */
#include "train_pp.h"

#include <stdlib.h>

#include "status.h"

int train_pp_comm(struct train_pp *p, const struct net_tp_comm *tp, const struct train_ep *ep)
{
	const struct net_layout *L = net_layout_of_f32(p->mb[0]);
	for (int k = 1; k < p->n_micro; k++)
		net_tp_set_f32(p->mb[k], tp);
	if (!ep || !train_ep_active(ep) || p->n_micro < 2)
		return MB_OK;
	p->mb_ep = calloc((size_t)p->n_micro, sizeof(*p->mb_ep));
	if (!p->mb_ep)
		return MB_ERR_NOMEM;
	/* NOTE: the states share the EP communicator: their collectives never overlap (one
	 * micro-batch's stage work runs at a time) and come in the order of the program */
	for (int k = 1; k < p->n_micro; k++) {
		int err = train_ep_open(&p->mb_ep[k], ep->c, L, ep->rpn, ep->wire);
		if (err)
			return err;
		net_comm_set_f32(p->mb[k], &p->mb_ep[k].nc);
	}
	return MB_OK;
}

double train_pp_ep_exposed(const struct train_pp *p)
{
	double s = 0;
	for (int k = 1; p->mb_ep && k < p->n_micro; k++)
		s += p->mb_ep[k].exposed_s;
	return s;
}
