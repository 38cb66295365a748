/* lt_fake.c - the recording CUDA runtime and cuBLASLt stand-in of lt_fake.h. */
#include "lt_fake.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <cublasLt.h>

#define FAKE_MAX 512      /* allocations and cuBLASLt objects per scenario */
#define FAKE_ATTRS 128    /* attribute ids kept per object */
#define FAKE_LINE 4096

struct fake_attr {
	int set;
	size_t n;
	unsigned char v[16];
};

/* One descriptor, layout or preference (kind 'd', 'l', 'p'). */
struct fake_obj {
	char kind;
	int live;
	int compute, scale;                 /* descriptor */
	int type;                           /* layout */
	uint64_t rows, cols;
	int64_t ld;
	struct fake_attr attr[FAKE_ATTRS];  /* descriptor, preference */
};

static struct {
	FILE *trace;
	enum lt_fake_heuristic heuristic;
	struct { char *p; size_t n; int live; } buf[FAKE_MAX];
	int nbuf;
	struct fake_obj *obj[FAKE_MAX];
	int nobj, handles, algos;
} F;

void lt_fake_reset(FILE *trace, enum lt_fake_heuristic h)
{
	for (int i = 0; i < F.nbuf; i++)
		if (F.buf[i].live)
			free(F.buf[i].p);
	for (int i = 0; i < F.nobj; i++)
		free(F.obj[i]);
	memset(&F, 0, sizeof(F));
	F.trace = trace;
	F.heuristic = h;
}

void lt_fake_note(const char *line)
{
	if (F.trace)
		fprintf(F.trace, "%s\n", line);
}

int lt_fake_live(void)
{
	int n = F.handles;
	for (int i = 0; i < F.nbuf; i++)
		n += F.buf[i].live;
	for (int i = 0; i < F.nobj; i++)
		n += F.obj[i]->live;
	return n;
}

/* ptr_name writes the name of a device pointer: buf<i>[+offset], null or other. */
static void ptr_name(const void *p, char *out, size_t len)
{
	const char *c = p;
	if (!p) {
		snprintf(out, len, "null");
		return;
	}
	for (int i = 0; i < F.nbuf; i++) {
		if (c >= F.buf[i].p && c < F.buf[i].p + (F.buf[i].n ? F.buf[i].n : 1)) {
			size_t off = (size_t)(c - F.buf[i].p);
			if (off)
				snprintf(out, len, "buf%d+%zu", i, off);
			else
				snprintf(out, len, "buf%d", i);
			return;
		}
	}
	snprintf(out, len, "other");
}

/* attr_text appends " a<id>=<value>" for every attribute set, in id order: a value of
 * pointer size that points into a buffer by its name, else as an unsigned integer. */
static void attr_text(const struct fake_obj *o, char *out, size_t len)
{
	for (int a = 0; a < FAKE_ATTRS; a++) {
		const struct fake_attr *x = &o->attr[a];
		char v[64];
		uint64_t u = 0;
		void *p = NULL;
		if (!x->set)
			continue;
		if (x->n == sizeof(void *))
			memcpy(&p, x->v, sizeof(p));
		ptr_name(p, v, sizeof(v));
		if (!p || !strcmp(v, "other")) {
			memcpy(&u, x->v, x->n < 8 ? x->n : 8);
			snprintf(v, sizeof(v), "%llu/%zu", (unsigned long long)u, x->n);
		}
		size_t used = strlen(out);
		snprintf(out + used, len - used, " a%d=%s", a, v);
	}
}

/* obj_text describes a descriptor, layout or preference in full. */
static void obj_text(const void *h, char *out, size_t len)
{
	const struct fake_obj *o = h;
	if (!o) {
		snprintf(out, len, "{null}");
		return;
	}
	if (o->kind == 'l')
		snprintf(out, len, "{type %d %llux%llu ld %lld", o->type,
			 (unsigned long long)o->rows, (unsigned long long)o->cols, (long long)o->ld);
	else if (o->kind == 'd')
		snprintf(out, len, "{compute %d scale %d", o->compute, o->scale);
	else
		snprintf(out, len, "{");
	attr_text(o, out, len);
	size_t used = strlen(out);
	snprintf(out + used, len - used, "%s}", o->live ? "" : " DESTROYED");
}

/* obj_new makes an object of kind k (NULL when the table is full). */
static struct fake_obj *obj_new(char k)
{
	struct fake_obj *o;
	if (F.nobj == FAKE_MAX || !(o = calloc(1, sizeof(*o))))
		return NULL;
	o->kind = k;
	o->live = 1;
	F.obj[F.nobj++] = o;
	return o;
}

