/*
 * scale_layout.c - the parallel layout and the model of each point of `moebench scale`
 * (scale.h): which dimension takes a size's ranks, what a weak sweep grows, and the
 * step's own layout checks run for every size before anything is launched.
 */
#include "scale.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "train_dp.h"
#include "train_pp.h"

const char *const scale_layout_names[SCALE_LAYOUTS] = { "dp", "ep", "tp", "pp" };

int scale_parse_layouts(const char *s, enum scale_layout *out)
{
	int n = 0;
	while (*s && n < SCALE_LAYOUTS) {
		size_t len = strcspn(s, ",");
		int k = 0;
		while (k < SCALE_LAYOUTS && (strlen(scale_layout_names[k]) != len ||
					     strncmp(s, scale_layout_names[k], len)))
			k++;
		for (int i = 0; i < n && k < SCALE_LAYOUTS; i++)
			k = out[i] == (enum scale_layout)k ? SCALE_LAYOUTS : k;
		if (k == SCALE_LAYOUTS)
			return 0;
		out[n++] = (enum scale_layout)k;
		s += len;
		if (*s == ',' && !*++s)
			return 0;
	}
	return *s ? 0 : n;
}

/* or1 is a fixed size given (n) or 1. */
static int or1(int n)
{
	return n ? n : 1;
}

/* grid fills p's grid: the fixed sizes, the layout's dimension the rest of the ranks.
 * Returns 0, or 2 after the error line when the fixed sizes do not divide the ranks. */
static int grid(const struct scale_spec *s, const struct model_config *base,
		struct scale_point *p)
{
	int n = p->ranks, T = or1(s->tp), P = or1(s->pp), ET = or1(s->etp), q;
	const char *name = scale_layout_names[p->layout];
	p->tp = T, p->pp = P, p->ep = or1(s->ep), p->etp = ET;
	switch (p->layout) {
	case SCALE_EP:   /* EP over the ranks of a stage, each expert on --etp of them */
		q = P * ET;
		break;
	case SCALE_TP:   /* the experts sliced like the dense FFN (ETP = TP) */
		q = P;
		break;
	case SCALE_PP:
		q = T;
		break;
	default:
		q = T * P;
		break;
	}
	if (n % q)
		return cli_error("pass --ranks that the fixed --tp/--pp/--etp divide", "--layout "
				 "%s at %d ranks: the fixed sizes take %d ranks, which does not "
				 "divide %d", name, n, q, n);
	if (p->layout == SCALE_EP)
		p->ep = n / q;
	else if (p->layout == SCALE_TP)
		p->tp = n / q, p->etp = base->routed_experts > 0 ? p->tp : ET;
	else if (p->layout == SCALE_PP)
		p->pp = n / q;
	p->dp = n / (p->tp * p->pp);
	return 0;
}

/* grow makes cfg p's model: the experts or layers per rank times the EP or PP size on
 * its weak points, else base. Returns 0, or 2 after the error line. */
static int grow(const struct scale_spec *s, const struct model_config *base,
		struct scale_point *p, struct model_config *cfg)
{
	char why[256];
	*cfg = *base;
	if (p->grow == SCALE_GROW_EXPERTS) {
		/* NOTE: one expert group: group-limited routing would change with the count */
		cfg->routed_experts = s->experts_per_rank * p->ep;
		cfg->n_groups = cfg->topk_groups = 1;
	} else if (p->grow == SCALE_GROW_LAYERS) {
		cfg->layers = s->layers_per_rank * p->pp;
	}
	p->experts = (long)cfg->routed_experts;
	p->layers = (long)cfg->layers;
	if (model_config_validate(cfg, why, sizeof(why)))
		return cli_error("pass other --experts-per-rank / --layers-per-rank", "--grow %s "
				 "at %d ranks: %s", p->grow == SCALE_GROW_EXPERTS ? "experts" :
				 "layers", p->ranks, why);
	return 0;
}

int scale_plan_point(const struct scale_spec *s, const struct model_config *base,
		     struct scale_point *p, struct model_config *cfg)
{
	static const char *const grown[] = { "", "+experts", "+layers" };
	const char *mode = p->mode == SCALE_WEAK ? "weak" : "strong";
	int err = grid(s, base, p);
	if (err || (err = grow(s, base, p, cfg)))
		return err;
	snprintf(p->series, sizeof(p->series), "%s%s%s%s", mode, p->layout ? "-" : "",
		 p->layout ? scale_layout_names[p->layout] : "", grown[p->grow]);
	/* weak: --batch per data-parallel rank of a model the ranks share; a pipeline of
	 * grown layers keeps --batch per pipeline, each stage's layers fixed */
	p->batch = p->mode == SCALE_STRONG ? s->batch : p->grow == SCALE_GROW_LAYERS ?
		   s->batch * (p->ranks / p->pp) : s->batch * p->ranks;
	struct train_grid g = { p->tp, p->pp, p->ep, p->etp, p->dp };
	/* the step's own checks of this size: they print the error line when one refuses */
	if (train_dp_layout_of(p->ranks, &g, p->batch, 0, cfg) == 0 &&
	    train_pp_check(p->pp, s->schedule, 2, 1, cfg) == 0)
		return 0;
	fprintf(stderr, "moebench: scale: the line above refuses %s at %d ranks (step --tp %d "
		"--pp %d --ep %d --etp %d --dp %d, %ld layers, %ld routed experts, batch %ld): "
		"nothing launched\n", p->series, p->ranks, p->tp, p->pp, p->ep, p->etp, p->dp,
		p->layers, p->experts, p->batch);
	return 2;
}

int scale_write_model(const struct scale_spec *s, const struct scale_point *p)
{
	FILE *f = fopen(p->model, "w");
	if (!f)
		return -1;
	if (p->grow == SCALE_GROW_EXPERTS)
		fprintf(f, "{\"preset\": \"%s\", \"routed_experts\": %ld, \"n_groups\": 1, "
			"\"topk_groups\": 1}\n", s->preset, p->experts);
	else
		fprintf(f, "{\"preset\": \"%s\", \"layers\": %ld}\n", s->preset, p->layers);
	return fclose(f) ? -1 : 0;
}
