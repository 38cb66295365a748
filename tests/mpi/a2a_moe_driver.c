/*
 * a2a_moe_driver.c - a2a_moe_run (benchmarks/a2a_moe.c) on every MPI rank through the
 * generic driver, for test_ep_mpi.c, until `moebench a2a` calls it:
 *
 *   mpirun -np R --oversubscribe a2a_moe_driver TOKENS HIDDEN EXPERTS TOPK RPN bf16|fp8 ZIPF
 *
 * Rank 0 prints one "record NAME STATUS median_s algbw busbw logical" line per record and
 * the summary lines. Exit 0 when every check passed, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a2a.h"
#include "comm.h"
#include "mpi_world.h"
#include "result.h"
#include "status.h"

/* number returns doc[a][b][c] as a number, or -1. */
static double number(const cJSON *o, const char *a, const char *b, const char *c)
{
	const cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(o, a), b);
	x = c ? cJSON_GetObjectItem(x, c) : x;
	return cJSON_IsNumber(x) ? x->valuedouble : -1;
}

/* print_doc prints rank 0's records and summary. */
static void print_doc(const cJSON *doc)
{
	const cJSON *r, *l;
	cJSON_ArrayForEach(r, cJSON_GetObjectItem(doc, "records")) {
		const cJSON *st = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "check"), "status");
		printf("record %s %s %.6g %.4g %.4g %.4g\n", cJSON_GetObjectItem(r, "name")->valuestring,
		       cJSON_IsString(st) ? st->valuestring : "?", number(r, "metrics", "time_s", "median"),
		       number(r, "metrics", "algbw_GBps", NULL), number(r, "metrics", "busbw_GBps", NULL),
		       number(r, "metrics", "logical_GBps", NULL));
	}
	cJSON_ArrayForEach(l, cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "summary"),
								      "a2a_moe"), "lines"))
		printf("%s\n", l->valuestring);
}

int main(int argc, char **argv)
{
	struct backend b = { .kind = BACKEND_CPU };
	struct cli_common common = { .backend = "cpu", .warmup = 1, .iters = 3, .seed = 7, .quiet = true };
	struct run_ctx ctx = { .benchmark = "a2a", .backend = &b, .opts = &common };
	struct comm *c = NULL;
	char why[256] = "";
	if (mpi_world_init(&argc, &argv))
		return 1;
	if (argc < 8) {
		fprintf(stderr, "usage: a2a_moe_driver TOKENS HIDDEN EXPERTS TOPK RPN bf16|fp8 ZIPF\n");
		mpi_world_finalize();
		return 2;
	}
	struct a2a_moe_opts o = { atol(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), 1, 1, 0,
				  atoi(argv[5]), 2.5, atof(argv[7]),
				  strcmp(argv[6], "fp8") ? A2A_BF16 : A2A_FP8, 7 };
	ctx.doc = result_new();
	int err = ctx.doc ? comm_world(&b, 30.0, &c, why, sizeof(why)) : MB_ERR_NOMEM;
	if (!err)
		err = a2a_moe_run(&ctx, c, &o);
	if (err)
		fprintf(stderr, "a2a_moe_driver: rank %d: %s %s\n", mpi_world_rank(), mb_status_str(err), why);
	else if (mpi_world_is_root())
		print_doc(ctx.doc);
	cJSON_Delete(ctx.doc);
	comm_free(c);
	mpi_world_finalize();
	return err || ctx.failures ? 1 : 0;
}