/* obj_set keeps one attribute (the last value set wins, as in cuBLASLt). */
static cublasStatus_t obj_set(void *h, int attr, const void *buf, size_t n)
{
	struct fake_obj *o = h;
	if (!o || attr < 0 || attr >= FAKE_ATTRS || n > sizeof(o->attr[0].v))
		return CUBLAS_STATUS_INVALID_VALUE;
	o->attr[attr].set = 1;
	o->attr[attr].n = n;
	memcpy(o->attr[attr].v, buf, n);
	return CUBLAS_STATUS_SUCCESS;
}

/* ---- the CUDA runtime ---- */

cudaError_t cudaMalloc(void **p, size_t n)
{
	char line[96];
	if (F.nbuf == FAKE_MAX || !(*p = calloc(1, n ? n : 1)))
		return cudaErrorMemoryAllocation;
	F.buf[F.nbuf].p = *p, F.buf[F.nbuf].n = n, F.buf[F.nbuf].live = 1;
	snprintf(line, sizeof(line), "cudaMalloc buf%d %zu", F.nbuf++, n);
	lt_fake_note(line);
	return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
	for (int i = 0; p && i < F.nbuf; i++)
		if (F.buf[i].live && F.buf[i].p == p) {
			free(p);
			F.buf[i].live = 0;
		}
	return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind)
{
	memcpy(dst, src, n);
	return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
			    cudaStream_t stream)
{
	memcpy(dst, src, n);
	return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t stream)
{
	memset(p, value, n);
	return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
	return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
	return cudaSuccess;
}

const char *cudaGetErrorName(cudaError_t e)
{
	return "fakeError";
}

const char *cudaGetErrorString(cudaError_t e)
{
	return "fake CUDA runtime error";
}

/* ---- cuBLASLt ---- */

const char *cublasLtGetStatusName(cublasStatus_t s)
{
	return "FAKE_STATUS";
}

const char *cublasLtGetStatusString(cublasStatus_t s)
{
	return "fake cuBLASLt status";
}

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
	*h = (cublasLtHandle_t)(uintptr_t)(0x1000 + ++F.handles);
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
	F.handles--;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute,
					cudaDataType_t scale)
{
	struct fake_obj *o = obj_new('d');
	if (!o)
		return CUBLAS_STATUS_ALLOC_FAILED;
	o->compute = (int)compute, o->scale = (int)scale;
	*d = (cublasLtMatmulDesc_t)(void *)o;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d,
					      cublasLtMatmulDescAttributes_t attr,
					      const void *buf, size_t n)
{
	return obj_set((void *)d, (int)attr, buf, n);
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d)
{
	((struct fake_obj *)(void *)d)->live = 0;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type,
					  uint64_t rows, uint64_t cols, int64_t ld)
{
	struct fake_obj *o = obj_new('l');
	if (!o)
		return CUBLAS_STATUS_ALLOC_FAILED;
	o->type = (int)type, o->rows = rows, o->cols = cols, o->ld = ld;
	*l = (cublasLtMatrixLayout_t)(void *)o;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l)
{
	((struct fake_obj *)(void *)l)->live = 0;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p)
{
	struct fake_obj *o = obj_new('p');
	if (!o)
		return CUBLAS_STATUS_ALLOC_FAILED;
	*p = (cublasLtMatmulPreference_t)(void *)o;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
						    cublasLtMatmulPreferenceAttributes_t attr,
						    const void *buf, size_t n)
{
	return obj_set((void *)p, (int)attr, buf, n);
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p)
{
	((struct fake_obj *)(void *)p)->live = 0;
	return CUBLAS_STATUS_SUCCESS;
}

/* The heuristic writes the whole query, then answers as lt_fake_reset said. */
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lt, cublasLtMatmulDesc_t op,
					      cublasLtMatrixLayout_t a,
					      cublasLtMatrixLayout_t b,
					      cublasLtMatrixLayout_t c,
					      cublasLtMatrixLayout_t d,
					      cublasLtMatmulPreference_t pref, int want,
					      cublasLtMatmulHeuristicResult_t res[], int *got)
{
	char o[FAKE_LINE] = "", la[512] = "", lb[512] = "", lc[512] = "", ld[512] = "";
	char pr[512] = "";
	obj_text(op, o, sizeof(o)), obj_text(a, la, sizeof(la)), obj_text(b, lb, sizeof(lb));
	obj_text(c, lc, sizeof(lc)), obj_text(d, ld, sizeof(ld)), obj_text(pref, pr, sizeof(pr));
	if (F.trace)
		fprintf(F.trace, "heuristic want %d desc %s A %s B %s C %s D %s pref %s\n", want, o,
			la, lb, lc, ld, pr);
	*got = 0;
	if (F.heuristic == LT_FAKE_NOT_SUPPORTED)
		return CUBLAS_STATUS_NOT_SUPPORTED;
	if (F.heuristic == LT_FAKE_NONE)
		return CUBLAS_STATUS_SUCCESS;
	memset(&res[0], 0, sizeof(res[0]));
	res[0].algo.data[0] = (uint64_t)++F.algos;
	res[0].state = CUBLAS_STATUS_SUCCESS;
	*got = 1;
	return CUBLAS_STATUS_SUCCESS;
}

