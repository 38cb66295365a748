/*
 * rope_angles.c - RoPE's angle table, one per thread (rope_angles.h).
 */
#include "rope_angles.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

struct rope_cache {
	int npos, pos0, dr;
	double theta;
	double *t;
};

static pthread_key_t rope_key;
static pthread_once_t rope_once = PTHREAD_ONCE_INIT;

static void rope_cache_free(void *p)
{
	struct rope_cache *c = p;
	if (c)
		free(c->t);
	free(c);
}

static void rope_key_make(void)
{
	(void)pthread_key_create(&rope_key, rope_cache_free);
}

const double *rope_angles(int npos, int pos0, int dr, double theta)
{
	int half = dr / 2;
	if (pthread_once(&rope_once, rope_key_make) || npos < 1 || half < 1)
		return NULL;
	struct rope_cache *c = pthread_getspecific(rope_key);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c || pthread_setspecific(rope_key, c)) {
			free(c);
			return NULL;
		}
	}
	if (c->t && c->npos == npos && c->pos0 == pos0 && c->dr == dr && c->theta == theta)
		return c->t;
	free(c->t);
	c->t = malloc(2 * (size_t)npos * (size_t)half * sizeof(double));
	if (!c->t)
		return NULL;
	c->npos = npos, c->pos0 = pos0, c->dr = dr, c->theta = theta;
	double *cs = c->t, *sn = c->t + (size_t)npos * half;
	for (int p = 0; p < npos; p++)
		for (int i = 0; i < half; i++) {
			double ang = (pos0 + p) * pow(theta, -2.0 * i / dr);
			cs[(size_t)p * half + i] = cos(ang);
			sn[(size_t)p * half + i] = sin(ang);
		}
	return c->t;
}
