/*
 * scale_sweep.c - launching and reading back the points of `moebench scale` (scale.h).
 */
#define _GNU_SOURCE
#include "scale.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "status.h"

const char *scale_default_launcher(void)
{
	if (getenv("SLURM_JOB_ID"))
		return "srun -n {n}";
	return system("command -v mpirun >/dev/null 2>&1") == 0 ? "mpirun --oversubscribe -np {n}"
								: NULL;
}

/* put_launcher writes the template with {n} replaced by n; -1 without {n} or room. */
static int put_launcher(const char *tpl, int n, char *buf, size_t len)
{
	size_t o = 0;
	bool seen = false;
	for (const char *c = tpl; *c; c++) {
		int w;
		if (strncmp(c, "{n}", 3) == 0) {
			w = snprintf(buf + o, len - o, "%d", n);
			c += 2;
			seen = true;
		} else {
			w = snprintf(buf + o, len - o, "%c", *c);
		}
		if (w < 0 || (size_t)w >= len - o)
			return -1;
		o += (size_t)w;
	}
	return seen ? 0 : -1;
}

int scale_command(const struct scale_spec *s, const struct scale_point *p, char *buf,
		  size_t len)
{
	char launch[512], model[640];
	if (put_launcher(s->launcher, p->ranks, launch, sizeof(launch)))
		return -1;
	if (p->model[0])
		snprintf(model, sizeof(model), "--model '%s'", p->model);
	else
		snprintf(model, sizeof(model), "--preset %s", s->preset);
	int w = snprintf(buf, len, "%s '%s' step %s --precision %s --batch %ld --seq %ld "
			 "--dp %d --tp %d --pp %d --ep %d --etp %d%s%s%s --iters %ld --warmup %ld "
			 "--min-time 0 --quiet --out '%s'%s", launch, s->exe, model, s->precision,
			 p->batch, s->seq, p->dp, p->tp, p->pp, p->ep, p->etp,
			 p->pp > 1 ? " --schedule " : "", p->pp > 1 ? s->schedule : "",
			 s->zero1 ? " --zero1" : "", s->iters, s->warmup, p->file,
			 s->force ? " --force" : "");
	return w < 0 || (size_t)w >= len ? -1 : 0;
}

/* read_file returns the contents of path (NUL-terminated, malloc'd) or NULL. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n)
		buf[n] = '\0';
	else
		free(buf), buf = NULL;
	fclose(f);
	return buf;
}

/* read_point takes the median, tokens/s and check of the step record of p->file. */
static int read_point(struct scale_point *p, char *why, size_t why_len)
{
	char *text = read_file(p->file);
	cJSON *doc = text ? cJSON_Parse(text) : NULL;
	const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "records"), 0);
	const cJSON *mt = cJSON_GetObjectItem(rec, "metrics");
	const cJSON *med = cJSON_GetObjectItem(cJSON_GetObjectItem(mt, "time_s"), "median");
	const cJSON *tps = cJSON_GetObjectItem(mt, "tokens_per_s");
	const cJSON *fpt = cJSON_GetObjectItem(mt, "model_flops_per_token");
	const cJSON *st = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "check"), "status");
	int err = MB_OK;
	if (!cJSON_IsNumber(med) || !cJSON_IsNumber(tps) || !cJSON_IsNumber(fpt) ||
	    !cJSON_IsString(st)) {
		snprintf(why, why_len, "%s: no step record with time_s, tokens_per_s, "
			 "model_flops_per_token and check", p->file);
		err = MB_ERR_PARSE;
	} else {
		p->median_s = med->valuedouble;
		p->tokens_per_s = tps->valuedouble;
		p->flops_per_token = fpt->valuedouble;
		p->pass = strcmp(st->valuestring, "pass") == 0;
		const cJSON *cf = cJSON_GetObjectItem(rec, "model_config");
		cJSON_Delete(p->config);
		p->config = cJSON_IsObject(cf) ? cJSON_Duplicate(cf, 1) : NULL;
	}
	cJSON_Delete(doc);
	free(text);
	return err;
}

int scale_run_point(const struct scale_spec *s, struct scale_point *p, char *why,
		    size_t why_len)
{
	char cmd[4096], threads[16];
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	p->cores_per_rank = (double)(cores > 0 ? cores : 1) / p->ranks;
	snprintf(threads, sizeof(threads), "%d", p->cores_per_rank >= 2 ? (int)p->cores_per_rank : 1);
	/* NOTE: each rank's BLAS gets the cores that are its share, at least one */
	setenv("OMP_NUM_THREADS", threads, 1);
	setenv("OPENBLAS_NUM_THREADS", threads, 1);
	if (scale_command(s, p, cmd, sizeof(cmd))) {
		snprintf(why, why_len, "--launcher: no {n} in \"%s\", or the line is too long",
			 s->launcher);
		return MB_ERR_ARG;
	}
	if (!s->quiet)
		fprintf(stderr, "moebench: scale: %s\n", cmd);
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 1)) {
		snprintf(why, why_len, "%d ranks: `%s` failed (status %d)", p->ranks, cmd,
			 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return MB_ERR_IO;
	}
	return read_point(p, why, why_len);
}

void scale_efficiency(struct scale_point *pts, int n)
{
	for (int i = 0; i < n; i++) {
		const struct scale_point *b = NULL;
		for (int k = 0; k < n; k++)
			if (!strcmp(pts[k].series, pts[i].series) && (!b || pts[k].ranks < b->ranks))
				b = &pts[k];
		/* NOTE: model FLOP/s, not tokens/s: a grown model does more work per token */
		if (pts[i].mode == SCALE_WEAK)
			pts[i].eff = (pts[i].tokens_per_s * pts[i].flops_per_token / pts[i].ranks) /
				     (b->tokens_per_s * b->flops_per_token / b->ranks);
		else
			pts[i].eff = b->median_s * b->ranks / (pts[i].median_s * pts[i].ranks);
	}
}