void (*lt_fake_matmul_hook)(const struct lt_fake_matmul *mm);

/* attr_int returns attribute id of o as an integer (0 where not set). */
static int64_t attr_int(const struct fake_obj *o, int id)
{
	int32_t i = 0;
	if (!o->attr[id].set)
		return 0;
	memcpy(&i, o->attr[id].v, sizeof(i));
	return i;
}

/* attr_ptr returns pointer attribute id of o (NULL where not set). */
static const void *attr_ptr(const struct fake_obj *o, int id)
{
	const void *p = NULL;
	if (o->attr[id].set)
		memcpy(&p, o->attr[id].v, sizeof(p));
	return p;
}

/* fake_hook hands the matmul to lt_fake_matmul_hook. */
static void fake_hook(const struct fake_obj *op, const struct fake_obj *const l[3],
		      const void *alpha, const void *a, const void *b, const void *beta, void *d)
{
	struct lt_fake_matmul mm;
	memset(&mm, 0, sizeof(mm));
	mm.a = a, mm.b = b, mm.d = d;
	mm.alpha = *(const float *)alpha, mm.beta = *(const float *)beta;
	for (int i = 0; i < 3; i++)
		mm.type[i] = l[i]->type, mm.rows[i] = l[i]->rows, mm.cols[i] = l[i]->cols,
		mm.ld[i] = l[i]->ld;
	mm.trans_a = (int)attr_int(op, CUBLASLT_MATMUL_DESC_TRANSA);
	mm.trans_b = (int)attr_int(op, CUBLASLT_MATMUL_DESC_TRANSB);
	mm.scale_a = attr_ptr(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER);
	mm.scale_b = attr_ptr(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER);
	mm.mode_a = (int)attr_int(op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE);
	mm.mode_b = (int)attr_int(op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE);
	lt_fake_matmul_hook(&mm);
}

/* The matmul writes everything it is handed: the descriptor and layouts in full, the
 * host alpha and beta (FP32 scale type), the device pointers by name, the algorithm's
 * number from the heuristic and the workspace. */
cublasStatus_t cublasLtMatmul(cublasLtHandle_t lt, cublasLtMatmulDesc_t op,
			      const void *alpha, const void *a, cublasLtMatrixLayout_t la,
			      const void *b, cublasLtMatrixLayout_t lb, const void *beta,
			      const void *c, cublasLtMatrixLayout_t lc, void *d,
			      cublasLtMatrixLayout_t ld, const cublasLtMatmulAlgo_t *algo,
			      void *ws, size_t ws_bytes, cudaStream_t stream)
{
	char o[FAKE_LINE] = "", ta[512] = "", tb[512] = "", tc[512] = "", td[512] = "";
	char pa[64], pb[64], pc[64], pd[64], pw[64];
	obj_text(op, o, sizeof(o)), obj_text(la, ta, sizeof(ta)), obj_text(lb, tb, sizeof(tb));
	obj_text(lc, tc, sizeof(tc)), obj_text(ld, td, sizeof(td));
	ptr_name(a, pa, sizeof(pa)), ptr_name(b, pb, sizeof(pb)), ptr_name(c, pc, sizeof(pc));
	ptr_name(d, pd, sizeof(pd)), ptr_name(ws, pw, sizeof(pw));
	if (F.trace)
		fprintf(F.trace, "matmul desc %s alpha %g A %s %s B %s %s beta %g C %s %s D %s %s "
			"algo %llu ws %s %zu\n", o, *(const float *)alpha, pa, ta, pb, tb,
			*(const float *)beta, pc, tc, pd, td,
			(unsigned long long)(algo ? algo->data[0] : 0), pw, ws_bytes);
	if (lt_fake_matmul_hook) {
		const struct fake_obj *l[3] = { (const void *)la, (const void *)lb, (const void *)ld };
		fake_hook((const void *)op, l, alpha, a, b, beta, d);
	}
	return CUBLAS_STATUS_SUCCESS;
}
