/*
 * expert_gemms.c - a by-hand micro-benchmark behind net_moe_impl.h's parallel experts:
 * the nine FP32 GEMMs of one SwiGLU expert's forward and backward (gate, up: x W^T;
 * down; their dgrad NN and wgrad TN with beta 1), v3-small's shapes (dim 1024, width
 * 512) at ROWS rows, over 16 experts, timed twice per repetition in one process, back to
 * back: the experts one after another with every BLAS thread on each GEMM, then two
 * experts at a time on one BLAS thread each (what the model does).
 *
 *   cc -O2 -fopenmp scripts/expert_gemms.c -o expert_gemms -lopenblas
 *   ./expert_gemms 192          # T*K/E rows of v3-small at 2048 tokens
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define EXPERTS 16
#define DIM 1024
#define WIDTH 512

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One expert's buffers: x, wg, wu, wd, a, b, y, dw. */
struct expert {
	float *p[8];
};

static void expert_gemms(int t, struct expert *e)
{
	float *x = e->p[0], *wg = e->p[1], *wu = e->p[2], *wd = e->p[3];
	float *a = e->p[4], *b = e->p[5], *y = e->p[6], *dw = e->p[7];
	int d = DIM, w = WIDTH;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, w, d, 1, x, d, wg, d, 0, a, w);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, w, d, 1, x, d, wu, d, 0, b, w);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, d, w, 1, a, w, wd, w, 0, y, d);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, w, d, 1, y, d, wd, w, 0, a, w);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, w, t, 1, y, d, a, w, 1, dw, w);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, d, w, 1, a, w, wg, d, 0, x, d);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, d, t, 1, a, w, x, d, 1, dw, d);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, d, w, 1, b, w, wu, d, 1, x, d);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w, d, t, 1, b, w, x, d, 1, dw, d);
}

int main(int argc, char **argv)
{
	int t = argc > 1 ? atoi(argv[1]) : 192, n = openblas_get_num_threads();
	static struct expert ex[EXPERTS];
	if (t < 1)
		return fprintf(stderr, "usage: expert_gemms ROWS\n"), 2;
	for (int e = 0; e < EXPERTS; e++) {
		size_t sz[8] = { (size_t)t * DIM, WIDTH * DIM, WIDTH * DIM, WIDTH * DIM,
				 (size_t)t * WIDTH, (size_t)t * WIDTH, (size_t)t * DIM, WIDTH * DIM };
		for (int j = 0; j < 8; j++) {
			ex[e].p[j] = malloc(sz[j] * sizeof(float));
			if (!ex[e].p[j])
				return 1;
			for (size_t i = 0; i < sz[j]; i++)
				ex[e].p[j][i] = (float)rand() / (float)RAND_MAX * 0.01f;
		}
	}
	double flops = EXPERTS * 9 * 2.0 * t * DIM * WIDTH;
	for (int rep = 0; rep < 3; rep++) {
		openblas_set_num_threads(n);
		double t0 = now();
		for (int e = 0; e < EXPERTS; e++)
			expert_gemms(t, &ex[e]);
		double t1 = now();
		openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic) num_threads(n)
		for (int e = 0; e < EXPERTS; e++)
			expert_gemms(t, &ex[e]);
		double t2 = now();
		printf("rows %d: one after another, %d BLAS threads each: %.1f GFLOP/s; %d side by "
		       "side, 1 thread each: %.1f GFLOP/s\n", t, n, flops / (t1 - t0) / 1e9, n,
		       flops / (t2 - t1) / 1e9);
	}
	return 0;
}
